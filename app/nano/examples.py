"""Training examples for Deskhand Nano: a screen's prompt as the runtime builds it, and its reply.

The prompt is the family's own (`agent.prompts.get_family(...).build`), tokenized with the model
folder's chat template through `PromptTokenizer` (what both local backends do), with one change
the issue allows: a compact system prompt (`SYSTEM`) instead of the family's ~1k-token one, which
on a CPU budget would be ~85 % of every sequence and says nothing about the screen. The reply is
what the family's parser reads: `agent.actions.format_call` of a left_click at the target's
centre, in the family's coordinate space (Qwen2.5-VL: image pixels; Qwen3.5: the 1000-unit
display grid). Loss is on the reply tokens and the closing `<|im_end|>` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from agent.actions import LeftClick, Parsed, format_call
from agent.geometry import Size, Space
from agent.inference.chat import PromptTokenizer
from agent.inference.qwen35_inputs import QWEN35_SPEC
from agent.inference.vl_inputs import VisionSpec, image_tokens, patchify
from agent.prompts import PromptFamily, get_family
from app.nano.aux import cell_targets
from app.nano.screens import HEIGHT, WIDTH, WORDS, Screen

SYSTEM = "You are Deskhand Nano. Answer with one computer_use tool call."
MODEL_SIZE = Size(WIDTH, HEIGHT)
IGNORE = -100  # label of tokens without loss (prompt, padding)

# The vision inputs each family's processor makes (patch, merge, mean/std).
SPECS = {"fara": VisionSpec(), "fara15": QWEN35_SPEC}


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    labels: list[int]
    pixels: np.ndarray            # [patches, C*T*P*P]
    grid: tuple[int, int, int]
    # Auxiliary targets (app/nano/aux.py), per image token in order, and the reply position
    # whose next token is the first coordinate digit.
    read_labels: tuple[int, ...] = ()
    target_cells: tuple[bool, ...] = ()
    pointer_at: int = 0
    cell_cols: int = 0  # image cells per row (tokens are in raster order)
    digit_at: tuple[int, ...] = ()  # positions whose next token is a coordinate digit


class Encoder:
    """Turns screens into token ids, labels and pixels for one family and tokenizer."""

    def __init__(self, family_name: str, tokenizer, template: str) -> None:
        # The compact system prompt as the runtime will give it: declared by the model folder
        # (agent.prompts.PROMPT_FILE) and put in by the same wrapper the loop uses.
        self.family: PromptFamily = get_family(family_name, system=SYSTEM)
        self.spec = SPECS[family_name]
        self.prompts = PromptTokenizer(tokenizer, template)
        self.tokenizer = tokenizer
        self.im_end = tokenizer.token_to_id("<|im_end|>")

    def messages(self, screen: Screen) -> list:
        messages, images = self.family.build(screen.task, [], screen.image, MODEL_SIZE)
        if len(images) != 1:
            raise RuntimeError("the family's first step is not one image turn")
        return messages

    def reply(self, screen: Screen) -> str:
        """The tool call the family's parser reads as a click at the target's centre."""
        x, y = screen.target_button.box.centre
        if self.family.coordinates is Space.DISPLAY:
            display = self.family.display  # type: ignore[attr-defined]
            fx, fy = display.from_model(x, y, MODEL_SIZE)
            x, y = round(fx), round(fy)
        return format_call("", LeftClick(coordinate=(x, y))).strip()

    def prompt(self, screen: Screen) -> tuple[list[int], np.ndarray, tuple[int, int, int]]:
        pixels, grid = patchify(screen.image, self.spec)
        ids = self.prompts.encode(self.messages(screen), [image_tokens(grid, self.spec)])
        return ids, pixels, grid

    def encode(self, screen: Screen) -> Encoded:
        ids, pixels, grid = self.prompt(screen)
        text = self.reply(screen)
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        reply = [*encoding.ids, self.im_end]
        digit = text.index("[", text.index('"coordinate"')) + 1
        end = text.index("]", digit)
        first = next(i for i, (a, b) in enumerate(encoding.offsets) if a <= digit < b)
        digits = [i for i, (a, b) in enumerate(encoding.offsets)
                  if digit <= a and b <= end and text[a:b].strip().isdigit()]
        unit = self.spec.unit
        boxes = [(b.box.left, b.box.top, b.box.right, b.box.bottom) for b in screen.buttons]
        words = [WORDS.index(b.label) + 1 for b in screen.buttons]
        read, target = cell_targets(boxes, words, screen.target, grid[1] // self.spec.merge,
                                    grid[2] // self.spec.merge, unit)
        return Encoded(ids + reply, [IGNORE] * len(ids) + reply, pixels, grid,
                       tuple(read), tuple(target), len(ids) + first - 1,
                       grid[2] // self.spec.merge, tuple(len(ids) + i - 1 for i in digits))

    def click(self, text: str) -> tuple[int, int] | None:
        """The MODEL-pixel point of a reply's left_click; None for anything else."""
        parsed = self.family.parse(text, MODEL_SIZE)
        if isinstance(parsed, Parsed) and isinstance(parsed.action, LeftClick):
            return parsed.action.coordinate
        return None


def collate(batch: list[Encoded], pad_id: int, image_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, labels and mask, and all images' patches stacked in order.

    `mm_token_type_ids` (1 on image tokens) is what transformers' M-RoPE position rule reads.
    """
    length = max(len(e.ids) for e in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), length), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = torch.tensor(e.ids)
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
        mask[row, : len(e.ids)] = 1
    pixels = torch.from_numpy(np.concatenate([e.pixels for e in batch]))
    grids = torch.tensor([e.grid for e in batch], dtype=torch.long)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask,
            "mm_token_type_ids": (ids == image_id).long(),
            "pixel_values": pixels, "image_grid_thw": grids}


def aux_targets(batch: list[Encoded]) -> dict[str, torch.Tensor]:
    """The auxiliary heads' targets for a batch collated by `collate` (same order)."""
    return {"read_labels": torch.tensor([c for e in batch for c in e.read_labels]),
            "target_cells": torch.tensor([c for e in batch for c in e.target_cells]),
            "pointer_at": torch.tensor([e.pointer_at for e in batch]),
            "cell_rows": torch.tensor([i // e.cell_cols for e in batch
                                       for i in range(len(e.read_labels))]),
            "cell_cols": torch.tensor([i % e.cell_cols for e in batch
                                       for i in range(len(e.read_labels))]),
            "digit_at": [list(e.digit_at) for e in batch]}
