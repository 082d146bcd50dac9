"""The Qt-free run session: pause at phase boundaries, the confirmation bridge, overlays."""

from __future__ import annotations

import threading
import time

from agent.actions import KeyPress, LeftClick, Scroll, TypeText
from agent.geometry import Monitor, ScreenMapping, Size
from agent.inference.base import ScriptedBackend
from agent.loop import RunStatus
from agent.options import RunOptions
from agent.safety import ConfirmRequest, Decision, StopFlag
from app.overlay import overlay_for
from app.session import ConfirmBridge, Hooks, PauseFlag, RunRequest, RunSession
from tests.app.gui.fakes import GUI_SIZE, click, done
from tests.support.fakes import FakeScreen, RecordingExecutor


def test_bridge_returns_the_answer_denies_on_time_out_and_on_stop():
    stop = StopFlag()
    request = ConfirmRequest(LeftClick((1, 1)), "buy", ("mentions buy",))
    bridge = ConfirmBridge(lambda r: threading.Timer(0.05, bridge.answer, [Decision.ALLOW_RUN]).start(),
                           stop, timeout=5)
    assert bridge.ask(request) is Decision.ALLOW_RUN
    quiet = ConfirmBridge(lambda r: None, stop, timeout=0.1)
    started = time.monotonic()
    assert quiet.ask(request) is Decision.DENY and time.monotonic() - started < 1
    quiet.answer(Decision.ALLOW_ONCE)  # too late: ignored, nothing pending
    assert quiet.pending is None
    threading.Timer(0.05, stop.set).start()
    assert ConfirmBridge(lambda r: None, stop, timeout=30).ask(request) is Decision.DENY


def test_pause_blocks_until_resumed_or_stopped():
    pause, stop = PauseFlag(), StopFlag()
    pause.pause()
    threading.Timer(0.1, pause.resume).start()
    started = time.monotonic()
    pause.wait(stop)
    assert 0.08 < time.monotonic() - started < 2
    pause.pause()
    threading.Timer(0.05, stop.set).start()
    pause.wait(stop)  # returns once stopped, although still paused
    assert pause.is_paused()


def test_hooks_bracket_every_look_and_action():
    calls: list[str] = []
    hooks = Hooks(before_look=lambda: calls.append("hide"), after_look=lambda: calls.append("show"),
                  on_phase=calls.append)
    executor = RecordingExecutor()
    session = RunSession(RunRequest(task="t", backend=ScriptedBackend([click(5, 5), done()]),
                                    screen=FakeScreen(*GUI_SIZE), executor=executor,
                                    options=RunOptions(policy="never")),
                         hooks=hooks)
    result = session.run()
    assert result.status is RunStatus.SUCCESS
    assert calls[:4] == ["capture", "hide", "show", "generate"]
    act = calls.index("act")
    assert calls[act + 1: act + 3] == ["hide", "show"] and calls[-1] == "idle"


def test_a_backend_that_cannot_load_is_a_setup_error_not_a_crash():
    def broken():
        raise RuntimeError("the model folder is broken")

    session = RunSession(RunRequest(task="t", backend=broken, screen=FakeScreen(*GUI_SIZE),
                                    executor=RecordingExecutor()))
    result = session.run()
    assert result.status is RunStatus.ERROR and session.setup_error == "the model folder is broken"


def test_overlays_map_model_points_to_the_screenshot():
    mapping = ScreenMapping(Monitor(1, 0, 0, 2856, 1792, 2.0), Size(2856, 1792), Size(1428, 896))
    o = overlay_for(LeftClick((100, 50)), mapping)
    assert o.kind == "click" and o.point == (200.0, 100.0)
    assert overlay_for(Scroll(-300.0), mapping).kind == "scroll_down"
    assert overlay_for(Scroll(300.0), mapping).point == (1428.0, 896.0)
    assert overlay_for(TypeText("hello", None), mapping).label == "hello"
    assert overlay_for(KeyPress(("ctrl", "l")), mapping).label == "ctrl+l"
    assert overlay_for(None, mapping) is None
