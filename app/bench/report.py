"""The printed report of `deskhand bench`: per-step table, summary with ratios, levers, bounds."""

from __future__ import annotations

import statistics
from typing import Any

from app.bench.families import FAMILIES, full_depth

GB = 1e9
STEADY_FROM = 4  # from step 4 on the oldest of three screenshots leaves the prompt every step


def steady_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steady-state steps of a run: 4 and later, or the last one of a shorter run."""
    later = [s for s in steps if s["step"] >= STEADY_FROM]
    return later or steps[-1:]


def phase(steps: list[dict[str, Any]], key: str) -> float:
    """Median of one field over steps."""
    return statistics.median(s[key] for s in steps)


def summary(row: dict[str, Any]) -> dict[str, float]:
    """Cold (step 1), step 3 and steady-state seconds of one backend's run."""
    steps = row["steps"]
    steady = steady_steps(steps)
    by_step = {s["step"]: s for s in steps}
    return {"cold": by_step[1]["total_s"],
            "step3": by_step[3]["total_s"] if 3 in by_step else float("nan"),
            "steady": phase(steady, "total_s"),
            "decode_ms": 1000 * phase(steady, "decode_per_token_s"),
            "context": phase(steady, "prompt_tokens")}


def kv_bytes_per_token(row: dict[str, Any], shape: dict[str, Any]) -> int:
    """Bytes of keys and values one cached token takes in this backend (built full-attention
    layers: linear-attention layers keep a fixed state instead, see `state_bytes`)."""
    width = 2 if row.get("dtype") == "bfloat16" and row["runner"] == "torch" else 4
    return 2 * (shape["layers"] - shape.get("linear_layers", 0)) * shape["kv_width"] * width


def state_bytes(shape: dict[str, Any]) -> int:
    """Bytes a decode token moves through the linear-attention states: each built layer's
    recurrent and convolution state, read and written back (fp32), whatever the context."""
    from app.bench.model import Shape

    return 2 * shape.get("linear_layers", 0) * Shape(**shape).state_bytes()


def format_report(report: dict[str, Any]) -> str:
    """The whole report as text."""
    shape, rows = report["shape"], report["rows"]
    w, h = report["size"]
    ok = [r for r in rows if "error" not in r]
    lines = [f"Agent run: {ok[0]['steps'][-1]['step'] if ok else '?'} steps, one new {w}x{h} "
             f"screenshot per step (newest 3 kept), {report['new_tokens']} decoded tokens per step "
             f"(EOS suppressed); model with {shape['layers']} text layers and {shape['v_blocks']} "
             f"vision blocks ({shape['v_full_blocks']} full-attention), hidden {shape['hidden']}, "
             f"vocab {shape['vocab']}."]
    repeats = max((r.get("repeat", 1) for r in ok), default=1)
    if repeats > 1:
        lines.append(f"Each figure: median of {repeats} runs (every run's step totals are in --json).")
    for part in (_step_table(rows), _summary_table(ok, report), _lever_table(ok),
                 _extrapolated_table(report), _bound_table(ok, report)):
        lines += ["", *part]
    return "\n".join(lines)


def _step_table(rows: list[dict[str, Any]]) -> list[str]:
    head = (f"{'backend':<20}{'step':>5}{'img':>4}{'prompt':>8}{'cached':>8}{'enc':>4}"
            f"{'vision s':>10}{'prefill s':>11}{'ms/tok':>8}{'step s':>9}")
    lines = ["Measured, step by step", head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['backend']:<20} FAILED: {r['error'][:200]}")
            continue
        for s in r["steps"]:
            lines.append(f"{r['backend']:<20}{s['step']:>5}{s['images']:>4}{s['prompt_tokens']:>8}"
                         f"{s['cached_tokens']:>8}{s['images_encoded']:>4}{s['vision_s']:>10.2f}"
                         f"{s['prefill_s']:>11.2f}{1000 * s['decode_per_token_s']:>8.1f}"
                         f"{s['total_s']:>9.2f}")
    lines += ["  cached = prompt tokens whose keys/values were reused from the previous step; "
              "enc = screenshots encoded (the others' features came from the cache).",
              "  prefill s = first-token time without vision; ms/tok over the tokens after the "
              "first; step s = from messages to the last token."]
    return lines


