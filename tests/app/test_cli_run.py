"""`deskhand run` as a user runs it: a real process on a real (virtual) display."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.actions import KeyPress, LeftClick, Terminate, TypeText, format_call
from agent.trajectory import TrajectoryStore

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xvfb


def deskhand(args: list[str], display: str, data_dir: str, timeout: float = 120):
    env = {**os.environ, "DISPLAY": display, "DESKHAND_DATA_DIR": data_dir, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "app.commands", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_dry_run_with_scripted_replies_prints_steps_and_records(xvfb_display, tmp_path) -> None:
    replies = [format_call("The field is in the middle.", LeftClick((700, 400))),
               format_call("Type the city.", TypeText("Zürich", (700, 400))),
               format_call("Submit with the shortcut.", KeyPress(("ctrl", "Return"))),
               format_call("All done: the form is filled.", Terminate("success"))]
    script = tmp_path / "replies.json"
    script.write_text(json.dumps(replies))
    data = str(tmp_path / "data")
    out = deskhand(["run", "fill the form", "--script", str(script), "--dry-run",
                    "--confirm", "never"], xvfb_display, data)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "[1] → click at (700, 400)" in text
    assert "dry run: would click at (700, 400) (screen" in text
    assert "[3] → press ctrl+Return" in text
    assert "result: success" in text and "answer: All done: the form is filled." in text
    for phase in ("capture", "generate", "settle"):
        assert phase in text
    runs = TrajectoryStore(Path(data) / "runs").list_runs()
    assert len(runs) == 1 and runs[0].status == "success" and runs[0].steps == 4


def test_risky_action_without_a_terminal_is_denied(xvfb_display, tmp_path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([format_call("Click Pay now to purchase.", LeftClick((5, 5)))]))
    out = deskhand(["run", "buy it", "--script", str(script), "--dry-run"], xvfb_display,
                   str(tmp_path / "data"))
    assert out.returncode == 1
    assert "result: denied" in out.stdout and "no terminal to ask" in out.stderr


def test_missing_model_is_a_clear_message(xvfb_display, tmp_path) -> None:
    out = deskhand(["run", "anything"], xvfb_display, str(tmp_path / "data"))
    assert out.returncode == 2
    assert "no model is registered" in out.stderr and "deskhand models import" in out.stderr


def test_missing_display_is_a_clear_message(tmp_path) -> None:
    out = deskhand(["run", "anything", "--dry-run"], ":4078", str(tmp_path / "data"))
    assert out.returncode == 2 and "cannot open the display" in out.stderr
