"""Runs the real app on an X display (xcb) in its own process, for the real-window tests.

Usage: python -m tests.app.gui.xvfb_driver SCENARIO OUT_DIR   (DISPLAY must point at an Xvfb)
Scenarios:
  window  the main window during a run on a fake screen; grabs the real display mid-run.
  pill    the app collapsed to its status pill while the agent captures the *real* display;
          records where the pill was and grabs the display while it is shown (the control).
Writes OUT_DIR/result.json and PNGs; the test process makes the assertions.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "xcb"

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.main import DeskhandApp, make_application
from app.settings import Settings
from app.to_gui import collect_on_gui_thread
from tests.app.gui.fakes import GUI_SIZE, click, done, make_services, typing
from tests.support.fakes import FakeScreen, RecordingExecutor

TARGET_COLOUR = (0, 128, 128)


def grab_display(path: Path):
    """The whole X display as the X server has it (mss), saved to `path`."""
    import mss
    from PIL import Image

    with mss.MSS() as sct:
        shot = sct.grab(sct.monitors[1])
    image = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
    image.save(path)
    return image


def focused_window() -> int:
    """The X window that has the keyboard focus."""
    import subprocess

    out = subprocess.run(["xdotool", "getwindowfocus"], capture_output=True, text=True, timeout=5)
    return int(out.stdout.strip() or 0)


def scenario_window(out: Path) -> dict:
    screen = FakeScreen(1440, 900)
    services = make_services(screen, RecordingExecutor())
    thoughts = ("The search box is at the top of the page. I will click it, then type the name "
                "of the recipe and look through the results for the vegetarian version.")
    services.extra["responses"] = [click(640, 140, thoughts), typing("vegetarian lasagne", thoughts),
                                   click(300, 400, thoughts), done("Found it: 45 minutes.")]
    services.extra["token_delay"] = 0.03
    settings = Settings(model="fara-7b-int4", hide_window_during_run=False, max_steps=20)
    desk = DeskhandApp(settings, services, hotkeys=False, open_exports=False)
    desk.window.resize(1280, 800)
    desk.window.move(40, 40)
    desk.show_window()
    result: dict = {}

    def start() -> None:
        desk.window.task.setEditText("Find a vegetarian lasagne recipe and tell me the cooking time")
        desk.window.run_button.click()

    def on_step(view) -> None:
        if view.step.index == 1 and "grabbed" not in result:
            result["grabbed"] = True
            QTimer.singleShot(300, grab)  # let the frame with the new step paint

    def grab() -> None:
        grab_display(out / "window-during-run.png")
        rect = desk.window.live.image_rect()
        top_left = desk.window.live.mapToGlobal(rect.topLeft().toPoint())
        result["live_rect"] = [top_left.x(), top_left.y(), int(rect.width()), int(rect.height())]
        result["fed_colours"] = [list(screen.image(n).getpixel((700, 880))) for n in (1, 2, 3, 4, 5)]
        result["dpr"] = desk.window.devicePixelRatioF()

    desk.controller.step.connect(on_step)
    desk.controller.run_finished.connect(
        lambda r: (result.update(status=r.status.value, answer=r.answer),
                   QTimer.singleShot(300, lambda: grab_display(out / "window-after-run.png")),
                   QTimer.singleShot(600, QApplication.quit)))
    QTimer.singleShot(500, start)
    return desk, result


def scenario_pill(out: Path) -> dict:
    from agent.screen import Screen

    real = Screen()
    services = make_services(FakeScreen(*GUI_SIZE), RecordingExecutor())
    services.screen = lambda: real
    captured = []

    class Watching:
        """The real screen, remembering every image the agent was given."""

        def capture(self, index=1):
            shot = real.capture(index)
            captured.append(shot.image)
            return shot

        def wait_settled(self, index=1, **kwargs):
            shot = real.wait_settled(index, **kwargs)
            captured.append(shot.image)
            return shot

    services.screen = Watching
    services.extra["responses"] = [click(100, 100), click(200, 200), click(300, 300), done("ok")]
    services.extra["token_delay"] = 0.05  # ~1 s of "thinking" per step, with the pill shown
    settings = Settings(model="fara-7b-int4", hide_window_during_run=True, max_steps=20,
                        settle_timeout=0.5)
    desk = DeskhandApp(settings, services, hotkeys=False, open_exports=False)
    target = QWidget()  # stands in for the application the agent works in
    target.setStyleSheet(f"background: rgb{TARGET_COLOUR};")
    target.setGeometry(0, 0, 1440, 900)
    target.show()
    desk._target = target
    desk.show_window()
    result: dict = {"controls": 0, "target_colour": list(TARGET_COLOUR),
                    "pill_colour": [31, 42, 68]}

    def control() -> None:
        # While the model "thinks" the pill is on screen: prove it is really visible then.
        pill = desk.controller.pill
        if desk.controller.running and pill.isVisible() and result["controls"] < 2:
            g = pill.frameGeometry()
            result["pill_rect"] = [g.x(), g.y(), g.width(), g.height()]
            result["window_visible_during_run"] = desk.window.isVisible()
            result.setdefault("focus", []).append(focused_window())
            grab_display(out / f"pill-control-{result['controls']}.png")
            result["controls"] += 1

    desk.controller.phase.connect(lambda p: p == "generate" and QTimer.singleShot(400, control))

    def finished(r) -> None:
        for i, image in enumerate(captured):
            image.save(out / f"agent-capture-{i}.png")
        result.update(status=r.status.value, captures=len(captured), reason=r.reason)
        QTimer.singleShot(100, QApplication.quit)

    desk.controller.run_finished.connect(finished)
    # The person switches to their application; from then on the pill must not take the focus.
    desk.controller.run_started.connect(lambda _t: QTimer.singleShot(100, target.activateWindow))
    result["target_window"] = int(target.winId())
    QTimer.singleShot(800, lambda: desk.start_quick("click three places"))
    return desk, result


def main(argv: list[str]) -> int:
    scenario, out = argv[0], Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    app = make_application([])
    collect_on_gui_thread()  # as `deskhand app` does
    desk, result = {"window": scenario_window, "pill": scenario_pill}[scenario](out)
    QTimer.singleShot(60_000, app.quit)  # never hang a test run
    started = time.monotonic()
    app.exec()
    desk.shutdown()
    del desk
    gc.collect()
    result["seconds"] = round(time.monotonic() - started, 2)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
