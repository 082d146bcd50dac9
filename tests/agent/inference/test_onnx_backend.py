"""OnnxBackend behaviour: provider choice, errors users see, streaming, cancel, reuse."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from agent.inference.base import Backend, BackendError
from agent.inference.onnx import OnnxBackend, choose_provider
from tests.support.model_inputs import SIZES, agent_messages, noise_images


def _providers(cuda: bool, dml: bool) -> list[str]:
    """What onnxruntime.get_available_providers() says on such a machine."""
    return ["CPUExecutionProvider"] + (["CUDAExecutionProvider"] if cuda else []) + (
        ["DmlExecutionProvider"] if dml else [])


def test_auto_provider_prefers_cuda_then_dml_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_provider("auto", _providers(cuda=True, dml=True)) == "cuda"
    assert choose_provider("auto", _providers(cuda=False, dml=False)) == "cpu"
    monkeypatch.setattr("sys.platform", "win32")
    assert choose_provider("auto", _providers(cuda=False, dml=True)) == "dml"
    monkeypatch.setattr("sys.platform", "linux")
    assert choose_provider("auto", _providers(cuda=False, dml=True)) == "cpu"


def test_unusable_providers_are_clear_errors() -> None:
    with pytest.raises(BackendError, match="CUDA is not usable"):
        choose_provider("cuda", _providers(cuda=False, dml=False))
    with pytest.raises(BackendError, match="DirectML is not usable"):
        choose_provider("dml", _providers(cuda=False, dml=False))
    with pytest.raises(BackendError, match="unknown provider 'tpu'"):
        choose_provider("tpu", _providers(cuda=True, dml=True))


def test_folder_without_export_is_refused(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with pytest.raises(BackendError, match="not an exported model folder"):
        OnnxBackend(tmp_path)
    with pytest.raises(BackendError, match="not an exported model folder"):
        OnnxBackend(tiny_checkpoint)  # a Hugging Face folder, not an export


def test_broken_export_is_a_backend_error(export_fp32: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(export_fp32, broken)
    (broken / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(BackendError, match="cannot load the model"):
        OnnxBackend(broken, provider="cpu")


TEXT_ONLY = [{"role": "user", "content": [{"type": "text", "text": "Click the search box"}]}]


def test_streams_pieces_and_counts(onnx_fp32_backend) -> None:
    assert isinstance(onnx_fp32_backend, Backend)
    pieces: list[str] = []
    result = onnx_fp32_backend.generate(TEXT_ONLY, [], max_new_tokens=6, on_token=pieces.append)
    assert "".join(pieces) == result.text and len(pieces) >= 3
    assert result.generated_tokens == 6 and result.finish_reason == "length"
    assert {"prefill", "decode", "total"} <= set(result.timings)
    # The model is loaded once: a second call reuses it and is deterministic.
    again = onnx_fp32_backend.generate(TEXT_ONLY, [], max_new_tokens=6)
    assert again.text == result.text


def test_end_of_turn_token_stops_and_is_not_in_the_text(onnx_fp32_backend) -> None:
    # With this seed the tiny model ends its turn after one word.
    images = noise_images(1, SIZES[1], seed=5)
    result = onnx_fp32_backend.generate(agent_messages(1), images, max_new_tokens=20)
    assert result.finish_reason == "stop" and result.generated_tokens < 20
    assert "<|im_end|>" not in result.text
    assert result.prompt_tokens > 42 * 74 // 4  # the image's 777 tokens plus the text


def test_cancel_stops_between_tokens(onnx_fp32_backend) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def on_token(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 3:
            cancel.set()

    result = onnx_fp32_backend.generate(agent_messages(1), noise_images(1, SIZES[1], seed=6),
                                        max_new_tokens=50, on_token=on_token, cancel=cancel)
    assert result.finish_reason == "cancelled"
    assert result.generated_tokens == 3
    already = threading.Event()
    already.set()
    early = onnx_fp32_backend.generate(agent_messages(1), noise_images(1, SIZES[1], seed=6),
                                       cancel=already)
    assert early.finish_reason == "cancelled" and early.generated_tokens == 0


def test_image_count_and_size_are_checked(onnx_fp32_backend) -> None:
    with pytest.raises(ValueError, match="disagree"):
        onnx_fp32_backend.generate(agent_messages(2), noise_images(1, SIZES[1], seed=1))
    with pytest.raises(BackendError, match="resize a 1000x600 image"):
        onnx_fp32_backend.generate(agent_messages(1), noise_images(1, (1000, 600), seed=1))

