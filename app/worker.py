"""The worker thread that runs one task; it talks to widgets only through signals."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from PIL import Image
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from agent.geometry import Point, Space
from agent.loop import RunResult, Step
from agent.safety import ConfirmRequest, Decision, StopFlag
from agent.screen import Screenshot
from app.qtcompat import emit, emitter
from app.session import Hooks, RunRequest, RunSession

PREVIEW_MAX = (1600, 1000)   # live-view images are scaled in the worker, never on the GUI thread
CROP_HALF = 160              # the confirm dialog shows 320x320 screenshot pixels around the target
LOOK_SETTLE_S = 0.04         # after hiding our windows, let the X server repaint what they covered


def to_qimage(image: Image.Image, max_size: tuple[int, int] | None = PREVIEW_MAX) -> QImage:
    """A deep-copied RGB QImage of a PIL image, shrunk to fit `max_size`."""
    img = image.convert("RGB")
    if max_size is not None and (img.width > max_size[0] or img.height > max_size[1]):
        img = img.copy()
        img.thumbnail(max_size, Image.Resampling.BILINEAR)
    data = img.tobytes()
    return QImage(data, img.width, img.height, 3 * img.width, QImage.Format.Format_RGB888).copy()


@dataclass(frozen=True)
class StepView:
    """A finished step plus its preview image, ready for the GUI."""

    step: Step
    preview: QImage
    scale: float  # preview pixels per screenshot pixel


@dataclass(frozen=True)
class ConfirmView:
    request: ConfirmRequest
    crop: QImage | None
    marker: tuple[float, float] | None  # the target inside `crop`, in crop pixels


class RunWorker(QThread):
    """Runs `RunSession` off the GUI thread; stop, pause and answers may come from any thread."""

    step_done = Signal(object)     # StepView
    token = Signal(str)
    phase = Signal(str)
    captured = Signal(object)      # QImage of the latest capture
    confirm = Signal(object)       # ConfirmView
    question = Signal(str)         # the model asks the person (ask_user_question)
    look = Signal(bool)            # True: hide our windows now (the GUI calls ack_look)
    run_finished = Signal(object)  # RunResult

    def __init__(self, request: RunRequest, *, stop: StopFlag | None = None,
                 hide_for_look: bool = False, parent=None) -> None:
        super().__init__(parent)
        self.hide_for_look = hide_for_look
        self._ack = threading.Event()
        hooks = Hooks(before_look=self._before_look, after_look=self._after_look,
                      on_phase=emitter(self.phase), on_capture=self._on_capture)
        self.session = RunSession(request, hooks=hooks, on_step=self._on_step,
                                  on_token=emitter(self.token), on_confirm=self._on_confirm,
                                  on_question=emitter(self.question),
                                  stop=stop)
        self.result: RunResult | None = None
        self.started_at = 0.0

    @property
    def stop_flag(self):
        return self.session.stop

    def run(self) -> None:  # QThread entry point, on the worker thread
        self.started_at = time.monotonic()
        self.result = self.session.run()
        emit(self.run_finished, self.result)

    def request_stop(self, reason: str = "stopped by the user") -> None:
        self.session.stop.set(reason)
        self.session.pause.resume()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.session.pause.pause()
        else:
            self.session.pause.resume()

    def answer(self, decision: Decision) -> None:
        self.session.bridge.answer(decision)

    def answer_question(self, text: str | None) -> None:
        """The person's answer to the model's question (None: declined)."""
        self.session.questions.answer(text)

    def ack_look(self) -> None:
        self._ack.set()

    def _before_look(self) -> None:
        if self.hide_for_look:
            self._ack.clear()
            emit(self.look, True)
            self._ack.wait(1.0)  # bounded: a busy GUI delays the capture, never deadlocks it
            time.sleep(LOOK_SETTLE_S)

    def _after_look(self) -> None:
        if self.hide_for_look:
            emit(self.look, False)

    def _on_capture(self, shot: Screenshot) -> None:
        emit(self.captured, to_qimage(shot.image))

    def _on_step(self, step: Step) -> None:
        preview = to_qimage(step.screenshot.image)
        scale = preview.width() / max(1, step.screenshot.image.width)
        emit(self.step_done, StepView(step, preview, scale))

    def _on_confirm(self, request: ConfirmRequest) -> None:
        crop, marker = None, None
        shot, mapping = self.session.screen.last, self.session.mapping_for_last()
        if shot is not None:
            target = request.action.target
            if target is not None and mapping is not None:
                p = mapping.convert(Point(target[0], target[1], Space.MODEL), Space.SCREENSHOT)
                left = int(max(0, min(p.x - CROP_HALF, shot.image.width - 2 * CROP_HALF)))
                top = int(max(0, min(p.y - CROP_HALF, shot.image.height - 2 * CROP_HALF)))
                box = (left, top, min(shot.image.width, left + 2 * CROP_HALF),
                       min(shot.image.height, top + 2 * CROP_HALF))
                crop = to_qimage(shot.image.crop(box), None)
                marker = (p.x - left, p.y - top)
            else:
                crop = to_qimage(shot.image, (480, 300))
        emit(self.confirm, ConfirmView(request, crop, marker))
