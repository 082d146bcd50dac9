"""scripts/walk_first_run.py, the full-size walk of a new user's path, on the tiny checkpoint: it
must press the real Get button against the loopback hub and report a registered, loaded model
with every stage timed and the export child's memory measured."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from models import getting

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("cli", [False, True], ids=["dialog", "cli"])
def test_the_walk_reaches_a_registered_model_and_measures_it(qtbot, tiny_checkpoint: Path,
                                                             tmp_path: Path, monkeypatch,
                                                             cli: bool) -> None:
    for key in ("DESKHAND_DATA_DIR", "DESKHAND_CONFIG_DIR", "DESKHAND_CACHE_DIR", "HF_ENDPOINT",
                "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_IMPLICIT_TOKEN",
                "DESKHAND_CATALOGUE_EXTRA"):
        monkeypatch.setenv(key, "")  # the script sets them; the test puts them back after
    monkeypatch.setattr(getting, "get_model", getting.get_model)
    spec = importlib.util.spec_from_file_location("walk", ROOT / "scripts/walk_first_run.py")
    walk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walk)
    out = tmp_path / "walk.json"
    assert walk.main([str(tiny_checkpoint), "--home", str(tmp_path / "home"),
                      "--json", str(out), *(["--cli"] if cli else [])]) == 0
    result = json.loads(out.read_text())
    assert result["registered"] == "fara-7b-shaped"
    assert any("text_builder" in name for name in result["peak_memory_mb"])
    assert result["model_disk_bytes"] > 0
    if not cli:
        assert {"download", "text", "embedding", "vision", "configs"} <= set(result["stages_s"])
        assert result["load_and_warm_up_s"] >= 0
    assert tiny_checkpoint.is_dir()  # served, never touched
