"""The command line of `python -m app.nano.train`: its options and the device check that runs
before anything is built (a run refused late would have drawn screens and loaded weights)."""

from __future__ import annotations

import argparse

import torch

from app.nano.model import SIZES
from app.nano.screens import KINDS, button_range


def build_parser(doc: str) -> argparse.ArgumentParser:
    """The command line of `python -m app.nano.train` (`doc`: that module's docstring)."""
    p = argparse.ArgumentParser(prog="python -m app.nano.train", description=doc.split("\n")[0])
    p.add_argument("--family", choices=("fara15", "fara"), required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=None,
                   help="training CPU minutes, in total (give it, --max-steps, or both)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init-from", metavar="DIR",
                   help="start from another run's trained weights, or a snapshot of them "
                        "(app.nano.snapshot): a curriculum's next stage, with its tokenizer and "
                        "config, a fresh optimizer, step 0")
    p.add_argument("--size", choices=tuple(SIZES), default="probe")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu",
                   help="torch device to train on: cpu (default), cuda, cuda:1 ... (screens are "
                        "made and drawn on the CPU either way; checkpoints load anywhere)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=100, help="steps between held-out evaluations")
    p.add_argument("--eval-n", type=int, default=40, help="screens per held-out split")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=0,
                   help="processes that draw and encode the next steps' screens while this one "
                        "trains (default 0: drawn here, between steps). A whole Qt screen is "
                        "~30-40 ms of CPU, so on a GPU the drawing is the run unless spread "
                        "over the cores; the batches are the same either way")
    p.add_argument("--buttons", type=button_range, default=None, metavar="LO-HI",
                   help="buttons per screen, in training and evaluation (default 3-8; a "
                        "curriculum starts at 1-1)")
    p.add_argument("--screens", choices=KINDS, default="buttons",
                   help="what to train on: 448x224 drawn buttons, Qt windows on whole "
                        "screens with the step after the click (app.nano.desktop), or both "
                        "(mixed: half each; ladder: mixed with half its whole screens smaller, "
                        "640x400..960x600, seen nearer their size; look: ladder with half its "
                        "whole screens the second look's 640x400 regions around the button), "
                        "or forms (type a value "
                        "into a named text field on a whole screen), web (generated pages with one "
                        "to four buttons, one named, drawn by Chromium in a browser window, "
                        "app.nano.web), webforms (such pages whose task types a value into a "
                        "named text field, app.nano.webforms) or webladder (ladder "
                        "with a third of its screens web pages)")
    p.add_argument("--aux-read", type=float, default=0.0,
                   help="weight of the reading target (which word covers each image cell)")
    p.add_argument("--read-tied", action="store_true",
                   help="score each cell's word against the model's own embedding of that word "
                        "(app.nano.aux) instead of a classifier of its own; a run keeps its choice")
    p.add_argument("--read-balanced", action="store_true",
                   help="the reading loss as the mean of the labelled cells' and the unlabelled "
                        "cells' (app.nano.aux), not one mean where unlabelled cells dominate")
    p.add_argument("--aux-point", type=float, default=0.0,
                   help="weight of the pointing target (the reply's match to the target's cells)")
    p.add_argument("--aux-where", type=float, default=0.0,
                   help="weight of the where target (each image token's own row and column)")
    p.add_argument("--aux-attend", type=float, default=0.0,
                   help="weight of the attend target (one head of the last full-attention layer "
                        "on the target's cells at the digit positions)")
    p.add_argument("--attend-at", choices=("all", "first"), default="all",
                   help="where the attend target applies: every digit-predicting position (all) "
                        "or only the first digit's, before any digit of the answer is in context")
    p.add_argument("--aux-centre", type=float, default=0.0,
                   help="weight of the centre target (where the target's centre is, read from "
                        "each image token it covers)")
    p.add_argument("--digit-weight", type=float, default=1.0,
                   help="loss weight of the reply's digit tokens against its other tokens")
    p.add_argument("--solved", metavar="DATA_DIR", default=None,
                   help="verified solver trajectories (python -m app.nano.solved): a share of "
                        "each batch is their steps, prompted as the loop would (fara15 only)")
    p.add_argument("--solved-share", type=float, default=0.25, metavar="F",
                   help="with --solved: the expected share of each batch taken from it "
                        "(default 0.25; which slots is fixed by the seed and step)")
    return p


def check_device(parser: argparse.ArgumentParser, name: str) -> None:
    """Refuse (parser.error) a --device this torch cannot train on."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        parser.error(f"--device: {exc}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {name}: this torch sees no CUDA device "
                     f"(torch {torch.__version__}, a CPU build or no driver)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        parser.error(f"--device {name}: this machine has {torch.cuda.device_count()} "
                     "CUDA device(s), numbered from 0")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device {name}: cpu or cuda[:N]")
