"""The emit work-around: streaming thousands of tokens must not eat the `True` singleton."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal

from app.qtcompat import emit

pytestmark = pytest.mark.gui


class _Source(QObject):
    token = Signal(str)


def test_emit_keeps_the_reference_count_of_true(qapp):
    source = _Source()
    received = []
    source.token.connect(received.append)
    before = sys.getrefcount(True)
    for _ in range(5000):
        emit(source.token, "x")
    assert len(received) == 5000
    assert sys.getrefcount(True) >= before - 50  # unrelated code may hold a few references


def test_a_long_streamed_run_keeps_the_reference_count_of_true(qtbot, services):
    from app.controller import RunController
    from app.settings import Settings
    from tests.app.gui.fakes import done

    services.extra["responses"] = [done(" ".join(["word"] * 3000))]
    controller = RunController(Settings(model="fake", hide_window_during_run=False), services)
    before = sys.getrefcount(True)
    with qtbot.waitSignal(controller.run_finished, timeout=20_000):
        controller.start("stream")
    assert sys.getrefcount(True) >= before - 50
