"""Can Nano's vision tower learn to read the drawn button labels when reading is all it is taught?

Deskhand Nano clicks a button but not the named one (README, "Deskhand Nano": the image cells do
not know which word they show). This probe takes the model apart from that question: it trains
only the vision tower (with its merger) and a small word head on drawn button screens
(app.nano.screens, 3-8 buttons, training words), each image cell classed by the word that covers
it (0: none; app.nano.aux.cell_targets, as training's reading target), the loss the mean of the
labelled cells' and the unlabelled cells' cross-entropy. Every `--eval-every` steps it scores
held-out layouts: the share of labelled cells whose most likely class is their word, and of
buttons whose cells' summed log-probabilities name their word (chance 1 in 48 for both).
Usage:

    .venv/bin/python scripts/probe_reading.py --out LOG.jsonl [--init RUN | --vision-hidden 128
        --vision-blocks 4] [--upscale 1] [--minutes 15] [--max-steps N] [--eval-n 64]
        [--eval-every 100] [--threads 1] [--seed 0] [--lr 5e-4]

`--init RUN` starts from a training run's checkpoint or a stage snapshot (app.nano.snapshot,
e.g. app/nano/stages/anneal): its tower as trained with the rest; otherwise the tower is random
at the given width and depth (the rest of the probe size).
`--upscale K` resizes each drawn screen K times (boxes with it) before the model sees it: the
same letters over K² as many patches. The budget is CPU minutes of this process (evaluations
included), so towers of different sizes are compared at equal compute.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.nano import snapshot
from app.nano.aux import NONE, balanced_cross_entropy
from app.nano.examples import Encoder
from app.nano.model import SIZES, build_model, fast_patch_embedding, make_folder
from app.nano.screens import WORDS, Box, Button, Screen, make_screen

BUTTONS = (3, 8)  # more labels per screen than the 1-2 of the click runs: more reading signal
BATCH = 16


def scaled(screen: Screen, k: int) -> Screen:
    """`screen` resized k times, its boxes with it (k=1: itself)."""
    if k == 1:
        return screen
    image = screen.image.resize((screen.image.width * k, screen.image.height * k), Image.BICUBIC)
    buttons = tuple(Button(b.label, Box(b.box.left * k, b.box.top * k, b.box.right * k,
                                        b.box.bottom * k)) for b in screen.buttons)
    return replace(screen, image=image, buttons=buttons)


def batch(encoder: Encoder, split: str, indices, k: int):
    """(patches, grids, each cell's word class) of the screens `indices` of `split`."""
    pixels, grids, labels = [], [], []
    for i in indices:
        e = encoder.encode(scaled(make_screen(split, i, BUTTONS), k))
        pixels.append(torch.from_numpy(e.pixels))
        grids += list(e.grids)
        labels += list(e.read_labels)
    return torch.cat(pixels), torch.tensor(grids), torch.tensor(labels)


def logits(model, head, pixels: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    out = model.model.get_image_features(pixel_values=pixels, image_grid_thw=grids)
    return head(torch.cat(list(out.pooler_output)))


def evaluate(model, head, encoder: Encoder, n: int, k: int, merge: int) -> dict:
    """Cell and button reading accuracy on the first `n` held-out layouts."""
    model.eval()
    cells = cells_right = words = words_right = 0
    with torch.no_grad():
        for start in range(0, n, BATCH):
            pixels, grids, labels = batch(encoder, "heldout", range(start, min(n, start + BATCH)), k)
            logp = F.log_softmax(logits(model, head, pixels, grids), dim=-1)
            known = labels != NONE
            cells += int(known.sum())
            cells_right += int((logp.argmax(-1)[known] == labels[known]).sum())
            at = 0
            for count in (grids[:, 1] * grids[:, 2] // merge ** 2).tolist():
                lp, lb = logp[at:at + count], labels[at:at + count]
                for word in set(lb.tolist()) - {NONE}:  # one button per word on a screen
                    words += 1
                    words_right += int(lp[lb == word][:, 1:].sum(0).argmax()) + 1 == word
                at += count
    model.train()
    return {"cell_acc": round(cells_right / max(cells, 1), 4),
            "word_acc": round(words_right / max(words, 1), 4), "cells": cells, "words": words}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="JSON lines: start, evaluations, end")
    p.add_argument("--init", type=Path, default=None, metavar="RUN",
                   help="a Nano training run or stage snapshot whose tower to start from "
                        "(default: a random tower)")
    p.add_argument("--size", choices=tuple(SIZES), default="probe",
                   help="the random tower's base size (micro is for tests)")
    p.add_argument("--vision-hidden", type=int, default=None,
                   help="the random tower's width (default: the size's; its MLP is 4x this)")
    p.add_argument("--vision-blocks", type=int, default=None,
                   help="the random tower's depth (default: the size's)")
    p.add_argument("--upscale", type=int, default=1, metavar="K",
                   help="resize each drawn screen K times before the model sees it")
    p.add_argument("--minutes", type=float, default=15.0,
                   help="CPU minutes of this process, evaluations included")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--eval-n", type=int, default=64, help="held-out layouts per evaluation")
    p.add_argument("--eval-every", type=int, default=100, help="steps between evaluations")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0, help="weights and screens")
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate (20 warm-up steps)")
    return p


def _model(args, p: argparse.ArgumentParser):
    weights = None
    if args.init is not None:
        if args.vision_hidden or args.vision_blocks:
            p.error("--init keeps that run's tower: no --vision-hidden/--vision-blocks")
        try:
            weights = snapshot.weights_of(args.init)
        except ValueError as exc:
            p.error(f"--init: {exc}")
        if weights["family"] != "fara15":
            p.error(f"--init: that run trained {weights['family']}, not fara15")
        folder = args.init / "model"
    else:
        base = SIZES[args.size]
        hidden = args.vision_hidden or base.vision_hidden
        size = replace(base, vision_hidden=hidden, vision_blocks=args.vision_blocks or
                       base.vision_blocks, vision_mlp=4 * hidden)
        folder = Path(tempfile.mkdtemp(prefix="probe-reading-")) / "model"
        make_folder("fara15", folder, size)
    model = build_model(folder, None)
    fast_patch_embedding(model)
    if weights is not None:
        model.load_state_dict(weights["model"])
    return model, folder


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.upscale < 1:
        p.error("--upscale: 1 or more")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model, folder = _model(args, p)
    encoder = Encoder.of_folder("fara15", folder)
    if args.init is None:  # the random tower's folder was only for building it and its encoder
        shutil.rmtree(folder.parent, ignore_errors=True)
    merge = encoder.spec.merge
    hidden = model.config.get_text_config().hidden_size
    head = torch.nn.Sequential(torch.nn.Linear(hidden, 256), torch.nn.GELU(),
                               torch.nn.Linear(256, len(WORDS) + 1))
    params = [*model.model.visual.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    cpu0, step, rng = time.process_time(), 0, random.Random(args.seed)
    with args.out.open("w", encoding="utf-8") as log:
        def record(entry: dict) -> None:
            line = json.dumps(entry)
            print(line, file=log, flush=True)
            print(line, flush=True)

        record({"kind": "start", **{k: str(v) for k, v in vars(args).items()},
                "tower_params": sum(q.numel() for q in model.model.visual.parameters())})
        record({"kind": "eval", "step": 0, **evaluate(model, head, encoder, args.eval_n,
                                                       args.upscale, merge)})
        while ((time.process_time() - cpu0) / 60 < args.minutes
               and (args.max_steps is None or step < args.max_steps)):
            pixels, grids, labels = batch(encoder, "train",
                                          [rng.randrange(10 ** 7) for _ in range(BATCH)],
                                          args.upscale)
            out = logits(model, head, pixels, grids)
            loss = balanced_cross_entropy(out, labels)
            for group in optimizer.param_groups:
                group["lr"] = args.lr * min(1.0, (step + 1) / 20)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % args.eval_every == 0:
                record({"kind": "eval", "step": step, "loss": round(float(loss.detach()), 4),
                        "cpu_min": round((time.process_time() - cpu0) / 60, 2),
                        **evaluate(model, head, encoder, args.eval_n, args.upscale, merge)})
        record({"kind": "end", "step": step,
                "cpu_min": round((time.process_time() - cpu0) / 60, 2),
                **evaluate(model, head, encoder, args.eval_n, args.upscale, merge)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
