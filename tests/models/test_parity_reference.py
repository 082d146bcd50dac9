"""The transformers reference backend: the oracle itself, in fp32 and bf16, and its errors."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from agent.inference.base import Backend, BackendError
from agent.inference.reference import ReferenceBackend
from tests.support.model_inputs import SIZES, agent_messages, noise_images

TEXT_ONLY = [{"role": "user", "content": [{"type": "text", "text": "Click the search box"}]}]


def test_bad_folder_and_dtype_are_backend_errors(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with pytest.raises(BackendError, match=r"no config\.json"):
        ReferenceBackend(tmp_path)
    with pytest.raises(BackendError, match="dtype"):
        ReferenceBackend(tiny_checkpoint, dtype="float8")


def test_streams_and_cancels(reference_backend) -> None:
    assert isinstance(reference_backend, Backend)
    pieces: list[str] = []
    result = reference_backend.generate(TEXT_ONLY, [], max_new_tokens=6, on_token=pieces.append)
    assert "".join(pieces) == result.text
    assert result.generated_tokens == 6 and result.finish_reason == "length"
    cancel = threading.Event()
    seen: list[str] = []

    def stop_after_two(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 2:
            cancel.set()

    cancelled = reference_backend.generate(TEXT_ONLY, [], max_new_tokens=50,
                                           on_token=stop_after_two, cancel=cancel)
    assert cancelled.finish_reason == "cancelled" and cancelled.generated_tokens == 2


def test_bfloat16_tracks_float32(tiny_checkpoint: Path, reference_backend) -> None:
    bf16 = ReferenceBackend(tiny_checkpoint, dtype="bfloat16")
    images = noise_images(1, SIZES[1], seed=21)
    messages = agent_messages(1)
    a = bf16.first_logits(messages, images)
    b = reference_backend.first_logits(messages, images)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    assert cosine > 0.98  # bf16 keeps 8 bits of mantissa: ~0.4 % noise per op
    assert bf16.generate(messages, images, max_new_tokens=3).generated_tokens <= 3