def _summary_table(rows: list[dict[str, Any]], report: dict[str, Any]) -> list[str]:
    sums = {r["backend"]: summary(r) for r in rows}
    bf16, fp32 = sums.get("torch-bf16"), sums.get("torch-fp32")
    head = (f"{'backend':<20}{'cold s':>8}{'x bf16':>8}{'step3 s':>9}{'x bf16':>8}{'steady s':>10}"
            f"{'x bf16':>8}{'x fp32':>8}{'RSS GB':>8}{'weights GB':>12}{'RSS/w':>7}")
    lines = ["Summary: cold = step 1 of a run (after the app's warm-up), steady = median of steps "
             f"{STEADY_FROM}+; x bf16 / x fp32 = PyTorch's time over ours (above 1: we are faster)",
             head, "-" * len(head)]
    for r in rows:
        s = sums[r["backend"]]
        weights = report["weight_bytes"][r["backend"]]
        lines.append(
            f"{r['backend']:<20}{s['cold']:>8.2f}{_speedup(bf16, s, 'cold'):>8}{s['step3']:>9.2f}"
            f"{_speedup(bf16, s, 'step3'):>8}{s['steady']:>10.2f}{_speedup(bf16, s, 'steady'):>8}"
            f"{_speedup(fp32, s, 'steady'):>8}{r['peak_rss'] / GB:>8.2f}{weights / GB:>12.2f}"
            f"{r['peak_rss'] / weights:>7.2f}")
    lines.append("  RSS = peak resident memory of the backend's own process; weights = its model "
                 "files (ONNX graphs and data, or the checkpoint in its dtype).")
    return lines


def _lever_table(rows: list[dict[str, Any]]) -> list[str]:
    by_name = {r["backend"]: r for r in rows}
    base = by_name.get("onnx-int4")
    levers = [r for r in rows if r.get("lever")]
    if base is None or not levers:
        return ["Levers: run with --levers to measure each optimisation on its own."]
    adaptive = [r for r in rows if r.get("history_scale", 1.0) != 1.0]
    shifted = [r for r in rows if r.get("kv_shift")]
    ours = summary(base)
    head = f"{'optimisation':<70}{'cold gain':>10}{'steady gain':>12}"
    lines = ["Levers: onnx-int4 against the same run with one optimisation off (gain = time "
             "without / time with)", head, "-" * len(head)]
    for r in levers:
        off = summary(r)
        lines.append(f"{r['lever'][:69]:<70}{off['cold'] / ours['cold']:>9.2f}x"
                     f"{off['steady'] / ours['steady']:>11.2f}x")
    lines += ["", "Adaptive compute (off by default: it changes what the model sees; its effect on "
              "success is measured with `deskhand eval compare`)"]
    for r in adaptive:
        on = summary(r)
        lines.append(f"  {r['backend']}: earlier screenshots at {r['history_scale']:g} of their "
                     f"sides: steady step {on['steady']:.2f} s vs {ours['steady']:.2f} s "
                     f"({ours['steady'] / on['steady']:.2f}x faster)")
    for r in shifted:
        on = summary(r)
        lines.append(f"  {r['backend']}: shifted reuse past the screenshot that left (--kv-shift, "
                     f"an approximation): steady step {on['steady']:.2f} s vs {ours['steady']:.2f} s "
                     f"({ours['steady'] / on['steady']:.2f}x faster), cold {on['cold']:.2f} s")
    lines.append(f"  --idle-waits: each wait answered without the model saves a whole model call "
                 f"(here {ours['steady']:.2f} s per steady step)")
    return lines


