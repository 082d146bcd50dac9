"""Scripted fakes of the real interfaces (screen, executor) for loop-level tests."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image, ImageDraw

from agent.actions import Action
from agent.geometry import Monitor, ScreenMapping
from agent.screen import Screenshot


class FakeScreen:
    """A 1920x1080 monitor whose picture changes after every action (unless frozen)."""

    def __init__(self, width: int = 1920, height: int = 1080, *, frozen: bool = False,
                 left: int = 0, top: int = 0) -> None:
        self.monitor = Monitor(1, left, top, width, height)
        self.frame = 0
        self.frozen = frozen
        self.captures = 0

    def image(self) -> Image.Image:
        img = Image.new("RGB", (self.monitor.width, self.monitor.height), (240, 240, 245))
        draw = ImageDraw.Draw(img)
        x = 100 + (self.frame * 37) % (self.monitor.width - 300)
        draw.rectangle((x, 200, x + 200, 260), fill=(20, 120, 220))
        return img

    def capture(self, index: int = 1) -> Screenshot:
        self.captures += 1
        return Screenshot(self.image(), self.monitor)

    def wait_settled(self, index: int = 1, *, timeout: float = 3.0,
                     should_stop: Callable[[], bool] = lambda: False) -> Screenshot:
        if not self.frozen:
            self.frame += 1
        return self.capture(index)


class RecordingExecutor:
    """Records performed actions and the physical points they would have used."""

    def __init__(self) -> None:
        self.performed: list[tuple[Action, tuple[int, int] | None]] = []

    def perform(self, action: Action, mapping: ScreenMapping) -> str | None:
        target = action.target
        point = mapping.model_to_input(*target, logical=False) if target else None
        self.performed.append((action, point))
        return None
