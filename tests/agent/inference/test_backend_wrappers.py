"""Backend wrappers (pausing, announcing, the model process, replay's oracle) subclass the base.

The base class owns the image-count check, the cancel-before-start answer and the total time;
a wrapper adds only its own side effect (a pause, a progress record, a child process). Wrapping
one backend in another must not change what the caller gets: the inner call checks again, which
is harmless (the check is pure) and wanted (a stop pressed while a wrapper waited still keeps
the model from starting).
"""

from __future__ import annotations

import ast
import importlib
import threading
from pathlib import Path

import pytest
from PIL import Image

from agent.inference.base import Backend, FinishReason, Generation, Request, ScriptedBackend
from agent.mcp.desk import _Announcing
from agent.options import Provider
from agent.replay.harness import OracleFallback
from agent.safety import StopFlag
from app.procbackend import ProcessBackend
from app.session import Hooks, PauseFlag, PausingBackend

ROOT = Path(__file__).resolve().parents[3]
IMAGE = Image.new("RGB", (28, 28))
ONE_IMAGE = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]


class Counting(Backend):
    """An inner backend that records each call that reached its own code."""

    name = "counting"

    def __init__(self, text: str = "one two three") -> None:
        self.requests: list[Request] = []
        self._text = text

    def _generate(self, request: Request) -> Generation:
        self.requests.append(request)
        out = []
        for piece in text_pieces(self._text):
            if request.cancelled():
                return Generation("".join(out), finish_reason=FinishReason.CANCELLED)
            out.append(piece)
            request.emit(piece)
        return Generation("".join(out), generated_tokens=len(out), timings={"total": 42.0})


def text_pieces(text: str) -> list[str]:
    return [w + " " for w in text.split()]


def _classes_defining(method: str) -> list[tuple[str, str]]:
    """(module, class) for every class in agent/, app/ and models/ that defines `method`."""
    found = []
    for package in ("agent", "app", "models"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(
                        isinstance(f, ast.FunctionDef) and f.name == method for f in node.body):
                    found.append((module, node.name))
    return found


def test_only_the_base_class_writes_generate() -> None:
    assert _classes_defining("generate") == [("agent.inference.base", "Backend")]


def test_every_class_with_its_own_generation_is_a_backend() -> None:
    found = _classes_defining("_generate")
    names = {name for _, name in found}
    assert {"ProcessBackend", "PausingBackend", "_Announcing", "OracleFallback",
            "OnnxBackend", "ReplayBackend", "LazyBackend"} <= names
    for module, name in found:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, Backend), f"{module}.{name}"
        assert cls.generate is Backend.generate, f"{module}.{name} overrides generate"
    for cls in (ProcessBackend, PausingBackend, _Announcing, OracleFallback):
        assert issubclass(cls, Backend) and cls.generate is Backend.generate


def _pausing(inner: Backend, stop: StopFlag, pause: PauseFlag | None = None,
             phases: list[str] | None = None) -> PausingBackend:
    hooks = Hooks(on_phase=(phases if phases is not None else []).append)
    return PausingBackend(inner, pause or PauseFlag(), stop, hooks)


def _wrappers(inner: Backend, stop: StopFlag, announced: list[int]) -> list[Backend]:
    return [_pausing(inner, stop), _Announcing(inner, lambda: announced.append(1)),
            _pausing(_Announcing(inner, lambda: announced.append(1)), stop)]


def test_a_wrapped_backend_answers_exactly_like_the_bare_one() -> None:
    bare = Counting().generate(ONE_IMAGE, [IMAGE], max_new_tokens=7)
    for wrapper in _wrappers(inner := Counting(), StopFlag(), []):
        pieces: list[str] = []
        gen = wrapper.generate(ONE_IMAGE, [IMAGE], max_new_tokens=7, on_token=pieces.append)
        assert gen == bare  # same text, counts, reason; the inner "total" is kept
        assert pieces == text_pieces("one two three")  # each token streamed once
        assert inner.requests[-1].max_new_tokens == 7
        assert wrapper.name == "counting"