def _extrapolated_table(report: dict[str, Any]) -> list[str]:
    ext = report["extrapolated"]
    if report.get("real_size"):
        label = FAMILIES[report["family"]].label
        return [f"Not extrapolated: {label} was built at its real size (the figures above are "
                "the model's own; only its weights are random)."]
    if not ext:
        return []
    head = (f"{'backend':<20}{'vision s':>10}{'prefill s':>11}{'ms/tok':>9}{'cold s':>9}"
            f"{'steady s':>10}{'x bf16':>8}{'x fp32':>8}")
    lines = [f"Extrapolated to {full_label(report['shape'])}: estimated, not measured; vision, "
             "prefill and ms/tok are steady-state medians", head, "-" * len(head)]
    sums = {}
    for name, steps in ext.items():
        steady = steady_steps(steps)
        sums[name] = {"cold": steps[0]["step_full_s"], "steady": phase(steady, "step_full_s"),
                      "vision": phase(steady, "vision_full_s"),
                      "prefill": phase(steady, "prefill_full_s"),
                      "ms": phase(steady, "decode_full_ms")}
    bf16, fp32 = sums.get("torch-bf16"), sums.get("torch-fp32")
    for name, s in sums.items():
        lines.append(f"{name:<20}{s['vision']:>10.1f}{s['prefill']:>11.1f}{s['ms']:>9.1f}"
                     f"{s['cold']:>9.1f}{s['steady']:>10.1f}{_speedup(bf16, s, 'steady'):>8}"
                     f"{_speedup(fp32, s, 'steady'):>8}")
    lines += ["  Method: vision and prefill (compute-bound) split over their parts by "
              "multiply-accumulates (linear layers per token, attention over windows, whole",
              "  images and the causal prompt including cached tokens), decode (memory-bound) by "
              "the weight bytes read per token; the per-layer part is scaled to the full depth.",
              "  Prefill is the first-token time minus vision, so it also holds the embedding and "
              "runtime work outside the layers: scaled per layer, it is an upper bound."]
    if report["shape"].get("linear_layers"):
        lines += ["  Linear-attention layers are measured and scaled apart from the full-attention "
                  "ones: constant work per token (no growth with the cached context) in prefill,",
                  "  their weights plus the recurrent and convolution state (read and written "
                  "back) per decoded token."]
    return lines


def full_label(shape: dict[str, Any]) -> str:
    """The full model the costs are scaled to, with its depths."""
    family = shape.get("family", "")
    full = full_depth(shape.get("model_type", ""), family)
    name = FAMILIES[family].label if family in FAMILIES else next(
        f.label for f in FAMILIES.values() if f.full == full)
    vision = (f"{full.vision} vision blocks, all full-attention" if full.vision == full.vision_full
              else f"{full.vision} vision blocks, {full.vision_full} full-attention")
    layers = (f"{full.text} text layers ({full.linear} linear-attention, "
              f"{full.text - full.linear} full-attention)" if full.linear
              else f"{full.text} text layers")
    unverified = "" if full.verified else " [depths partly UNVERIFIED]"
    return f"{name} ({layers}, {vision}){unverified}"


