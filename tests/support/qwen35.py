"""The tiny Qwen3.5 checkpoint and its exports, built once per test process.

The Qwen3.5 tests of tests/models and tests/agent share them (a session fixture would need
tests/conftest.py). Timings on this 2-core machine (CPU time; wall time is longer while other
jobs run): checkpoint 6 s, fp32 export 15 s, int4 export 24 s.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

PROMPTS = ["Open the settings page.",
           "Find a recipe, book a table, then type hello world and press enter.",
           "The quick brown fox jumps over the lazy dog. " * 6]


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="deskhand-qwen35-"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def tiny_qwen35() -> Path:
    """The tiny random Qwen3.5 checkpoint (seed 0)."""
    from app.bench.checkpoints_qwen35 import make_tiny_qwen35_checkpoint

    return make_tiny_qwen35_checkpoint(_root() / "hf")


@functools.cache
def qwen35_export(precision: str) -> Path:
    """The tiny checkpoint exported by `export_model` with a `precision` decoder (blocks of 32:
    the tiny widths, 128 and 256, would otherwise hold one or two blocks per row)."""
    from models.export import export_model

    return export_model(tiny_qwen35(), _root() / precision, precision=precision, block_size=32,
                        progress=False)


def text_messages(text: str) -> list[dict]:
    """One user turn of plain text (the chat template adds the default system prompt)."""
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]
