"""The model families `deskhand bench --families` can put side by side.

One entry per family: the prompt family its worker builds steps with, the screenshot size and
grid unit of its processor, the full depth its costs are extrapolated to, and how its random
checkpoint is built (at reduced depth for a real run, tiny for `--tiny`). Full depths are the
published configs': Fara-7B's (Qwen2.5-VL-7B) and Fara1.5-4B's text decoder (Qwen3.5-4B, see
`app.bench.checkpoints_qwen35.fara15_4b_config` for what was confirmed and what was not).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FullDepth:
    """The depth the per-layer costs are scaled to."""

    text: int               # decoder layers
    linear: int             # of which linear-attention (recurrent state, no KV)
    vision: int             # vision blocks
    vision_full: int        # of which full-attention (the rest attend in windows)
    verified: bool = True   # False: some depths are not confirmed from the real config


@dataclass(frozen=True)
class BenchFamily:
    """One family of the bench."""

    name: str               # the --families key
    label: str              # what the report calls the full model
    prompt_family: str      # agent.prompts family the steps are built with
    unit: int               # screenshot sides are multiples of patch x merge
    size: str               # default screenshot size at model size
    tiny_size: str          # the same for --tiny
    full: FullDepth
    build: Callable[[Path, argparse.Namespace], Path]  # writes the reduced-depth checkpoint
    build_tiny: Callable[[Path], Path]
    new_tokens: int = 100   # decoded tokens per step unless --new-tokens says
    real_size: bool = False  # built at the real model's depth (not with --tiny): not extrapolated

    def folder_name(self, args: argparse.Namespace) -> str:
        """The work-dir folder of this family's checkpoint and exports."""
        if args.tiny:
            return "tiny" if self.name == "fara7b" else f"tiny-{self.name}"
        if self.name == "fara7b":
            return f"fara-t{args.text_layers}-v{args.vision_blocks}"
        if self.name == "nano":  # built at its real size: the depth options do not apply
            return "nano"
        return f"{self.name}-t{args.fara15_layers}-v{args.vision_blocks}"


def _fara7b(out: Path, args: argparse.Namespace) -> Path:
    from app.bench.checkpoints import make_fara_shaped_checkpoint

    return make_fara_shaped_checkpoint(out, text_layers=args.text_layers,
                                       vision_blocks=args.vision_blocks)


def _fara7b_tiny(out: Path) -> Path:
    from app.bench.checkpoints import make_tiny_checkpoint

    return make_tiny_checkpoint(out)


def _fara15(out: Path, args: argparse.Namespace) -> Path:
    from app.bench.checkpoints_qwen35 import make_fara15_shaped_checkpoint

    return make_fara15_shaped_checkpoint(out, layers=args.fara15_layers,
                                         vision_blocks=args.vision_blocks)


def _fara15_tiny(out: Path) -> Path:
    from app.bench.checkpoints_qwen35 import make_tiny_qwen35_checkpoint

    return make_tiny_qwen35_checkpoint(out)


def _nano(out: Path, args: argparse.Namespace) -> Path:
    from app.nano.model import random_checkpoint

    return random_checkpoint(out)


def _nano_tiny(out: Path) -> Path:
    from app.nano.model import MICRO, random_checkpoint

    return random_checkpoint(out, MICRO)


FAMILIES = {
    "fara7b": BenchFamily("fara7b", "Fara-7B", "fara", 28, "1428x896", "308x224",
                          FullDepth(text=28, linear=0, vision=32, vision_full=4),
                          _fara7b, _fara7b_tiny),
    # 1440x896: the agent's 1440x900 viewport on the factor-32 grid. Vision depth UNVERIFIED.
    "fara15-4b": BenchFamily("fara15-4b", "Fara1.5-4B", "fara15", 32, "1440x896", "320x224",
                             FullDepth(text=32, linear=24, vision=24, vision_full=24,
                                       verified=False),
                             _fara15, _fara15_tiny),
    # Deskhand Nano (app.nano.model.PROBE; a test keeps these equal) is built at its real size:
    # nothing is extrapolated. Its screenshots are its declared limit (a 1280x800 screen is seen
    # at 512x320), its prompt the folder's declared one, and a step decodes one click reply
    # (33 tokens and the end token in its tokenizer, measured on its replies to 40 drawn screens).
    "nano": BenchFamily("nano", "Deskhand Nano", "fara15", 32, "512x320", "512x320",
                        FullDepth(text=4, linear=3, vision=4, vision_full=4),
                        _nano, _nano_tiny, new_tokens=34, real_size=True),
}
DEFAULT_FAMILY = "fara7b"


def full_depth(model_type: str, family: str = "") -> FullDepth:
    """The full depth of `family` (a --families key), else of the family a checkpoint's
    model_type belongs to (Nano shares Fara1.5's model type, so it is named)."""
    if family in FAMILIES:
        return FAMILIES[family].full
    return FAMILIES["fara15-4b" if model_type == "qwen3_5" else "fara7b"].full