def _bound_table(rows: list[dict[str, Any]], report: dict[str, Any]) -> list[str]:
    bw, shape = report["bandwidth"], report["shape"]
    lines = [f"Memory bandwidth: {bw['read_gbs']:.1f} GB/s streaming read ({bw['threads']} threads), "
             f"{bw['copy_gbs']:.1f} GB/s copy (1 thread, read + write counted); best of 5 over "
             f"{bw['megabytes']} MB, at the start and the end of the bench"
             + (" (start {:.1f}, end {:.1f} GB/s read).".format(*bw["readings_gbs"])
                if "readings_gbs" in bw else "."),
             "Decode bound = read bandwidth / bytes one token must read: decoder layers + LM head "
             "as stored, plus the keys and values of the steady-state context"
             + (" and the linear layers' state (read + write)." if shape.get("linear_layers")
                else "."),
             f"{'backend':<20}{'weights MB':>11}{'KV MB':>8}{'state MB':>9}{'bound tok/s':>13}"
             f"{'tok/s':>8}{'of bound':>10}{'GB/s used':>11}"]
    for r in rows:
        weights = report["bytes_per_token"][r["backend"]]
        s = summary(r)
        kv = kv_bytes_per_token(r, shape) * (s["context"] + report["new_tokens"] / 2)
        state = state_bytes(shape)
        read = weights["layers"] + weights["lm_head"] + kv + state
        bound = bw["read_gbs"] * GB / read
        speed = 1000 / s["decode_ms"]
        lines.append(f"{r['backend']:<20}{(read - kv - state) / 1e6:>11.0f}{kv / 1e6:>8.0f}"
                     f"{state / 1e6:>9.1f}{bound:>13.1f}{speed:>8.2f}{speed / bound:>9.0%} "
                     f"{speed * read / GB:>10.1f}")
    return lines


def _speedup(base: dict[str, float] | None, ours: dict[str, float], key: str) -> str:
    if not base or not ours[key] or base[key] != base[key]:
        return "-"
    return f"{base[key] / ours[key]:.2f}"


def format_families(reports: dict[str, dict[str, Any]]) -> str:
    """Several families' reports (one run, one machine), then their rows side by side."""
    parts = []
    for name, report in reports.items():
        label = FAMILIES[name].label
        title = (f"=== {label} ({name}, its real size, random weights) ==="
                 if report.get("real_size") else f"=== {label}-shaped ({name}) ===")
        parts += [title, format_report(report), ""]
    return "\n".join(parts + _family_table(reports))


def _family_table(reports: dict[str, dict[str, Any]]) -> list[str]:
    head = (f"{'family':<11}{'backend':<13}{'layers':>7}{'cold s':>8}{'steady s':>9}{'ms/tok':>8}"
            f"{'tok/s':>7}{'bound':>7}{'RSS GB':>8}{'full steady s*':>15}{'full ms/tok*':>13}")
    lines = ["Families side by side: measured at the built depth; * = extrapolated to the full "
             "depth (estimated, not measured)", head, "-" * len(head)]
    for name, report in reports.items():
        shape, bw = report["shape"], report["bandwidth"]
        for r in report["rows"]:
            if "error" in r:
                lines.append(f"{name:<11}{r['backend']:<13} FAILED")
                continue
            s = summary(r)
            weights = report["bytes_per_token"][r["backend"]]
            read = (weights["layers"] + weights["lm_head"] + state_bytes(shape)
                    + kv_bytes_per_token(r, shape) * (s["context"] + report["new_tokens"] / 2))
            steps = report["extrapolated"].get(r["backend"])  # none for the llama.cpp row
            ext = steady_steps(steps) if steps else None
            full = (f"{phase(ext, 'step_full_s'):>15.1f}{phase(ext, 'decode_full_ms'):>13.1f}"
                    if ext else f"{'-':>15}{'-':>13}")
            built = f"{shape['layers']}/{shape['v_blocks']}"
            lines.append(f"{name:<11}{r['backend']:<13}{built:>7}{s['cold']:>8.2f}{s['steady']:>9.2f}"
                         f"{s['decode_ms']:>8.1f}{1000 / s['decode_ms']:>7.1f}"
                         f"{bw['read_gbs'] * GB / read:>7.1f}{r['peak_rss'] / GB:>8.2f}{full}")
    lines += ["  layers = text layers / vision blocks built; bound = decode tok/s the measured read "
              "bandwidth allows at the built depth; full depths:"]
    lines += [f"    {name}: {full_label(report['shape'])}" for name, report in reports.items()]
    return lines
