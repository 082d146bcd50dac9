"""`deskhand models get NAME` against the loopback fake hub (tests.models.test_download.FakeHub):
a tiny checkpoint downloaded, exported, registered and made the default; resumed after a kill;
refused on a full disk, a wrong hash or a missing export extra. The tiny catalogue entry comes
from $DESKHAND_CATALOGUE_EXTRA, never from the product catalogue."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from agent.paths import models_dir
from models import getting
from models.catalogue import CATALOGUE, EXTRA_ENV, entry
from models.registry import ModelError, Registry
from tests.support.fake_hub import CHILD

BIG = "model.safetensors"

def test_the_test_entry_is_not_in_the_product_catalogue(monkeypatch) -> None:
    monkeypatch.delenv(EXTRA_ENV, raising=False)
    assert all(e.name != "Tiny-VL" for e in CATALOGUE)
    with pytest.raises(KeyError):
        entry("tiny-vl")
    fara = entry("fara-7b")  # the CLI name, case ignored
    assert fara.hub_repo == "microsoft/Fara-7B" and fara.checkpoint_bytes > 16e9
    assert "onnx-community" not in (fara.note + fara.hub_repo)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGKILL to a child process")
def test_killed_download_resumes_then_exports_registers_and_becomes_default(get_hub) -> None:
    size = len(get_hub.files[BIG])
    get_hub.faults[BIG] = ["hang"] * 5  # half the checkpoint, then the server stalls (each try)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "models", "get", "tiny-vl", "--yes"],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    part = models_dir() / ".downloads" / "tiny-vl-checkpoint" / (BIG + ".part")
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size >= size // 2):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    get_hub.faults[BIG].clear()
    get_hub.release.set()
    time.sleep(0.2)  # the stalled handler finishes its count
    kept, sent = part.stat().st_size, get_hub.served[BIG]
    assert 0 < kept < size and Registry().entries() == []

    events, plans = [], []
    model = getting.get_model("tiny-vl", confirm=lambda p: plans.append(p) or True,
                              on_event=events.append)
    assert plans[0].download.already >= kept and "3. make 'tiny-vl' the default" in \
        plans[0].describe()
    assert get_hub.gets[-1] == (BIG, f"bytes={kept}-")
    assert get_hub.served[BIG] - sent == size - kept  # the kept bytes were not fetched again
    registry = Registry()
    assert model is not None and model.name == "tiny-vl" and model.format == "onnx-genai"
    assert registry.default == "tiny-vl"
    assert registry.get("tiny-vl-checkpoint").format == "hf"
    stages = {e.stage for e in events}
    assert "download" in stages and len(stages) >= 3  # download, then the exporter's stages
    assert any(e.eta_s is not None for e in events if e.stage == "download")

    # Run again: nothing is fetched, nothing re-exported; it stays (or becomes) the default.
    registry.set_default("tiny-vl-checkpoint")
    gets = len(get_hub.gets)
    assert getting.get_model("tiny-vl", confirm=lambda p: True).name == "tiny-vl"
    assert len(get_hub.gets) == gets and Registry().default == "tiny-vl"


def test_insufficient_disk_refuses_before_downloading(get_hub, monkeypatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(getting.shutil, "disk_usage", lambda _p: usage(10**9, 10**9, 10**6))
    with pytest.raises(ModelError, match="not enough disk space for Tiny-VL"):
        getting.get_model("tiny-vl", confirm=lambda p: pytest.fail("asked"))
    assert get_hub.gets == [] and not (models_dir() / ".downloads").exists()


def test_a_hash_mismatch_is_refused(get_hub, monkeypatch) -> None:
    get_hub.corrupt.add(BIG)
    monkeypatch.setattr(getting, "run_export", lambda *a: pytest.fail("exported"))
    with pytest.raises(ModelError, match=f"{BIG} arrived corrupted"):
        getting.get_model("tiny-vl", confirm=lambda p: True)
    assert Registry().entries() == []


def test_a_missing_export_extra_says_what_to_install_before_downloading(get_hub, monkeypatch,
                                                                        capsys) -> None:
    from tests.models.test_registry import run_cli

    monkeypatch.setattr(getting, "export_extra_missing", lambda: ["torch", "transformers"])
    assert run_cli("get", "tiny-vl", "--yes") == 2
    err = capsys.readouterr().err
    assert "missing: torch, transformers" in err and "-m pip install" in err
    assert getting.TORCH_CPU_INDEX in err and get_hub.gets == []


def test_install_export_extra_runs_pip_and_reports_its_lines(monkeypatch) -> None:
    monkeypatch.setattr(getting, "install_command",
                        lambda: [sys.executable, "-c", "print('Collecting torch')"])
    lines: list[str] = []
    getting.install_export_extra(lines.append)
    assert lines == ["Collecting torch"]
    monkeypatch.setattr(getting, "install_command", lambda: [sys.executable, "-c", "exit(3)"])
    with pytest.raises(ModelError, match="exit code 3"):
        getting.install_export_extra()


def test_get_help_names_the_stages(capsys) -> None:
    from tests.models.test_registry import run_cli

    with pytest.raises(SystemExit):
        run_cli("get", "--help")
    out = " ".join(capsys.readouterr().out.split())
    for words in ("official checkpoint", "sha256", "export extra", "default", "resumes"):
        assert words in out
