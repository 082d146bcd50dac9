"""One Ray actor of `deskhand eval run --ray` (the driver is agent/eval/ray_pool.py).

It owns what a `--workers` process owns — a `Worker` with its display, site server, browsers and
model — in a scratch folder, and sends each task's folder back with its record. It refuses to
start without the offline guard, or when this node's model is not the one the manifest names.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from agent.eval.model import model_fingerprint
from agent.eval.reaper import MARK_PREFIX, start_reaper, stop_reaper
from agent.eval.results import config_hash
from agent.eval.settings import EvalSettings, Job
from agent.eval.worker import Worker

ACTOR_VAR = MARK_PREFIX + "RAY_ACTOR"  # an actor's displays and browsers


class EvalActor:
    """One Ray actor: a `Worker` (display, site server, browsers, model) in a scratch folder."""

    def __init__(self, settings: EvalSettings, manifest: dict[str, Any],
                 plans: dict[str, Any] | None) -> None:
        import agent.offline as offline

        if getattr(offline, "PROCESS_GUARD", None) is None or not offline.OfflineGuard.active():
            raise RuntimeError(
                "the offline guard did not start with this Ray worker: install Deskhand at the "
                "same path on every node as on the driver (one container image), so that "
                "agent/_offline_boot is found at start-up")
        expected = manifest.get("model_fingerprint")
        here = model_fingerprint(settings.model, settings.resolve_model)
        if expected is not None and here != expected:
            raise RuntimeError(f"the model {settings.model!r} on this node is not the one the "
                               "driver filed in the manifest (its files differ)")
        token = uuid.uuid4().hex
        os.environ[ACTOR_VAR] = token  # its displays and browsers carry the mark
        # The reaper is told the folder before it exists: an actor killed in between (Ray kills
        # restarting actors at the end of a run) leaves nothing behind.
        name = f"deskhand-eval-{config_hash(manifest)[:8]}-{token[:12]}"
        self._scratch = Path(tempfile.gettempdir()) / name
        self._reaper = start_reaper(ACTOR_VAR, token, remove=self._scratch)
        self._scratch.mkdir(mode=0o700)
        self._worker = Worker(settings, self._scratch, plans=plans)

    def where(self) -> str:
        """The node and process this actor runs in (for messages)."""
        import socket

        return f"{socket.gethostname()} pid {os.getpid()}"

    def run(self, job: Job) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        """Run one task; returns its record and its folder's files (then drops them here)."""
        record = self._worker.run(job)
        folder = self._scratch / record["dir"]
        files = [(p.relative_to(folder).as_posix(), p.read_bytes())
                 for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()]
        shutil.rmtree(folder, ignore_errors=True)
        return record, files

    def close(self) -> None:
        """Stop the display and site server and drop the scratch folder."""
        self._worker.close()
        shutil.rmtree(self._scratch, ignore_errors=True)
        stop_reaper(self._reaper)
