"""The callers of agent/childproc: the export's progress events, the bench worker, the model process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from agent.childproc import Progress, run_child
from agent.inference.base import BackendError


class SlowStubbornBackend:
    """A model that never finishes loading and ignores SIGTERM (in the model process)."""

    def __init__(self, model_dir: str, provider: str = "auto") -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        Path(model_dir, "pid").write_text(str(os.getpid()))
        time.sleep(120)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_model_process_that_does_not_load_in_time_is_killed(tmp_path) -> None:
    from app.procbackend import ProcessBackend

    started = time.monotonic()
    with pytest.raises(BackendError, match="did not load in time"):
        ProcessBackend(str(tmp_path), "cpu", load_timeout=8,
                       backend_class="tests.agent.test_childproc_callers:SlowStubbornBackend")
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid), "the model process outlived its failed start"
    assert time.monotonic() - started < 30


def test_a_bench_worker_that_fails_is_a_row_with_its_error() -> None:
    from app.bench import run_worker

    row = run_worker({"backend": "onnx-int4", "runner": "no-such-runner"})
    assert row["backend"] == "onnx-int4"
    assert row["error"].startswith("exit 1: ") and "KeyError" in row["error"]


@pytest.mark.slow
def test_the_export_child_reports_each_stage_as_progress_events(tiny_checkpoint) -> None:
    pytest.importorskip("onnxruntime_genai")
    from models.registry import Registry

    events: list[Progress] = []
    run_child("models.cli:main", ["export", str(tiny_checkpoint), "--name", "tiny-x",
                                  "--precision", "fp32"], on_event=events.append)
    stages = list(dict.fromkeys(e.stage for e in events))
    assert stages == ["hash source", "text", "embedding", "vision", "configs"]
    for stage in stages:
        counts = [(e.done, e.total) for e in events if e.stage == stage]
        total = counts[0][1]
        assert counts == [(n, total) for n in range(total + 1)]  # 0 at the start, one per unit
    assert (Registry().get("tiny-x").folder / "model.onnx").is_file()  # same data dir as ours
