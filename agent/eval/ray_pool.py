"""`deskhand eval run --ray [ADDRESS]`: the harness's workers as Ray actors on a cluster.

Each actor owns what a `--workers` process owns — its Xvfb display, site server, browsers and
model backend — for many tasks, so the model loads once per actor. It writes a task's folder in
its own scratch directory and returns it with the result record; the driver unpacks it into the
run folder and files the record through `run_eval`'s one writer (same configuration hash, one
fsynced line per task, resume). No shared file system is needed.

Failures: an actor (or its node) lost mid-task costs that task one environment retry on another
actor, up to `env_retries`, then it is filed as an environment error; Ray restarts the actor and
it rejoins. Browser and display failures are retried inside the actor as everywhere; wrong
answers are never retried. An actor that cannot start, or a bug raising in one, stops the run
(finished tasks are kept; the same command resumes).

The offline guard and Ray: actors start under the same Python guard as `--workers` processes,
from their first import (Ray's runtime_env puts agent/_offline_boot on PYTHONPATH), and refuse to
start without it. Ray's own traffic — raylet, GCS, object store, actor calls — is gRPC inside
Ray's native core worker, below Python's socket module: the guard neither sees nor needs a hole
for it, and none is made. The only host ever let through is a private-network `server:URL`
model given with --allow-lan. What crosses Ray's channels is jobs, result records and task
folders (screenshots included), between the actors and the driver, inside the cluster.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from agent.eval.reaper import MARK_PREFIX, Reaper, start_reaper, stop_reaper
from agent.eval.results import config_hash, write_json
from agent.eval.runner import Worker, safe_name
from agent.eval.settings import SCRIPTED, EvalSettings, Job, _model_fingerprint

log = logging.getLogger(__name__)

START_TIMEOUT = 600.0  # seconds to wait for the first actor (a cluster may be scaling up)
RESTART_TIMEOUT = 600.0  # seconds without any live actor before the run gives up
LOCAL_CLUSTER_VAR = MARK_PREFIX + "RAY_CLUSTER"  # the processes of a local cluster we start
ACTOR_VAR = MARK_PREFIX + "RAY_ACTOR"  # an actor's displays and browsers
# Ray's single-machine mode: every service binds 127.0.0.1 and the node address is loopback.
_LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@dataclass(frozen=True)
class RayOptions:
    """Where and how big: the cluster address and what each actor asks Ray for."""

    address: str = ""  # "" -> $RAY_ADDRESS, else a local cluster on 127.0.0.1
    actors: int | None = None  # None: as many as the cluster's CPUs (GPUs) hold, one per task
    cpus: float | None = None  # per actor; None: 1 for scripted/server models, else 4
    gpus: float | None = None  # per actor; None: 1 with --provider cuda, else 0
    memory_gb: float | None = None  # per actor; None: 2 GiB + the model folder's size


def actor_resources(settings: EvalSettings, options: RayOptions) -> dict[str, Any]:
    """What one actor asks Ray for: CPUs, GPUs and memory (for Ray's packing, not a limit)."""
    in_process = settings.model not in SCRIPTED and not settings.model.startswith("server:")
    cpus = options.cpus if options.cpus is not None else (4.0 if in_process else 1.0)
    gpus = options.gpus if options.gpus is not None else \
        (1.0 if in_process and settings.provider == "cuda" else 0.0)
    memory = options.memory_gb if options.memory_gb is not None else \
        2.0 + (_folder_gib(settings.model) if in_process else 0.0)
    return {"num_cpus": cpus, "num_gpus": gpus, "memory": int(memory * (1 << 30))}


def _folder_gib(model: str) -> float:
    try:
        from agent.cli import resolve_model_folder

        folder = resolve_model_folder(model)
    except Exception:
        return 0.0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / (1 << 30)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("--ray needs Ray: pip install 'deskhand[ray]'") from exc
    return ray


# --- the driver ---------------------------------------------------------------------------------

def run_on_ray(settings: EvalSettings, run_dir: Path, todo: list[Job],
               finished: Callable[[dict[str, Any]], None], *, allow: tuple[str, ...] = ()) -> None:
    """Run `todo` on Ray actors; `finished(record)` is called here, in the driver, per task."""
    options = settings.ray or RayOptions()
    with _Cluster(options.address) as cluster:
        pool = _Pool(settings, run_dir, options, allow, jobs=len(todo), local=cluster.local)
        try:
            pool.run(todo, finished)
        finally:
            pool.close()


class _Cluster:
    """Connect to the cluster (a caller's, $RAY_ADDRESS's or ADDRESS's) or start a local one."""

    def __init__(self, address: str) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS", "")
        self._started = False
        self.local = False  # a cluster this process started on this machine
        self._reaper: Reaper | None = None
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> _Cluster:
        if "ray" in sys.modules and sys.modules["ray"].is_initialized():
            return self  # the caller's connection (a notebook, a test): theirs to shut down
        if self.address:
            _import_ray().init(address=self.address, log_to_driver=False)
        else:
            self._start_local()
            self.local = True
        self._started = True
        return self

    def _start_local(self) -> None:
        token = uuid.uuid4().hex
        marks = {**_LOOPBACK_ONLY, LOCAL_CLUSTER_VAR: token}
        self._saved = {k: os.environ.get(k) for k in marks}
        os.environ.update(marks)  # inherited by every process of the cluster
        # The cluster's processes (and the actors' displays and browsers) die with this one
        # even when it is killed: Ray alone leaves agents and actors behind.
        self._reaper = start_reaper(LOCAL_CLUSTER_VAR, token)
        ray = _import_ray()
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
        node = ray.util.get_node_ip_address()
        from agent.offline import is_loopback_host

        if not is_loopback_host(node):  # Ray was imported earlier with clusters enabled
            self.__exit__()
            raise RuntimeError(f"the local Ray cluster came up on {node}, not on loopback; "
                               "start it with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 or pass --ray "
                               "ADDRESS")

    def __exit__(self, *exc: object) -> None:
        if self._started or self._reaper is not None:
            _import_ray().shutdown()
        if self._reaper is not None:
            stop_reaper(self._reaper)
            self._reaper = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._started = False


class _Pool:
    """The actors and the scheduling loop: one task per actor at a time, results as they come."""

    def __init__(self, settings: EvalSettings, run_dir: Path, options: RayOptions,
                 allow: tuple[str, ...], *, jobs: int, local: bool) -> None:
        from agent.offline_boot import child_environment

        ray = self.ray = _import_ray()
        self.settings, self.run_dir = settings, run_dir
        self.resources = resources = actor_resources(settings, options)
        fits = _fit(ray.cluster_resources(), resources)
        if local and not fits:  # nothing will add a node: say so now, not after a time-out
            raise RuntimeError(self._no_actor_message(False))
        count = min(jobs, options.actors or max(1, fits))
        env = child_environment(allow=allow)
        env["DESKHAND_THREADS"] = str(max(1, int(resources["num_cpus"])))
        plans = None
        if settings.model in SCRIPTED:  # the task file need not exist on the nodes
            from agent.eval.tasks import load_plans

            plans = load_plans(settings.solutions_path())
        manifest = settings.manifest()
        remote = ray.remote(EvalActor).options(
            **resources, max_restarts=-1, max_task_retries=0, runtime_env={"env_vars": env})
        self.actors = [remote.remote(settings, manifest, plans) for _ in range(count)]
        self.idle: list[int] = []  # started actors waiting for a job

    def run(self, todo: list[Job], finished: Callable[[dict[str, Any]], None]) -> None:
        ray = self.ray
        from ray.exceptions import ObjectLostError, RayActorError

        queue: deque[Job] = deque(todo)
        lost: dict[str, list[str]] = {}  # job key -> why each earlier try was lost
        last_actor: dict[str, int] = {}  # job key -> the actor that lost it
        idle = self.idle
        running: dict[Any, tuple[int, Job]] = {}
        probing = {self.actors[n].where.remote(): n for n in range(len(self.actors))}
        started = {n: False for n in range(len(self.actors))}
        where: dict[int, str] = {}
        waited_since = time.monotonic()
        while queue or running:
            for n in list(idle):
                others = len(idle) > 1 or bool(running) or bool(probing)
                job = _next_job(queue, last_actor, n, others=others)
                if job is not None:
                    idle.remove(n)
                    running[self.actors[n].run.remote(job)] = (n, job)
            if not running and not idle and queue:
                limit = RESTART_TIMEOUT if any(started.values()) else START_TIMEOUT
                if not probing or time.monotonic() - waited_since > limit:
                    raise RuntimeError(self._no_actor_message(any(started.values())))
            else:
                waited_since = time.monotonic()
            ready, _ = ray.wait([*running, *probing], num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in probing:
                    n = probing.pop(ref)
                    try:
                        where[n] = ray.get(ref)
                    except RayActorError as exc:
                        if not started[n]:  # could not start: a setup problem, not bad luck
                            raise RuntimeError(f"an evaluation actor failed to start:\n"
                                               f"{_cause(exc, full=True)}") from None
                        log.warning("evaluation actor %s did not come back: %s", n, _cause(exc))
                        continue
                    started[n] = True
                    idle.append(n)
                    continue
                n, job = running.pop(ref)
                try:
                    record, files = ray.get(ref)
                except (RayActorError, ObjectLostError) as exc:
                    reason = f"the Ray actor running it was lost ({where.get(n, '?')}): {_cause(exc)}"
                    log.warning("%s: %s; retrying on another actor", job.key, reason)
                    lost.setdefault(job.key, []).append(reason)
                    last_actor[job.key] = n
                    if len(lost[job.key]) > self.settings.env_retries:
                        finished(lost_record(self.run_dir, job, lost.pop(job.key)))
                    else:
                        queue.appendleft(job)
                    probing[self.actors[n].where.remote()] = n  # rejoins once Ray restarts it
                    continue
                _unpack(self.run_dir, record, job, files)
                record["env_errors"] = lost.pop(job.key, []) + list(record["env_errors"])
                finished(record)
                idle.append(n)

    def _no_actor_message(self, ever_started: bool) -> str:
        ask = ", ".join(f"{k.removeprefix('num_')}={v}" for k, v in self.resources.items())
        if ever_started:
            return ("every evaluation actor was lost and none came back; finished tasks are "
                    "kept and the same command resumes")
        return (f"no evaluation actor could be placed on the cluster ({ask} each; the cluster "
                f"has {self.ray.cluster_resources()}); lower --ray-cpus/--ray-memory or add nodes")

    def close(self) -> None:
        # Idle actors close their displays; busy (interrupted), pending or lost ones are killed
        # and their reapers clean up after them.
        pending = [self.actors[n].close.remote() for n in self.idle]
        try:
            self.ray.wait(pending, num_returns=len(pending), timeout=30)
        except Exception:
            pass
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)


def lost_record(run_dir: Path, job: Job, reasons: list[str]) -> dict[str, Any]:
    """The record of a task whose actor was lost on every try: an environment error."""
    from agent.eval.runner import _Attempt, make_record

    folder = run_dir / _task_dir(job)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    outcome = _Attempt(env_error=reasons[-1], reason=reasons[-1])
    record = make_record(job, outcome, reasons, _task_dir(job), cpu=0.0, wall=0.0)
    write_json(folder / "result.json", record)
    return record


def _fit(cluster: dict[str, float], resources: dict[str, Any]) -> int:
    """How many actors the cluster's resources hold now (counted over the whole cluster)."""
    counts = [cluster.get("memory", 0) // resources["memory"]] if resources["memory"] else []
    if resources["num_cpus"]:
        counts.append(cluster.get("CPU", 0) // resources["num_cpus"])
    if resources["num_gpus"]:
        counts.append(cluster.get("GPU", 0) // resources["num_gpus"])
    return int(min(counts)) if counts else 1


def _next_job(queue: deque[Job], last_actor: dict[str, int], n: int, *,
              others: bool) -> Job | None:
    """The next job for actor `n`: not one lost with `n` while `others` (other actors, idle,
    busy or restarting) may take it; None if `n` should wait for them."""
    for i, job in enumerate(queue):
        if last_actor.get(job.key) != n or not others:
            del queue[i]
            return job
    return None


def _cause(exc: BaseException, *, full: bool = False) -> str:
    """Ray's message for an actor error, without colour codes: its first line, or (`full`) the
    whole text with the creation task's traceback, bounded."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip() or type(exc).__name__
    return text[-3000:] if full else text.split("\n")[0][:300]


def _task_dir(job: Job) -> str:
    return f"tasks/{safe_name(job.task.id)}/r{job.repeat}"


def _unpack(run_dir: Path, record: dict[str, Any], job: Job, files: list[tuple[str, bytes]]) -> None:
    """Write a task folder an actor sent into the run folder, at the place its job owns."""
    if record.get("dir") != _task_dir(job) or record.get("key") != job.key:
        raise RuntimeError(f"an evaluation actor answered {record.get('key')!r} for {job.key}")
    folder = run_dir / _task_dir(job)
    shutil.rmtree(folder, ignore_errors=True)  # a killed driver's or a lost actor's leftovers
    for name, data in files:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise RuntimeError(f"an evaluation actor sent a file outside its task folder: {name!r}")
        target = folder.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# --- the actor ----------------------------------------------------------------------------------

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
        if expected is not None and _model_fingerprint(settings.model) != expected:
            raise RuntimeError(f"the model {settings.model!r} on this node is not the one the "
                               "driver filed in the manifest (its files differ)")
        token = uuid.uuid4().hex
        os.environ[ACTOR_VAR] = token  # its displays and browsers carry the mark
        self._scratch = Path(tempfile.mkdtemp(prefix=f"deskhand-eval-{config_hash(manifest)[:8]}-"))
        self._reaper = start_reaper(ACTOR_VAR, token, remove=self._scratch)
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