def test_mismatched_images_are_refused_before_any_wrapper_side_effect() -> None:
    announced: list[int] = []
    phases: list[str] = []
    inner = Counting()
    for wrapper in [*_wrappers(inner, StopFlag(), announced), _pausing(inner, StopFlag(),
                                                                        phases=phases)]:
        with pytest.raises(ValueError, match="disagree"):
            wrapper.generate(ONE_IMAGE, [])
    assert inner.requests == [] and announced == [] and phases == []


def test_a_stopped_run_is_answered_once_without_the_wrapper_or_the_model() -> None:
    stop, announced, phases = StopFlag(), [], []
    stop.set("stopped by the person")
    inner = Counting()
    for wrapper in [*_wrappers(inner, stop, announced), _pausing(inner, stop, phases=phases)]:
        gen = wrapper.generate(ONE_IMAGE, [IMAGE], cancel=stop)
        assert gen.finish_reason is FinishReason.CANCELLED and gen.text == ""
        assert gen.timings == {"total": 0.0}
    assert inner.requests == [] and announced == [] and phases == []


def test_stop_pressed_while_paused_keeps_the_model_from_starting() -> None:
    stop, pause, phases = StopFlag(), PauseFlag(), []
    pause.pause()
    inner = Counting()
    threading.Timer(0.1, stop.set, ("stopped while paused",)).start()
    gen = _pausing(inner, stop, pause, phases).generate(ONE_IMAGE, [IMAGE], cancel=stop)
    assert gen.finish_reason is FinishReason.CANCELLED and gen.text == ""
    assert inner.requests == []  # the inner base saw the stop: the model never ran
    assert phases == ["generate"]


def test_stop_during_the_announcement_keeps_the_model_from_starting() -> None:
    stop, inner = StopFlag(), Counting()
    gen = _Announcing(inner, lambda: stop.set("client cancelled")).generate(
        ONE_IMAGE, [IMAGE], cancel=stop)
    assert gen.finish_reason is FinishReason.CANCELLED and inner.requests == []


def test_cancel_between_tokens_through_two_wrappers_is_the_inner_answer() -> None:
    stop, pieces = StopFlag(), []

    def on_token(piece: str) -> None:
        pieces.append(piece)
        stop.set("enough")

    wrapper = _pausing(_Announcing(ScriptedBackend(["one two three"]), lambda: None), stop)
    gen = wrapper.generate(ONE_IMAGE, [IMAGE], on_token=on_token, cancel=stop)
    assert gen.finish_reason is FinishReason.CANCELLED and gen.text == "one " and pieces == ["one "]
    assert gen.timings["total"] >= 0.0


# --- the model process: the base's checks run in the app ----------------------------------------

class ChildBackend(Backend):
    """Built in the model process: streams three words and counts its calls in a file."""

    name = "child"

    def __init__(self, model_dir: str, provider: str) -> None:
        self.calls = Path(model_dir) / "calls"
        self.provider = f"given {provider!r}"

    def warm_up(self) -> None:
        pass

    def _generate(self, request: Request) -> Generation:
        with self.calls.open("a", encoding="utf-8") as f:
            f.write(f"{len(request.images)}\n")
        for piece in text_pieces("one two three"):
            request.emit(piece)
        return Generation("one two three ", 5, 3, {"decode": 0.5, "total": 0.75})


def test_the_model_process_is_a_backend_whose_checks_run_in_the_app(tmp_path) -> None:
    backend = ProcessBackend(str(tmp_path),
                             backend_class="tests.agent.inference.test_backend_wrappers:ChildBackend")
    calls = tmp_path / "calls"
    try:
        assert backend.provider == f"given {str(Provider.AUTO)!r}"  # a plain string in the child
        with pytest.raises(ValueError, match="disagree"):  # our bug: not the model's error
            backend.generate(ONE_IMAGE, [])
        stop = StopFlag()
        stop.set("stopped")
        gen = backend.generate(ONE_IMAGE, [IMAGE], cancel=stop)
        assert gen.finish_reason is FinishReason.CANCELLED and gen.timings == {"total": 0.0}
        pieces: list[str] = []
        gen = _pausing(backend, StopFlag()).generate(ONE_IMAGE, [IMAGE], on_token=pieces.append)
        assert gen == Generation("one two three ", 5, 3, {"decode": 0.5, "total": 0.75})
        assert pieces == text_pieces("one two three")
        assert calls.read_text(encoding="utf-8") == "1\n"  # only the call that was answered
    finally:
        backend.close()
