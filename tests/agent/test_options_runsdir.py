"""One answer to "where do runs live": DESKHAND_DATA_DIR > the app's data-dir setting > the
platform default, for the app, `deskhand runs`, MCP, replay and the harness alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent import paths
from agent.eval.settings import default_run_dir
from agent.loop import RunResult, RunStatus
from agent.trajectory import TrajectoryStore
from app.commands import main
from app.settings import Settings, load_settings, save_settings, settings_path


@pytest.fixture
def no_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No DESKHAND_DATA_DIR (as for a person), and the platform default inside tmp_path."""
    monkeypatch.delenv("DESKHAND_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    return paths.data_dir()


def _record_like_the_app(task: str) -> str:
    """A finished run recorded where the app records it (`RunController.start`)."""
    settings = load_settings()
    recorder = TrajectoryStore(settings.runs_dir()).start(task, {"model": "test"})
    recorder.finish(RunResult(RunStatus.SUCCESS, "done", "the model finished the task", 0, 0.1))
    return recorder.run_id


def test_runs_recorded_after_moving_the_data_dir_in_the_app_are_listed_by_the_cli(
        no_data_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    custom = tmp_path / "my data"
    save_settings(Settings(data_dir=str(custom)))  # what the settings dialog does
    run_id = _record_like_the_app("water the plants")
    assert (custom / "runs" / run_id / "run.json").is_file()
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert run_id in out and "water the plants" in out
    assert main(["runs", "show", run_id]) == 0
    assert "water the plants" in capsys.readouterr().out


def test_every_reader_agrees_on_the_data_dir(no_data_env: Path, tmp_path: Path) -> None:
    assert paths.runs_dir() == Settings().runs_dir() == no_data_env / "runs"
    custom = tmp_path / "elsewhere"
    save_settings(Settings(data_dir=str(custom)))
    assert paths.data_dir() == custom
    assert TrajectoryStore().root == load_settings().runs_dir() == custom / "runs"
    assert paths.models_dir() == custom / "models"
    assert default_run_dir({"x": 1}).parent == custom / "eval"


def test_the_environment_wins_over_the_setting(tmp_path: Path, monkeypatch) -> None:
    env = tmp_path / "from env"
    monkeypatch.setenv("DESKHAND_DATA_DIR", str(env))
    save_settings(Settings(data_dir=str(tmp_path / "from setting")))
    assert paths.runs_dir() == load_settings().runs_dir() == env / "runs"
    assert Settings(data_dir=str(tmp_path / "in memory")).runs_dir() == env / "runs"


@pytest.mark.parametrize("content", [
    "{not json", "[1, 2]", json.dumps({"data_dir": "relative/dir"}), json.dumps({"data_dir": 5}),
    json.dumps({"data_dir": "/a\x00b"}), json.dumps({"data_dir": "   "}), json.dumps({})])
def test_an_unusable_setting_means_the_default(no_data_env: Path, content: str) -> None:
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(content, encoding="utf-8")
    assert paths.data_dir() == no_data_env
    assert paths.runs_dir() == no_data_env / "runs"


def test_the_app_holds_its_setting_before_saving_it(no_data_env: Path, tmp_path: Path) -> None:
    # The app passes the setting it holds; an empty one is the platform default, not the file's.
    save_settings(Settings(data_dir=str(tmp_path / "saved")))
    assert Settings(data_dir="").runs_dir() == no_data_env / "runs"
    assert Settings(data_dir="~/runs here").runs_dir() == Path.home() / "runs here" / "runs"
