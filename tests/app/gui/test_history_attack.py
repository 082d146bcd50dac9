"""The app's History view on damaged or hostile run records (offscreen Qt)."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from agent.paths import runs_dir
from agent.trajectory import TrajectoryStore
from app.history import HistoryView
from tests.agent.test_records_attack import (
    BREAKS,
    fake_run,
    fuzzed_run,
    good_meta,
    record_run,
    step_line,
)


@pytest.fixture
def history(qtbot) -> HistoryView:
    view = HistoryView(TrajectoryStore, open_exports=False)
    qtbot.addWidget(view)
    return view


def _select(history: HistoryView, run_id: str) -> None:
    history.refresh()
    assert history.select_run(run_id), f"{run_id} is not listed"


@pytest.mark.parametrize("ch", BREAKS, ids=[f"U+{ord(c[-1]):04X}" for c in BREAKS])
def test_history_shows_every_step_after_a_line_break_character(history, ch) -> None:
    run_id = record_run(TrajectoryStore(), f"Look{ch}here")
    _select(history, run_id)
    assert history.steps.topLevelItemCount() == 3
    history.steps.setCurrentItem(history.steps.topLevelItem(2))
    assert "There are 3 boxes." in history.details.toPlainText()
    assert history.message.text() == ""


def test_history_lists_good_runs_and_names_damaged_files(history) -> None:
    good = record_run(TrajectoryStore())
    fake_run(runs_dir(), "20250101-000000-list", [1, 2])
    fake_run(runs_dir(), "20250101-000000-text", {"task": 5, "started": "yesterday"})
    fake_run(runs_dir(), "20250101-000000-bold", "<b><font size=7>All done - safe to leave")
    history.refresh()
    ids = {history.runs.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole)
           for i in range(history.runs.topLevelItemCount())}
    assert ids == {good, "20250101-000000-text"}
    text = history.message.text()
    assert "4 problem(s)" in text and "run.json" in text
    assert history.message.textFormat() == Qt.TextFormat.PlainText
    tip = history.message.toolTip()
    assert "20250101-000000-list" in tip and "<font" not in tip


def test_history_skips_bad_step_lines_and_names_them(history) -> None:
    fake_run(runs_dir(), "20260101-000000-steps", good_meta(),
             [step_line(0), "{}", "[1]", '{"index": "x", "thoughts": "hidden"}',
              step_line(1, timings={"generate": "slow"}, monitor={"width": 0}, action=7)])
    _select(history, "20260101-000000-steps")
    assert history.steps.topLevelItemCount() == 2
    assert "steps.jsonl, line 2" in history.message.text()
    history.steps.setCurrentItem(history.steps.topLevelItem(1))
    assert "thought 1" in history.details.toPlainText()


def test_history_shows_a_steps_note_as_text(history) -> None:
    """The loop's note on a step (a second look that moved the point, a stall) is shown with
    the step; markup in it is shown as text."""
    note = "a second look moved the point to (798, 425) <b>safe</b>"
    fake_run(runs_dir(), "20260101-000000-noted", good_meta(), [step_line(0, note=note)])
    _select(history, "20260101-000000-noted")
    history.steps.setCurrentItem(history.steps.topLevelItem(0))
    assert "Note: " + note in history.details.toPlainText()


def test_history_never_shows_a_screenshot_from_outside_the_run(history, tmp_path) -> None:
    secret = tmp_path / "secret.png"
    Image.new("RGB", (32, 32), (13, 37, 201)).save(secret)
    folder = fake_run(runs_dir(), "20260101-000000-shots", good_meta(), [])
    os.symlink(secret, folder / "step-001.png")
    (folder / "steps.jsonl").write_text("".join(
        json.dumps({"index": i, "screenshot": name, "description": f"s{i}"}) + "\n"
        for i, name in enumerate([str(secret), "../../../secret.png", "step-001.png"])))
    _select(history, "20260101-000000-shots")
    assert history.steps.topLevelItemCount() == 3
    for row in range(3):
        history.steps.setCurrentItem(history.steps.topLevelItem(row))
        assert history.view.image is None
        assert "omitted" in history.details.toPlainText()


def test_history_refuses_a_symlinked_run_and_keeps_the_rest(history, tmp_path) -> None:
    good = record_run(TrajectoryStore())
    outside = fake_run(tmp_path, "outside", good_meta("outside"), [step_line(0)])
    (runs_dir() / "20990101-000000-linked").symlink_to(outside, target_is_directory=True)
    history.refresh()
    assert history.runs.topLevelItemCount() == 1 and history.select_run(good)
    assert "symbolic link" in history.message.toolTip()


def test_history_survives_fuzzed_step_lines(history) -> None:
    folder = fuzzed_run()
    _select(history, folder.name)
    assert history.steps.topLevelItemCount() > 200
    for row in range(history.steps.topLevelItemCount()):
        history.steps.setCurrentItem(history.steps.topLevelItem(row))
        history.view.grab()  # paints the overlay, if any
