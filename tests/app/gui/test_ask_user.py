"""ask_user_question in the app: the bridge, the inline panel, the tray, Stop while waiting."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import Qt

from agent.actions import FARA15_ACTIONS, AskUser, format_call
from agent.inference.base import ScriptedBackend
from agent.loop import RunStatus
from agent.options import RunOptions
from agent.prompts.fara import FaraFamily
from agent.safety import StopFlag
from app.main import DeskhandApp
from app.question_panel import QuestionPanel
from app.session import QuestionBridge, RunRequest, RunSession
from app.settings import Settings
from tests.app.gui.fakes import GUI_SIZE, done
from tests.support.fakes import FakeScreen, RecordingExecutor

ASK = format_call("I need to know the size.", AskUser("Which shoe size?"))


@pytest.fixture
def fara15(monkeypatch):
    """The default family parses Fara1.5's actions (as a Fara1.5 family would)."""
    monkeypatch.setattr(FaraFamily, "actions", FARA15_ACTIONS)


def test_bridge_returns_the_answer_none_on_time_out_decline_and_stop():
    stop = StopFlag()
    bridge = QuestionBridge(lambda q: threading.Timer(0.05, bridge.answer, ["size 42"]).start(), stop, 5)
    assert bridge.ask("Which size?") == "size 42"
    declined = QuestionBridge(lambda q: threading.Timer(0.05, declined.answer, [None]).start(), stop, 5)
    assert declined.ask("Which size?") is None
    blank = QuestionBridge(lambda q: threading.Timer(0.05, blank.answer, ["   "]).start(), stop, 5)
    assert blank.ask("Which size?") is None
    quiet = QuestionBridge(lambda q: None, stop, timeout=0.1)
    started = time.monotonic()
    assert quiet.ask("Which size?") is None and time.monotonic() - started < 1
    quiet.answer("too late")  # ignored: nothing pending
    assert quiet.pending is None
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert QuestionBridge(lambda q: None, stop, timeout=30).ask("Which size?") is None
    assert time.monotonic() - started < 2


def test_the_session_feeds_the_answer_to_the_model(fara15):
    backend = ScriptedBackend([ASK, done()])
    asked = []

    def on_question(question):
        asked.append(question)
        threading.Timer(0.05, session.questions.answer, ["size 42"]).start()

    session = RunSession(RunRequest(task="buy shoes", backend=backend, screen=FakeScreen(*GUI_SIZE),
                                    executor=RecordingExecutor(), options=RunOptions(policy="never")),
                         on_question=on_question)
    result = session.run()
    assert result.status is RunStatus.SUCCESS and asked == ["Which shoe size?"]
    texts = [p.get("text") for m in backend.calls[1][0] for p in m["content"] if m["role"] == "user"]
    assert "size 42" in texts


def test_no_answer_within_the_confirm_timeout_ends_the_run(fara15):
    session = RunSession(RunRequest(task="t", backend=ScriptedBackend([ASK]), screen=FakeScreen(*GUI_SIZE),
                                    executor=RecordingExecutor(),
                                    options=RunOptions(policy="never", confirm_timeout=0.2)))
    result = session.run()
    assert result.status is RunStatus.STOPPED
    assert result.reason == "nobody answered the model's question 'Which shoe size?'"


def test_panel_answers_declines_and_counts_down(qtbot):
    panel = QuestionPanel()
    qtbot.addWidget(panel)
    panel.ask("Which size?\x1b[2J", timeout=30)
    assert panel.isVisible() and panel.question.text() == "Which size?\\x1b[2J"
    qtbot.keyClicks(panel.reply, "42")
    with qtbot.waitSignal(panel.answered) as blocker:
        panel.send.click()
    assert blocker.args == ["42"] and not panel.isVisible()
    panel.ask("Again?", timeout=30)
    panel.send.click()  # an empty answer is not sent
    assert panel.isVisible()
    with qtbot.waitSignal(panel.answered) as blocker:
        panel.decline.click()
    assert blocker.args == [None]
    panel.ask("Quick?", timeout=0.3)
    qtbot.waitUntil(lambda: not panel.isVisible(), timeout=3000)


@pytest.fixture
def desk(qtbot, services, fara15):
    app = DeskhandApp(Settings(model="fake-model", hide_window_during_run=True, policy="never"), services,
                      hotkeys=False, open_exports=False)
    qtbot.addWidget(app.window)
    yield app
    app.controller.stop()
    app.controller.wait()
    app.tray.close()
    app.quick.close()
    app.controller.pill.close()


def test_the_app_asks_inline_and_in_the_tray(qtbot, desk, services):
    services.extra["responses"] = [ASK, done("Ordered size 42.")]
    panel = desk.window.question_panel
    with qtbot.waitSignal(desk.controller.question_asked, timeout=10_000):
        desk.start_quick("buy shoes")
    assert panel.isVisible() and "Which shoe size?" in panel.question.text()
    assert desk.controller.state == "waiting"
    assert desk.tray.last_notification == ("Deskhand: the agent asks you", "Which shoe size?")
    qtbot.keyClicks(panel.reply, "size 42")
    with qtbot.waitSignal(desk.controller.run_finished, timeout=10_000) as blocker:
        qtbot.keyClick(panel.reply, Qt.Key.Key_Return)
    assert blocker.args[0].status is RunStatus.SUCCESS
    backend = services.extra["backends"][-1]
    texts = [p.get("text") for m in backend.calls[1][0] for p in m["content"] if m["role"] == "user"]
    assert "size 42" in texts


def test_stop_works_while_waiting_for_an_answer(qtbot, desk, services):
    services.extra["responses"] = [ASK, done()]
    with qtbot.waitSignal(desk.controller.question_asked, timeout=10_000):
        desk.start_quick("buy shoes")
    with qtbot.waitSignal(desk.controller.run_finished, timeout=5000) as blocker:
        desk.window.stop_button.click()
    assert blocker.args[0].status is RunStatus.STOPPED
    assert not desk.window.question_panel.isVisible()
