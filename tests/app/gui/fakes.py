"""The GUI tests' scripted model and services, over the shared fake screen and executor.

The GUI tests' fake monitor is GUI_SIZE; FakeScreen's default is the loop tests' 1920x1080.
"""

from __future__ import annotations

from agent.actions import LeftClick, Terminate, TypeText, format_call
from agent.inference.base import ScriptedBackend
from app.services import Services
from tests.support.fakes import FakeScreen, RecordingExecutor

__all__ = ["GUI_SIZE", "FakeScreen", "RecordingExecutor", "click", "done", "make_services", "typing"]

GUI_SIZE = (1280, 800)


def click(x: int, y: int, thoughts: str = "I will click the search box.") -> str:
    return format_call(thoughts, LeftClick((x, y)))


def typing(text: str, thoughts: str = "I will type the query.") -> str:
    return format_call(thoughts, TypeText(text, None, False))


def done(answer: str = "The answer is 42.") -> str:
    return format_call(answer, Terminate("success"))


def make_services(screen: FakeScreen, executor: RecordingExecutor) -> Services:
    """Services whose backend replays `services.extra['responses']` with `extra['token_delay']`."""
    services = Services(offline=True)
    services.extra.update(responses=[click(300, 140), done()], token_delay=0.0, backends=[])

    def backend(_settings):
        b = ScriptedBackend(services.extra["responses"], token_delay=services.extra["token_delay"])
        services.extra["backends"].append(b)
        return b

    def make_executor(_settings, stop):
        executor.stop = stop
        return executor

    services.backend = backend
    services.executor = make_executor
    services.screen = lambda: screen
    services.window_title = lambda: "Fake browser"
    services.models = lambda: ["fake-model"]
    return services
