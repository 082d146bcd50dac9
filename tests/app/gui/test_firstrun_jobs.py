"""A model-setup job outlives its dialog safely: a person may close the first-run dialog while a
download or export runs; the job's thread must not emit through a freed object (a crash)."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

pytestmark = [pytest.mark.gui]


def test_closing_the_dialog_while_a_job_runs_is_safe(qtbot) -> None:
    from app.firstrun import ModelSetupDialog

    release, finished, started = threading.Event(), threading.Event(), threading.Event()
    results: list[object] = []

    def work(report, _cancelled) -> str:
        report(1, 2, "half way")
        started.set()
        release.wait(10)
        report(2, 2, "done")  # after the dialog is gone
        finished.set()
        return "tiny"

    dialog = ModelSetupDialog()
    job = dialog._run_job(work, "working…", results.append)
    assert started.wait(10)
    dialog.deleteLater()
    qtbot.wait(50)  # the dialog is freed here (with the old parenting, the job too)
    ref = weakref.ref(dialog)
    del dialog
    gc.collect()
    assert ref() is None  # freed on the GUI thread: the running job does not hold it
    release.set()
    assert finished.wait(10)
    qtbot.wait(100)  # queued deliveries to the freed dialog are dropped, nothing crashes
    assert results == []  # its callback belonged to the closed dialog
    assert job.cancel_event is not None
