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
from pathlib import Path

import numpy as np
import torch

from agent.actions import Action, LeftClick, Parsed, Terminate, TypeText, format_call
from agent.geometry import Size, Space
from agent.inference.chat import PromptTokenizer, find_chat_template
from agent.inference.qwen35_inputs import QWEN35_SPEC
from agent.inference.vl_inputs import VisionSpec, image_tokens, patchify
from agent.prompts import PromptFamily, Turn, get_family
from app.nano.aux import IGNORE, NO_CENTRE, NONE, UNKNOWN, cell_targets, centre_bins
from app.nano.screens import HEIGHT, WIDTH, WORDS, Screen

SYSTEM = "You are Deskhand Nano. Answer with one computer_use tool call."
MODEL_SIZE = Size(WIDTH, HEIGHT)  # the "buttons" screens' size (desktop screens vary)

# The vision inputs each family's processor makes (patch, merge, mean/std).
SPECS = {"fara": VisionSpec(), "fara15": QWEN35_SPEC}


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    labels: list[int]
    pixels: np.ndarray            # [patches, C*T*P*P], all images in order
    grids: tuple[tuple[int, int, int], ...]  # one per image
    # Auxiliary targets (app/nano/aux.py), per image token in order (every image's), and the
    # reply position whose next token is the first coordinate digit (no digits: no pointer).
    read_labels: tuple[int, ...] = ()
    target_cells: tuple[bool, ...] = ()
    pointer_at: int | None = None
    cell_rows: tuple[int, ...] = ()  # each image token's row and column in its image
    cell_cols: tuple[int, ...] = ()
    digit_at: tuple[int, ...] = ()  # positions whose next token is a coordinate digit
    centre_x: tuple[int, ...] = ()  # per image token: the target's centre bin where it covers
    centre_y: tuple[int, ...] = ()  # the token, else NO_CENTRE


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

    @classmethod
    def of_folder(cls, family_name: str, folder: Path) -> Encoder:
        """The encoder of a model folder: its tokenizer.json and chat template."""
        from tokenizers import Tokenizer

        return cls(family_name, Tokenizer.from_file(str(folder / "tokenizer.json")),
                   find_chat_template(folder))

    def build(self, screen: Screen) -> tuple[list, list]:
        return build_prompt(self.family, screen)

    def messages(self, screen: Screen) -> list:
        return self.build(screen)[0]

    def reply(self, screen: Screen) -> str:
        return answer(self.family, screen)

    def prompt(self, screen: Screen) -> tuple[list[int], np.ndarray, tuple[tuple[int, int, int], ...]]:
        return self.tokens(*self.build(screen))

    def tokens(self, messages: list, images: list) -> tuple[list[int], np.ndarray,
                                                             tuple[tuple[int, int, int], ...]]:
        """Token ids (image placeholders expanded), patches and grids of a family's prompt."""
        patched = [patchify(image, self.spec) for image in images]
        grids = tuple(grid for _, grid in patched)
        ids = self.prompts.encode(messages, [image_tokens(g, self.spec) for g in grids])
        return ids, np.concatenate([p for p, _ in patched]), grids

    def encode(self, screen: Screen) -> Encoded:
        ids, pixels, grids = self.prompt(screen)
        text = self.reply(screen)
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        reply = [*encoding.ids, self.im_end]
        pointer, digit_at = None, ()
        if screen.previous is None:
            digit = text.index("[", text.index('"coordinate"')) + 1
            end = text.index("]", digit)
            first = next(i for i, (a, b) in enumerate(encoding.offsets) if a <= digit < b)
            digits = [i for i, (a, b) in enumerate(encoding.offsets)
                      if digit <= a and b <= end and text[a:b].strip().isdigit()]
            pointer, digit_at = len(ids) + first - 1, tuple(len(ids) + i - 1 for i in digits)
        read, target, rows, cols, cx, cy = [], [], [], [], [], []
        for n, grid in enumerate(grids):
            h, w = grid[1] // self.spec.merge, grid[2] // self.spec.merge
            if n == len(grids) - 1 and screen.previous is None:  # the image the click is on
                boxes = [(b.box.left, b.box.top, b.box.right, b.box.bottom) for b in screen.buttons]
                # A form's fields are no buttons (even one labelled "Search"): "no word".
                words = [NONE if screen.typed is not None else WORDS.index(b.label) + 1
                         for b in screen.buttons]
                r, t = cell_targets(boxes, words, screen.target, h, w, self.spec.unit)
                bx, by = centre_bins(boxes[screen.target], *screen.image.size)
            else:  # a history image, or the screen after the click: nothing to point at
                r, t = [NONE] * (h * w), [False] * (h * w)
                bx = by = NO_CENTRE
            read += r
            target += t
            cx += [bx if on else NO_CENTRE for on in t]
            cy += [by if on else NO_CENTRE for on in t]
            rows += [i // w for i in range(h * w)]
            cols += [i % w for i in range(h * w)]
        return Encoded(ids + reply, [IGNORE] * len(ids) + reply, pixels, grids, tuple(read),
                       tuple(target), pointer, tuple(rows), tuple(cols), digit_at,
                       tuple(cx), tuple(cy))

    def encode_prompt(self, messages: list, images: list, reply: str) -> Encoded:
        """Any prompt and its reply (e.g. a verified solver step, app/nano/solved.py): loss on
        the reply; of the auxiliary targets only each image token's own position (what the
        screen's words are and where a target is are not known: no reading, pointing, centre
        or attention loss)."""
        ids, pixels, grids = self.tokens(messages, images)
        answer = [*self.tokenizer.encode(reply, add_special_tokens=False).ids, self.im_end]
        read, target, rows, cols = [], [], [], []
        for grid in grids:
            h, w = grid[1] // self.spec.merge, grid[2] // self.spec.merge
            read += [UNKNOWN] * (h * w)
            target += [False] * (h * w)
            rows += [i // w for i in range(h * w)]
            cols += [i % w for i in range(h * w)]
        return Encoded(ids + answer, [IGNORE] * len(ids) + answer, pixels, grids, tuple(read),
                       tuple(target), None, tuple(rows), tuple(cols), (),
                       (NO_CENTRE,) * len(read), (NO_CENTRE,) * len(read))

    def click(self, text: str, size: Size = MODEL_SIZE) -> tuple[int, int] | None:
        """The MODEL-pixel point of a reply's left_click; None for anything else."""
        action = self.action(text, size)
        return action.coordinate if isinstance(action, LeftClick) else None

    def action(self, text: str, size: Size = MODEL_SIZE) -> Action | None:
        """A reply's action as the family parses it (MODEL pixels); None if it does not parse."""
        parsed = self.family.parse(text, size)
        return parsed.action if isinstance(parsed, Parsed) else None

    def terminates(self, text: str, size: Size = MODEL_SIZE) -> bool:
        """Whether a reply is terminate(success)."""
        parsed = self.family.parse(text, size)
        return isinstance(parsed, Parsed) and parsed.action == Terminate("success")


def build_prompt(family: PromptFamily, screen: Screen,
                 history_scale: float = 1.0) -> tuple[list, list]:
    """The family's messages and images for `screen`: its first step, or (with `previous`) the
    step after the click, whose history holds the click's screenshot and reply (what the loop
    sends after a click; `history_scale` as the loop's --history-scale)."""
    size = Size(*screen.image.size)
    history = [] if screen.previous is None else [Turn(screen.previous, click_reply(family, screen))]
    messages, images = family.build(screen.task, history, screen.image, size,
                                    history_scale=history_scale)
    if len(images) != len(history) + 1:
        raise RuntimeError("the family's prompt does not carry one image per step")
    return messages, images


def reply_for(family: PromptFamily, action: Action, size: Size, thoughts: str = "") -> str:
    """The reply the family's parser reads as `action` (MODEL pixels of a `size` image)."""
    if family.coordinates is Space.DISPLAY:
        action = family.from_model(action, size)  # type: ignore[attr-defined]
    return format_call(thoughts, action).strip()


def target_action(screen: Screen) -> Action:
    """The screen's right action (MODEL pixels): a click at the target's centre, or on a form
    screen the typing the task asks for, at the field's centre."""
    x, y = screen.target_button.box.centre
    if screen.typed is not None:
        return TypeText(screen.typed, (x, y), press_enter=screen.press_enter,
                        delete_existing_text=screen.clear)
    return LeftClick(coordinate=(round(x), round(y)))


def is_hit(action: Action | None, screen: Screen) -> bool:
    """Whether `action` does the screen's task: a click inside the target; on a form screen,
    the task's text typed inside the field, with Enter as asked, replacing any text there."""
    if screen.typed is None:
        return isinstance(action, LeftClick) and screen.target_button.box.contains(*action.coordinate)
    return (isinstance(action, TypeText) and action.coordinate is not None
            and screen.target_button.box.contains(*action.coordinate)
            and action.text == screen.typed and action.press_enter == screen.press_enter
            and (action.delete_existing_text or not screen.clear))


def click_reply(family: PromptFamily, screen: Screen) -> str:
    """The tool call the family's parser reads as the screen's right action."""
    return reply_for(family, target_action(screen), Size(*screen.image.size))


def answer(family: PromptFamily, screen: Screen) -> str:
    """The right answer: the click, or terminate(success) on the step after it."""
    if screen.previous is not None:
        return format_call("", Terminate("success")).strip()
    return click_reply(family, screen)


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
    grids = torch.tensor([g for e in batch for g in e.grids], dtype=torch.long)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask,
            "mm_token_type_ids": (ids == image_id).long(),
            "pixel_values": pixels, "image_grid_thw": grids}


def aux_targets(batch: list[Encoded]) -> dict[str, torch.Tensor]:
    """The auxiliary heads' targets for a batch collated by `collate` (same order)."""
    return {"read_labels": torch.tensor([c for e in batch for c in e.read_labels]),
            "target_cells": torch.tensor([c for e in batch for c in e.target_cells]),
            # -1: no pointer (the step after a click has no coordinates)
            "pointer_at": torch.tensor([-1 if e.pointer_at is None else e.pointer_at
                                        for e in batch]),
            "cell_rows": torch.tensor([r for e in batch for r in e.cell_rows]),
            "cell_cols": torch.tensor([c for e in batch for c in e.cell_cols]),
            "digit_at": [list(e.digit_at) for e in batch],
            "centre_x": torch.tensor([c for e in batch for c in e.centre_x]),
            "centre_y": torch.tensor([c for e in batch for c in e.centre_y])}
