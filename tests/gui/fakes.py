"""Fakes of the real collaborators: a screen of generated images, an executor that records input."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from agent.actions import Action, LeftClick, Terminate, TypeText, format_call
from agent.geometry import Monitor
from agent.inference.base import ScriptedBackend
from agent.screen import Screenshot
from app.services import Services

# Distinct, saturated colours so a test can find the fed screenshot in a real window's pixels.
PALETTE = [(230, 90, 30), (40, 160, 90), (60, 90, 220), (200, 50, 160), (240, 200, 40)]


class FakeScreen:
    """One 1280x800 monitor whose image changes colour with every capture."""

    def __init__(self, width: int = 1280, height: int = 800) -> None:
        self.width, self.height = width, height
        self.captures = 0
        self.fail = False

    def monitors(self) -> list[Monitor]:
        return [Monitor(1, 0, 0, self.width, self.height, 1.0, "monitor 1"),
                Monitor(0, 0, 0, self.width, self.height, 1.0, "all monitors")]

    def image(self, n: int) -> Image.Image:
        colour = PALETTE[n % len(PALETTE)]
        img = Image.new("RGB", (self.width, self.height), colour)
        d = ImageDraw.Draw(img)
        d.rectangle((0, 0, self.width, 60), fill=(250, 250, 250))      # a "title bar"
        d.rectangle((80, 120, 520, 170), fill=(255, 255, 255), outline=(0, 0, 0), width=2)
        d.text((90, 135), f"fake screen {n}", fill=(0, 0, 0))
        return img

    def capture(self, index: int = 1) -> Screenshot:
        if self.fail:
            from agent.screen import ScreenError

            raise ScreenError("the display was lost")
        self.captures += 1
        return Screenshot(self.image(self.captures), self.monitors()[0])

    def wait_settled(self, index: int = 1, **_kwargs) -> Screenshot:
        return self.capture(index)


@dataclass
class RecordingExecutor:
    """Records every action; typing emits one timed 'input event' per character, checking stop."""

    stop: object = None
    char_delay: float = 0.0
    actions: list[Action] = field(default_factory=list)
    events: list[float] = field(default_factory=list)  # time.monotonic() of each input event
    lock: threading.Lock = field(default_factory=threading.Lock)

    def perform(self, action: Action, mapping) -> str | None:
        with self.lock:
            self.actions.append(action)
        if isinstance(action, TypeText):
            for _ch in action.text:
                if self.stop is not None and self.stop.is_set():
                    return "stopped while typing"
                if self.char_delay:
                    time.sleep(self.char_delay)
                self.events.append(time.monotonic())
        else:
            self.events.append(time.monotonic())
        return None


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
