"""Preprint-archive data: 50 invented papers in 6 categories with versions."""

from __future__ import annotations

import datetime as dt

from common import person, rng, write_json

CATS = {
    "cs.LG": ("Machine Learning", ["Sparse Mixture Routing", "Curriculum Distillation", "Low-Rank Adapters",
                                   "Contrastive Pretraining", "Gradient Noise Scheduling"],
              ["Tabular Forecasting", "Continual Learning", "Reward Modelling", "Federated Training"]),
    "cs.CL": ("Computation and Language", ["Retrieval-Augmented Decoding", "Byte-Level Tokenisers",
                                           "Instruction Tuning", "Speculative Sampling"],
              ["Low-Resource Translation", "Clinical Note Summarisation", "Dialogue State Tracking", "Code Search"]),
    "cs.CV": ("Computer Vision", ["Masked Patch Modelling", "Neural Radiance Caching", "Depth Priors",
                                  "Event-Camera Encoders"],
              ["Crop Disease Detection", "Indoor Scene Reconstruction", "Screen Understanding", "Satellite Change Detection"]),
    "stat.ML": ("Statistics: Machine Learning", ["Conformal Calibration", "Bayesian Quadrature", "Kernel Two-Sample Tests"],
                ["Distribution Shift", "Small-Sample Inference", "Causal Effect Estimation"]),
    "astro-ph.GA": ("Galaxies", ["Spectral Stacking", "Weak-Lensing Maps", "Hierarchical Photometry"],
                    ["Dwarf Galaxy Surveys", "Gas Outflows", "Stellar Streams"]),
    "q-bio.NC": ("Neurons and Cognition", ["Spiking Population Models", "Recurrent State-Space Fits"],
                 ["Grid Cell Remapping", "Working Memory Load", "Songbird Motor Learning"]),
}
QUAL = ["at Scale", "Without Labels", "on a Budget", "Revisited", "in the Wild", "with Guarantees"]


def build() -> list[dict]:
    r = rng("archive")
    papers, titles = [], set()
    cats = list(CATS)
    seq: dict[str, int] = {}
    while len(papers) < 50:
        cat = cats[len(papers) % len(cats)] if r.random() < .7 else r.choice(cats)
        _, methods, tasks = CATS[cat]
        m, t = r.choice(methods), r.choice(tasks)
        title = f"{m} for {t}" + (f" {r.choice(QUAL)}" if r.random() < .5 else "")
        if title in titles:
            continue
        titles.add(title)
        sub = dt.date(2027, 1, 4) + dt.timedelta(days=r.randint(0, 55))
        ym = sub.strftime("%y%m")
        seq[ym] = seq.get(ym, 0) + r.randint(1, 400)
        versions = [{"v": 1, "date": sub.isoformat()}]
        for k in range(r.choice([0, 0, 1, 1, 2])):
            versions.append({"v": k + 2, "date": (dt.date.fromisoformat(versions[-1]["date"]) + dt.timedelta(days=r.randint(3, 30))).isoformat()})
        authors = [person(r) for _ in range(r.randint(1, 5))]
        papers.append({
            "id": f"{ym}.{seq[ym]:05d}", "title": title, "authors": authors, "category": cat,
            "cross": r.sample([c for c in cats if c != cat], r.choice([0, 0, 1])),
            "submitted": sub.isoformat(), "versions": versions,
            "comments": f"{r.randint(6, 48)} pages, {r.randint(1, 14)} figures" + (r.choice(["", "; code released", "; accepted at a workshop"])),
            "abstract": (f"We study {t.lower()} and introduce {m.lower()}, a simple approach that needs "
                         f"{r.choice(['no extra labels', 'one GPU', 'a single pass over the data', 'fewer than ten hyperparameters'])}. "
                         f"On {r.randint(3, 12)} benchmarks it improves the strongest baseline by {r.randint(2, 19)}.{r.randint(0, 9)} points "
                         f"while using {r.randint(20, 80)}% less compute. We release our evaluation suite."),
        })
    write_json("archive", "data.json", {"papers": papers, "categories": {k: v[0] for k, v in CATS.items()}})
    write_json("archive", "search-index.json", [
        {"title": p["title"], "url": f"/archive/abs.html?id={p['id']}", "snippet": f"{', '.join(p['authors'])} · {p['category']}",
         "site": "Openprint"} for p in papers])
    return papers
