"""The built-in model (Deskhand Nano): listed and used with nothing registered, never written to
registry.json, never deleted, and out of the way once the person has a model of their own."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from models.builtin import ENV, NAME, builtin_folder
from models.registry import ModelError, Registry, resolve_model


@pytest.fixture
def builtin(export_int4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "installed" / "nano"
    shutil.copytree(export_int4, folder)
    monkeypatch.setenv(ENV, str(folder))
    return folder.resolve()


def test_with_nothing_registered_the_builtin_model_is_the_default(builtin: Path) -> None:
    registry = Registry()
    assert [e.name for e in registry.entries()] == [NAME]
    assert registry.is_builtin(NAME) and registry.effective_default() == NAME
    assert registry.get(NAME).folder == builtin and not registry.get(NAME).owned
    assert resolve_model(None) == builtin
    assert not registry.index_path.exists()  # nothing was written to register it


def test_a_model_of_ones_own_takes_over_but_nano_stays_listed(builtin: Path, export_int4: Path,
                                                              tmp_path: Path) -> None:
    registry = Registry()
    mine = tmp_path / "mine"
    shutil.copytree(export_int4, mine)
    registry.add(mine, name="mine", source=f"import:{mine}", owned=False)
    assert registry.effective_default() == "mine" and resolve_model(None) == mine.resolve()
    assert {e.name for e in registry.entries()} == {"mine", NAME}
    saved = json.loads(registry.index_path.read_text())
    assert [m["name"] for m in saved["models"]] == ["mine"]  # nano is never written
    registry.set_default(NAME)  # chosen on purpose: kept
    assert Registry().default == NAME and resolve_model(None) == builtin
    registry.set_default("mine")
    assert resolve_model(None) == mine.resolve()


def test_the_builtin_model_cannot_be_removed_and_its_files_stay(builtin: Path) -> None:
    before = sorted(p.name for p in builtin.iterdir())
    with pytest.raises(ModelError, match="built-in"):
        Registry().remove(NAME)
    assert sorted(p.name for p in builtin.iterdir()) == before


def test_a_registered_model_named_nano_hides_the_builtin_one(builtin: Path, export_int4: Path,
                                                             tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(export_int4, other)
    registry = Registry()
    with pytest.raises(ModelError, match="already registered"):
        registry.add(other, name=NAME, source="import:x", owned=False)
    # An index written elsewhere (an older version) may hold one: it wins.
    entry = {"name": NAME, "path": str(other.resolve()), "format": "onnx-genai", "source": "x",
             "size_bytes": 1, "added": "2026-01-01T00:00:00+00:00", "owned": False}
    registry.root.mkdir(parents=True, exist_ok=True)
    registry.index_path.write_text(json.dumps({"version": 1, "default": None, "models": [entry]}))
    assert not Registry().is_builtin(NAME) and resolve_model(None) == other.resolve()


def test_switched_off_or_missing_there_is_no_builtin_model(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    monkeypatch.setenv(ENV, "")
    assert builtin_folder() is None and Registry().entries() == []
    monkeypatch.setenv(ENV, str(tmp_path / "nothing-here"))
    assert builtin_folder() is None
    with pytest.raises(ModelError, match="no model is registered"):
        resolve_model(None)


def test_the_command_line_lists_and_runs_with_it(builtin: Path) -> None:
    import os

    env = {**os.environ, ENV: str(builtin)}
    deskhand = Path(sys.executable).with_name("deskhand")
    out = subprocess.run([str(deskhand), "models", "list"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith(NAME))
    assert "built in" in line and "*" in line
