"""The cache of Nano's drawn web screens (app.nano.web, app.nano.webforms): one folder per
version of the pages under DESKHAND_NANO_WEB (default ~/.cache/deskhand/nano-web). Drawing a
screen takes ~1 s, so the first epoch pays and later ones and evaluations read PNG files. An
entry is its screenshots and its metadata as JSON, written last, so an entry is whole or
absent; a damaged one (a full disk, an editor, a header claiming a huge image) is drawn again."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from PIL import Image

from agent.atomic import write_bytes_atomic, write_text_atomic
from agent.geometry import Size
from app.nano.desktop import nano_model_size, scaled_box, to_model
from app.nano.screens import SPLITS, Box, Button, Screen


def is_box(value: object) -> bool:
    """A box as the cache keeps it: [left, top, right, bottom] in screen pixels."""
    return isinstance(value, list) and len(value) == 4 and all(isinstance(v, int) for v in value)


def are_labelled_boxes(value: object) -> bool:
    """A list of [label, box] pairs as the cache keeps a screen's buttons or fields."""
    return isinstance(value, list) and all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and is_box(v[1]) for v in value)


def cached(folder: Path, split: str, index: int, draw: Callable[[str, int, Path], None],
           whole: Callable[[dict], bool]) -> tuple[dict, Image.Image, Image.Image | None]:
    """Cache entry (split, index) of `folder`: its metadata, its screenshot and the one after the
    action (if any), drawn first by `draw` when missing or damaged (`whole` checks the
    metadata's own fields)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if not (folder / f"{split}-{index}.json").is_file():
        draw(split, index, folder)
    try:
        return _read(folder, split, index, whole)
    except (OSError, ValueError, KeyError, TypeError, Image.DecompressionBombError):
        # A damaged entry (a full disk, an editor, a header claiming a huge image): again.
        draw(split, index, folder)
        return _read(folder, split, index, whole)


def _read(folder: Path, split: str, index: int, whole: Callable[[dict], bool]
          ) -> tuple[dict, Image.Image, Image.Image | None]:
    meta = json.loads((folder / f"{split}-{index}.json").read_text(encoding="utf-8"))
    captured = Image.open(folder / meta["image"]).convert("RGB")
    after = None if meta["after"] is None else Image.open(folder / meta["after"]).convert("RGB")
    if not whole(meta):
        raise ValueError(f"damaged web screen {split} {index}")
    return meta, captured, after


def write_entry(folder: Path, split: str, index: int, meta: dict, image: Image.Image,
                after: Image.Image | None) -> None:
    """Write cache entry (split, index): its screenshots, then its metadata (`meta` gains the
    images' names)."""
    meta = {**meta, "image": f"{split}-{index}.png", "after": None}
    if after is not None:
        meta["after"] = f"{split}-{index}-after.png"
        write_bytes_atomic(folder / meta["after"], _png(after))
    write_bytes_atomic(folder / meta["image"], _png(image))
    # The metadata last: a screen is cached only once it is whole (a process drawing the same
    # screen at once writes the same files, each through its own temporary name).
    write_text_atomic(folder / f"{split}-{index}.json", json.dumps(meta))


def cache_folder(version: str) -> Path:
    """Where drawn screens of `version` are kept (created on first use)."""
    root = os.environ.get("DESKHAND_NANO_WEB")
    folder = Path(root) if root else Path.home() / ".cache" / "deskhand" / "nano-web"
    folder = folder / version
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screen_of(captured: Image.Image, after: Image.Image | None, boxes: list, target: int,
              **task) -> Screen:
    """A cached entry as a Screen at model size: `boxes` are (label, [l, t, r, b]) in screen
    pixels, `target` the named one's index, `task` the Screen's task fields (wording, typing)."""
    width, height = captured.size
    size = nano_model_size(Size(width, height))
    shot = to_model(captured, size)
    buttons = tuple(Button(label, scaled_box(Box(*box), width, height, size)) for label, box in boxes)
    if after is None:
        return Screen(shot, buttons, target, captured=captured, **task)
    return Screen(to_model(after, size), buttons, target, previous=shot, **task)


def _png(image: Image.Image) -> bytes:
    data = BytesIO()
    image.save(data, format="PNG", compress_level=1)  # fast: the cache is read more than written
    return data.getvalue()
