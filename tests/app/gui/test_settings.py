"""Settings persistence (Qt-free)."""

from __future__ import annotations

import json

from app.settings import MAX_RECENT, Settings, load_settings, save_settings, settings_path


def test_round_trip_in_the_config_dir(tmp_path):
    s = Settings(model="fara", max_steps=12, deny_titles=["bank"], keep_screenshots=False)
    path = save_settings(s)
    assert path == settings_path() and path.is_file()
    assert load_settings() == s


def test_missing_corrupt_and_mistyped_files_fall_back_to_defaults():
    assert load_settings() == Settings()
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("{broken")
    assert load_settings() == Settings()
    settings_path().write_text(json.dumps({"max_steps": "many", "policy": "sometimes",
                                           "provider": "tpu", "settle_timeout": 2, "extra": 1,
                                           "keep_screenshots": 0, "monitor": 2}))
    s = load_settings()
    assert (s.max_steps, s.policy, s.provider) == (30, "risky", "auto")
    assert s.settle_timeout == 2.0 and s.keep_screenshots is True and s.monitor == 2


def test_recent_tasks_are_unique_newest_first_and_bounded():
    s = Settings()
    for i in range(MAX_RECENT + 5):
        s.remember_task(f"task {i}")
    s.remember_task("task 3")
    assert s.recent_tasks[0] == "task 3" and len(s.recent_tasks) == MAX_RECENT
    assert len(set(s.recent_tasks)) == MAX_RECENT


def test_data_dir_setting_moves_the_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("DESKHAND_DATA_DIR")  # it wins over the setting (tests/agent/test_options_runsdir.py)
    assert Settings(data_dir=str(tmp_path)).runs_dir() == tmp_path / "runs"
