"""The `deskhand` command line: help, runs list/show/export, run with a scripted model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.actions import LeftClick, Terminate, format_call
from agent.inference.base import ScriptedBackend
from agent.loop import run_task
from agent.safety import Gate
from agent.trajectory import TrajectoryStore
from app.commands import build_parser, main
from tests.support.fakes import FakeScreen, RecordingExecutor

ROOT = Path(__file__).resolve().parents[2]


def test_help_documents_every_command_and_run_option(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for word in ("run", "runs", "models", "eval", "monitors", "offline"):
        assert word in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for option in ("--monitor", "--model", "--max-steps", "--confirm", "--dry-run", "--server",
                   "--allow-lan", "--deny-title", "--search-url"):
        assert option in text


def test_console_script_entry_point_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "app.commands", "--version"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("deskhand ")


def _recorded_run() -> str:
    store = TrajectoryStore()
    rec = store.start("count the boxes")
    run_task("count the boxes",
             backend=ScriptedBackend([format_call("Click.", LeftClick((10, 10))),
                                      format_call("There are 3 boxes.", Terminate("success"))]),
             screen=FakeScreen(), executor=RecordingExecutor(), gate=Gate("never"), recorder=rec)
    return rec.run_id


def test_runs_list_show_export(capsys, tmp_path) -> None:
    run_id = _recorded_run()
    assert main(["runs", "list"]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["runs", "show", "last"]) == 0
    out = capsys.readouterr().out
    assert "There are 3 boxes." in out and "[1] click at (10, 10)" in out
    target = tmp_path / "r.html"
    assert main(["runs", "export", run_id[:12], "-o", str(target)]) == 0
    assert target.read_text().startswith("<!doctype html>")


def test_unknown_run_is_a_clear_error(capsys) -> None:
    assert main(["runs", "show", "does-not-exist"]) == 2
    assert "no run" in capsys.readouterr().err


def test_bad_script_file_is_a_clear_error(tmp_path, capsys) -> None:
    bad = tmp_path / "s.json"
    bad.write_text(json.dumps({"not": "a list"}))
    args = build_parser().parse_args(["run", "x", "--script", str(bad)])
    from agent.errors import UserError
    from app.commands.backends import load_backend

    with pytest.raises(UserError, match="JSON list"):
        load_backend(args)


def test_app_without_a_display_is_a_clear_message(monkeypatch, capsys) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main([]) == 2
    assert "no desktop session" in capsys.readouterr().err
