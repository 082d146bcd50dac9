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


@pytest.fixture(autouse=True)
def _quiet_doctor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first-run dialog runs `deskhand doctor`'s checks when shown: a test square on the
    shared display and a child process, still going after a short test ends. GUI tests get one
    instant line instead; tests/app/test_doctor.py and test_doctor_page.py test the real ones."""
    from agent.doctor import Check, Level

    monkeypatch.setattr("app.doctor.checks",
                        lambda: iter([Check("doctor", Level.OK, "checks stubbed in GUI tests")]))
