"""Session fixtures for model tests: the tiny checkpoint and its exports, built once per run.

Import the fixtures you need into a test module (`from tests.conftest_models import ...`).
pytest registers an imported fixture once per importing module, so each would be built again;
`_once` memoizes the work per process, so everything is built at most once per test run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

_BUILT: dict[str, Any] = {}


def _once(name: str, build: Callable[[], Any]) -> Any:
    if name not in _BUILT:
        _BUILT[name] = build()
    return _BUILT[name]

# The two screenshot sizes the parity tests use: the Fara reference viewport and a smaller one.
SIZES = [(1428, 896), (1036, 588)]


def case_id(count: int, size) -> str:
    """A readable test id such as '3x1428x896' or '2xmixed'."""
    return f"{count}x{size}" if isinstance(size, str) else f"{count}x{size[0]}x{size[1]}"


def noise_images(count: int, size: tuple[int, int], seed: int) -> list:
    """`count` distinct random-noise RGB images of `size`, reproducible from `seed`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(count)]


def agent_messages(n_images: int) -> list[dict]:
    """A Fara-like conversation with `n_images` screenshots, one per user turn."""
    messages: list[dict] = [{"role": "system", "content": [
        {"type": "text", "text": "You are a web automation agent. The screen's resolution is "
                                 "1428x896. Stop at critical points."}]}]
    for i in range(n_images):
        text = "Find a recipe and open it." if i == 0 else "Current URL: http://localhost/. Next?"
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text",
                                                                          "text": text}]})
        if i < n_images - 1:
            messages.append({"role": "assistant", "content": [{"type": "text", "text":
                '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
                f'"coordinate": [{100 + i}, 200]}}}}\n</tool_call>'}]})
    return messages


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint (seed 0)."""
    from app.bench.checkpoints import make_tiny_checkpoint

    return _once("tiny", lambda: make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "hf"))


@pytest.fixture(scope="session")
def export_fp32(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint exported with an fp32 decoder."""
    from models.export import export_model

    return _once("fp32", lambda: export_model(
        tiny_checkpoint, tmp_path_factory.mktemp("fp32") / "onnx", precision="fp32",
        progress=False))


@pytest.fixture(scope="session")
def export_int4(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint exported with an int4 decoder and int8 vision weights."""
    from models.export import export_model

    return _once("int4", lambda: export_model(
        tiny_checkpoint, tmp_path_factory.mktemp("int4") / "onnx", precision="int4",
        vision_quant="int8", progress=False))


@pytest.fixture(scope="session")
def reference_backend(tiny_checkpoint: Path):
    """The transformers backend over the tiny checkpoint (fp32)."""
    from agent.inference.reference import ReferenceBackend

    return _once("reference", lambda: ReferenceBackend(tiny_checkpoint))


@pytest.fixture(scope="session")
def onnx_fp32_backend(export_fp32: Path):
    """The onnxruntime-genai backend over the fp32 export, on CPU."""
    from agent.inference.onnx import OnnxBackend

    return _once("onnx_fp32", lambda: OnnxBackend(export_fp32, provider="cpu"))
