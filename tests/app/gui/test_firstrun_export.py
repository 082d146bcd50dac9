"""The app's export runs in an agent/childproc child: progress as events, Cancel kills it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from agent.childproc import report_progress
from app import firstrun
from app.firstrun import ModelSetupDialog


def slow_export(args: list[str]) -> int:
    """Stands in for `deskhand models export FOLDER --name NAME`: one event, then works on."""
    assert args[0] == "export" and args[2] == "--name"
    (Path(args[1]) / "pid").write_text(str(os.getpid()))
    print("text: 3 of 4 (forged on stdout)", flush=True)
    report_progress("text", 1, 4)
    time.sleep(120)
    return 0


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_export_progress_arrives_as_events_and_cancel_stops_the_child(qtbot, tmp_path,
                                                                      monkeypatch) -> None:
    monkeypatch.setattr(firstrun, "EXPORT_TARGET", "tests.app.gui.test_firstrun_export:slow_export")
    dialog = ModelSetupDialog(choose_folder=lambda _t: str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog.status.text() == "text: 1 of 4", timeout=30_000)
    assert dialog.bar.maximum() == 1000 and dialog.bar.value() == 250
    pid = int((tmp_path / "pid").read_text())
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.status.text() == "Cancelled.", timeout=15_000)
    assert dialog.export_button.isEnabled() and dialog.model_name is None
    qtbot.waitUntil(lambda: _gone(pid), timeout=5000)
