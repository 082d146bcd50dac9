"""GUI tests: widgets run on Qt's offscreen platform; real-window tests start Xvfb themselves."""

from __future__ import annotations

import os

# Before any QApplication exists (pytest-qt creates it lazily on the first qtbot use).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from tests.app.gui.fakes import GUI_SIZE, make_services
from tests.support.fakes import FakeScreen, RecordingExecutor


@pytest.fixture
def fake_screen() -> FakeScreen:
    return FakeScreen(*GUI_SIZE)


@pytest.fixture
def recorder_executor() -> RecordingExecutor:
    return RecordingExecutor()


@pytest.fixture
def services(fake_screen, recorder_executor):
    """Services with a scripted model (set `services.extra['responses']`), fake screen and input."""
    return make_services(fake_screen, recorder_executor)
