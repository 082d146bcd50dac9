"""The backend base class: the image-count check, cancel, timing and finish reasons in one place."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest
from PIL import Image

from agent.inference.base import (
    Backend,
    FinishReason,
    Generation,
    Request,
    ScriptedBackend,
)

IMAGE = Image.new("RGB", (28, 28))
ONE_IMAGE = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]


class Minimal(Backend):
    """A backend with no checks of its own: everything shared must come from the base."""

    name = "minimal"

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def _generate(self, request: Request) -> Generation:
        self.requests.append(request)
        request.emit("ok")
        return Generation("ok", generated_tokens=1)


def test_a_subclass_without_its_own_check_still_refuses_mismatched_images() -> None:
    backend = Minimal()
    with pytest.raises(ValueError, match="disagree on the number of images"):
        backend.generate(ONE_IMAGE, [])
    with pytest.raises(ValueError, match="disagree on the number of images"):
        backend.generate([{"role": "user", "content": [{"type": "text", "text": "hi"}]}], [IMAGE])
    assert backend.requests == []  # refused before the backend's own code ran
    assert backend.generate(ONE_IMAGE, [IMAGE]).text == "ok"


def test_cancel_set_before_the_call_never_reaches_the_model() -> None:
    backend = Minimal()
    cancel = threading.Event()
    cancel.set()
    gen = backend.generate(ONE_IMAGE, [IMAGE], cancel=cancel)
    assert gen.finish_reason is FinishReason.CANCELLED and gen.text == ""
    assert backend.requests == []


def test_cancel_between_tokens() -> None:
    cancel = threading.Event()
    backend = ScriptedBackend(["one two three four"])
    seen: list[str] = []

    def on_token(piece: str) -> None:
        seen.append(piece)
        cancel.set()

    gen = backend.generate(ONE_IMAGE, [IMAGE], on_token=on_token, cancel=cancel)
    assert gen.finish_reason == "cancelled" and gen.text == "one " and seen == ["one "]


def test_finish_reasons_are_one_enum() -> None:
    assert [r.value for r in FinishReason] == ["stop", "length", "cancelled"]
    assert Generation("x").finish_reason is FinishReason.STOP
    assert Generation("x", finish_reason="length").finish_reason is FinishReason.LENGTH
    assert Generation("x", finish_reason="length").finish_reason == "length"  # records keep str
    with pytest.raises(ValueError):
        Generation("x", finish_reason="done")  # not a reason any backend may give
    backend = ScriptedBackend(["one two three"])
    assert backend.generate(ONE_IMAGE, [IMAGE], max_new_tokens=2).finish_reason == "length"


def test_the_base_times_every_call() -> None:
    gen = Minimal().generate(ONE_IMAGE, [IMAGE])
    assert gen.timings["total"] >= 0.0

    class Timed(Minimal):
        def _generate(self, request: Request) -> Generation:
            return Generation("ok", timings={"total": 42.0})

    assert Timed().generate(ONE_IMAGE, [IMAGE]).timings == {"total": 42.0}  # the backend's own


def test_every_backend_subclasses_the_base_and_keeps_its_generate() -> None:
    from agent.inference.onnx import OnnxBackend
    from agent.inference.openai_compat import OpenAICompatBackend
    from agent.inference.reference import ReferenceBackend
    from agent.replay.backend import LazyBackend, ReplayBackend

    for cls in (ScriptedBackend, OnnxBackend, ReferenceBackend, OpenAICompatBackend,
                ReplayBackend, LazyBackend):
        assert issubclass(cls, Backend), cls
        assert cls.generate is Backend.generate, f"{cls.__name__} overrides generate"


def test_onnx_generate_has_no_bench_only_parameter() -> None:
    from agent.inference.onnx import OnnxBackend

    assert "min_new_tokens" not in inspect.signature(OnnxBackend.generate).parameters
    assert "fixed_length" in inspect.signature(OnnxBackend.__init__).parameters


def test_tool_call_markers_come_from_actions() -> None:
    from agent.actions import TOOL_CALL_CLOSE
    from agent.inference import chat

    assert chat.STOP_TEXT is TOOL_CALL_CLOSE
    folder = Path(chat.__file__).parent
    for path in sorted(folder.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        for literal in ('"</tool_call>"', '"<tool_call>"'):
            assert literal not in source, f"{path.name} writes {literal} itself"
