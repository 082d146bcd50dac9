"""Scripted fakes of the real interfaces (screen, executor), shared by the loop and the GUI tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from agent.actions import Action, TypeText
from agent.geometry import Monitor, ScreenMapping
from agent.safety import StopFlag
from agent.screen import Screenshot

# Distinct, saturated colours so a test can find the fed screenshot in a real window's pixels.
PALETTE = [(230, 90, 30), (40, 160, 90), (60, 90, 220), (200, 50, 160), (240, 200, 40)]


class FakeScreen:
    """One monitor (1920x1080 unless given) whose picture changes with every capture.

    Frame n is a palette colour with a "title bar" and a box reading "fake screen n"; a frozen
    screen keeps its frame, so a test can see what the loop does when nothing changes.
    """

    def __init__(self, width: int = 1920, height: int = 1080, *, frozen: bool = False,
                 left: int = 0, top: int = 0) -> None:
        self.width, self.height = width, height
        self.monitor = Monitor(1, left, top, width, height, 1.0, "monitor 1")
        self.frame = 0
        self.frozen = frozen
        self.captures = 0
        self.fail = False  # True: capture raises ScreenError, as when the display is lost

    def monitors(self) -> list[Monitor]:
        m = self.monitor
        return [m, Monitor(0, m.left, m.top, m.width, m.height, 1.0, "all monitors")]

    def image(self, n: int | None = None) -> Image.Image:
        """The picture of frame `n` (the current frame if None)."""
        n = self.frame if n is None else n
        img = Image.new("RGB", (self.width, self.height), PALETTE[n % len(PALETTE)])
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
        if not self.frozen:
            self.frame += 1
        return Screenshot(self.image(), self.monitor)

    def wait_settled(self, index: int = 1, *, timeout: float = 3.0,
                     should_stop: Callable[[], bool] = lambda: False) -> Screenshot:
        return self.capture(index)


@dataclass
class RecordingExecutor:
    """Records every action and the physical point it would have used; typing emits one timed
    'input event' per character (`char_delay` apart), checking `stop` between them."""

    stop: StopFlag | None = None
    char_delay: float = 0.0
    actions: list[Action] = field(default_factory=list)
    performed: list[tuple[Action, tuple[int, int] | None]] = field(default_factory=list)
    events: list[float] = field(default_factory=list)  # time.monotonic() of each input event
    lock: threading.Lock = field(default_factory=threading.Lock)

    def perform(self, action: Action, mapping: ScreenMapping) -> str | None:
        target = action.target
        point = mapping.model_to_input(*target, logical=False) if target else None
        with self.lock:
            self.actions.append(action)
            self.performed.append((action, point))
        if not isinstance(action, TypeText):
            self.events.append(time.monotonic())
            return None
        for _ch in action.text:
            if self.stop is not None and self.stop.is_set():
                return "stopped while typing"
            if self.char_delay:
                time.sleep(self.char_delay)
            self.events.append(time.monotonic())
        return None
