"""`deskhand models download` against a fake Hugging Face Hub on 127.0.0.1 (no internet)."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.paths import models_dir
from models.download import DownloadPlan, download_model
from models.registry import ModelError, Registry, human_size
from tests.models.test_registry import make_genai_folder, run_cli
from tests.support.fake_hub import BIG, CHILD, COMMIT, REPO, FakeHub, serve


def repo_files(tmp_path: Path) -> dict[str, bytes]:
    """A repo with two variants (cpu-int4 and npu) and a README at the top."""
    folder = make_genai_folder(tmp_path / "src", data_bytes=256 * 1024)
    files = {f"cpu-int4/{p.name}": p.read_bytes() for p in folder.iterdir()}
    files["npu/genai_config.json"] = (folder / "genai_config.json").read_bytes()
    files["README.md"] = b"# Fara-7B ONNX\n"
    files[".gitattributes"] = b"*.data filter=lfs\n"
    return files


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with serve(repo_files(tmp_path), monkeypatch) as server:
        yield server


def test_declined_downloads_nothing(hub: FakeHub) -> None:
    seen: list[DownloadPlan] = []

    def decline(plan: DownloadPlan) -> bool:
        seen.append(plan)
        return False

    assert download_model(REPO, subfolder="cpu-int4", confirm=decline, progress=False) is None
    plan = seen[0]
    expected = sum(len(d) for p, d in hub.files.items() if p.startswith("cpu-int4/"))
    assert plan.total_bytes == expected and plan.commit == COMMIT
    assert "9 files" in plan.describe() and "model.onnx.data: 262.1 KB" in plan.describe()
    assert hub.gets == [] and not (models_dir() / ".downloads").exists()
    assert Registry().entries() == []


def test_cli_shows_size_and_asks(hub: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    questions: list[str] = []
    monkeypatch.setattr("builtins.input", lambda q="": questions.append(q) or "no")
    assert run_cli("download", REPO, "--subfolder", "cpu-int4") == 1
    out = capsys.readouterr().out
    assert f"{REPO} / cpu-int4 @ {COMMIT[:12]}" in out and "in total" in out
    total = sum(len(d) for p, d in hub.files.items() if p.startswith("cpu-int4/"))
    assert questions == [f"Download {human_size(total)}? [y/N] "] and hub.gets == []
    assert "nothing downloaded" in out


def test_several_variants_need_a_subfolder(hub: FakeHub) -> None:
    with pytest.raises(ModelError, match=r"several model variants.*--subfolder: cpu-int4, npu"):
        download_model(REPO, confirm=lambda plan: True, progress=False)
    with pytest.raises(ModelError, match="no folder 'gpu'"):
        download_model(REPO, subfolder="gpu", confirm=lambda plan: True, progress=False)
    with pytest.raises(ModelError, match="no model repo 'acme/nothing'"):
        download_model("acme/nothing", confirm=lambda plan: True, progress=False)


def test_interrupted_download_resumes_then_registers(hub: FakeHub, capsys) -> None:
    size = len(hub.files[BIG])
    # First run: the connection drops halfway, huggingface_hub's retry (with Range) gets a 503,
    # and the run stops — as if the network died. The half file must survive.
    hub.faults[BIG] = ["drop", "503"]
    with pytest.raises(ModelError, match=r"stopped at \d+ of \d+ bytes .* again to resume"):
        download_model(REPO, subfolder="cpu-int4", name="fara", confirm=lambda p: True,
                       progress=False)
    assert hub.gets[-2:] == [(BIG, None), (BIG, f"bytes={size // 2}-")]
    part = models_dir() / ".downloads" / "fara" / "model.onnx.data.part"
    assert part.stat().st_size == size // 2
    assert "fara" not in Registry()

    # Second run (a new process would see the same files): only the rest is fetched.
    plans: list[DownloadPlan] = []
    entry = download_model(REPO, subfolder="cpu-int4", name="fara",
                           confirm=lambda p: plans.append(p) or True, progress=False)
    assert plans[0].already >= size // 2
    assert hub.gets[-1] == (BIG, f"bytes={size // 2}-")
    assert hub.served[BIG] == size  # every byte of the big file crossed the wire exactly once
    assert entry is not None and entry.owned and entry.source == f"hf:{REPO}@{COMMIT}/cpu-int4"
    folder = models_dir() / "fara"
    assert entry.folder == folder.resolve() and (folder / "model.onnx.data").read_bytes() == \
        hub.files[BIG]
    assert not (models_dir() / ".downloads").exists()  # no leftovers at all
    assert not list(folder.rglob("*.part")) and not (folder / ".deskhand-download.json").exists()
    assert entry.manifest is not None and len(entry.manifest["files"]) == 9
    capsys.readouterr()
    assert run_cli("verify", "fara") == 0
    assert "all 9 files match" in capsys.readouterr().out


def test_dropped_connection_retried_within_one_run(hub: FakeHub) -> None:
    hub.faults[BIG] = ["drop"]
    seen: list[tuple[int, int]] = []
    entry = download_model(REPO, subfolder="cpu-int4", confirm=lambda p: True, progress=False,
                           on_progress=lambda done, total: seen.append((done, total)))
    assert entry is not None and entry.name == "Fara-7B-onnx-cpu-int4"
    total = sum(len(d) for p, d in hub.files.items() if p.startswith("cpu-int4/"))
    assert seen[-1] == (total, total) and len(seen) > 10
    assert all(b[0] >= a[0] for a, b in itertools.pairwise(seen))  # never goes back
    assert [r for p, r in hub.gets if p == BIG] == [None, f"bytes={len(hub.files[BIG]) // 2}-"]


def test_corrupted_file_is_rejected(hub: FakeHub) -> None:
    hub.corrupt.add(BIG)
    with pytest.raises(ModelError, match=r"model\.onnx\.data arrived corrupted"):
        download_model(REPO, subfolder="cpu-int4", confirm=lambda p: True, progress=False)
    assert Registry().entries() == []
    hub.corrupt.clear()  # the next run fetches it again and succeeds
    assert download_model(REPO, subfolder="cpu-int4", confirm=lambda p: True,
                          progress=False) is not None


def test_unreachable_hub_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    with pytest.raises(ModelError, match=rf"cannot reach http://127\.0\.0\.1:{port}"):
        download_model(REPO, endpoint=f"http://127.0.0.1:{port}", confirm=lambda p: True,
                       progress=False)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child process")
def test_ctrl_c_then_rerun_resumes(hub: FakeHub) -> None:
    size = len(hub.files[BIG])
    hub.faults[BIG] = ["hang"]  # half the file, then the server stalls: the user hits Ctrl+C
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "models", "download", REPO, "--subfolder", "cpu-int4",
         "--name", "fara", "--yes"],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    part = models_dir() / ".downloads" / "fara" / "model.onnx.data.part"
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size >= size // 2):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 130, (out, err)
    assert "run the same command again to resume" in err
    assert part.stat().st_size == size // 2 and "fara" not in Registry()

    entry = download_model(REPO, subfolder="cpu-int4", name="fara", confirm=lambda p: True,
                           progress=False)
    assert entry is not None and (entry.folder / "model.onnx.data").read_bytes() == hub.files[BIG]
    assert hub.gets[-1] == (BIG, f"bytes={size // 2}-")


@pytest.mark.skipif(sys.platform == "win32", reason="uses fcntl to hold the lock")
def test_one_download_per_name_at_a_time(hub: FakeHub) -> None:
    import fcntl

    lock = models_dir() / ".downloads" / "fara.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as if another process were downloading
        with pytest.raises(ModelError, match="another download of 'fara' is running"):
            download_model(REPO, subfolder="cpu-int4", name="fara", confirm=lambda p: True,
                           progress=False)
    assert download_model(REPO, subfolder="cpu-int4", name="fara", confirm=lambda p: True,
                          progress=False) is not None


def test_cancel_keeps_partial_for_resume(hub: FakeHub) -> None:
    from models.download import DownloadCancelled

    size = len(hub.files[BIG])
    cancel = threading.Event()

    def on_progress(done: int, total: int) -> None:
        if done > total // 3:  # the user presses Cancel in the app a third of the way in
            cancel.set()

    with pytest.raises(DownloadCancelled, match="start it again to resume"):
        download_model(REPO, subfolder="cpu-int4", name="fara", confirm=lambda p: True,
                       progress=False, on_progress=on_progress, cancel=cancel)
    part = models_dir() / ".downloads" / "fara" / "model.onnx.data.part"
    kept = part.stat().st_size
    assert 0 < kept < size and "fara" not in Registry()
    entry = download_model(REPO, subfolder="cpu-int4", name="fara", confirm=lambda p: True,
                           progress=False)
    assert entry is not None and hub.gets[-1] == (BIG, f"bytes={kept}-")
