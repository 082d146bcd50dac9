"""Worker threads reach widgets only through `app.to_gui`: the call runs on the GUI thread, goes
nowhere once the widget is gone, and the thread never holds the widget (so the widget is never
freed off the GUI thread). The crash these guard against is a segfault seconds later."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QWidget

from app.to_gui import to_gui

pytestmark = [pytest.mark.gui]
ROOT = Path(__file__).resolve().parents[3]


class Target(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[object, bool]] = []

    def got(self, value: object) -> None:
        self.calls.append((value, QThread.currentThread() is self.thread()))


def test_a_worker_call_runs_on_the_gui_thread(qtbot) -> None:
    target = Target()
    qtbot.addWidget(target)
    call = to_gui(target.got)
    thread = threading.Thread(target=lambda: [call(i) for i in range(3)])
    thread.start()
    thread.join(10)
    assert target.calls == []  # posted, not run on the worker
    qtbot.waitUntil(lambda: len(target.calls) == 3, timeout=5000)
    assert target.calls == [(0, True), (1, True), (2, True)]


def test_the_worker_holds_no_widget_and_calls_after_it_is_gone_go_nowhere(qtbot) -> None:
    target = Target()
    call = to_gui(target.got)
    ref = weakref.ref(target)
    call("queued before the close")
    del target
    gc.collect()
    assert ref() is None  # the ToGui (the worker's handle) kept nothing alive
    assert not call.alive
    ran = []
    thread = threading.Thread(target=lambda: ran.append(call("after")))
    thread.start()
    thread.join(10)
    qtbot.wait(50)  # the queued call is dropped, nothing crashes
    assert ran == [False]


def test_a_widget_deleted_by_qt_drops_its_queued_calls(qtbot) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    target = Target()
    target.setParent(parent)
    call = to_gui(target.got)
    seen = target.calls
    target.deleteLater()
    call(1)  # queued behind the deletion
    qtbot.waitUntil(lambda: not call.alive, timeout=5000)
    call(2)
    qtbot.wait(50)
    assert seen == []


_COLLECTOR = r"""
import gc, json, threading
from PySide6.QtCore import QThread, QTimer
from PySide6.QtWidgets import QApplication, QWidget
from app.to_gui import collect_on_gui_thread
app = QApplication([])
collect_on_gui_thread(20)
freed_on = []
def make_garbage():
    w = QWidget()
    w.me = w  # a reference cycle: only the cycle collector frees it
    w.destroyed.connect(lambda *_: freed_on.append(QThread.currentThread() is app.thread()))
make_garbage()
def churn():  # a worker that allocates enough to trigger every automatic collection
    for _ in range(200_000):
        a = []; a.append(a)
worker = threading.Thread(target=churn); worker.start(); worker.join()
before = list(freed_on)
QTimer.singleShot(300, app.quit)
app.exec()
print(json.dumps({"enabled": gc.isenabled(), "before": before, "after": freed_on}))
"""


def test_cycles_are_collected_on_the_gui_thread_only() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", _COLLECTOR], capture_output=True, text=True,
                         timeout=120, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"enabled": False, "before": [], "after": [True]}
