"""`deskhand eval run --ray [ADDRESS]`: the harness's workers as Ray actors on a cluster.

Each actor (agent/eval/ray_actor.py) owns what a `--workers` process owns — its Xvfb display,
site server, browsers and model backend — for many tasks, so the model loads once per actor.
It writes a task's folder in its own scratch directory and returns it with the result record;
the driver unpacks it into the run folder and files the record through `run_eval`'s one writer
(same configuration hash, one fsynced line per task, resume). No shared file system is needed.

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
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from agent.eval.model import folder_gib
from agent.eval.ray_actor import EvalActor
from agent.eval.reaper import MARK_PREFIX, Reaper, start_reaper, stop_reaper
from agent.eval.results import write_json
from agent.eval.settings import SCRIPTED, EvalSettings, Job
from agent.eval.worker import Attempt, make_record, task_dir

log = logging.getLogger(__name__)

START_TIMEOUT = 600.0  # seconds to wait for the first actor (a cluster may be scaling up)
RESTART_TIMEOUT = 600.0  # seconds without any live actor before the run gives up
REPROBE_PAUSE = 1.0  # seconds between questions to an actor Ray is restarting
LOCAL_CLUSTER_VAR = MARK_PREFIX + "RAY_CLUSTER"  # the processes of a local cluster we start
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
        2.0 + (folder_gib(settings.model, settings.resolve_model) if in_process else 0.0)
    return {"num_cpus": cpus, "num_gpus": gpus, "memory": int(memory * (1 << 30))}


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


@dataclass
class _Schedule:
    """The driver's view of a run in progress: jobs waiting, actors busy, idle and starting."""

    queue: deque[Job]
    idle: list[int]  # started actors waiting for a job
    started: dict[int, bool]  # actor -> ever answered its probe
    probing: dict[Any, int]  # probe ref -> actor (starting, or restarting after a loss)
    reprobe: dict[int, float] = field(default_factory=dict)  # restarting actor -> when to ask again
    running: dict[Any, tuple[int, Job]] = field(default_factory=dict)  # ref -> (actor, job)
    where: dict[int, str] = field(default_factory=dict)  # actor -> node and pid, for messages
    lost: dict[str, list[str]] = field(default_factory=dict)  # job key -> why each try was lost
    last_actor: dict[str, int] = field(default_factory=dict)  # job key -> the actor that lost it
    waited_since: float = field(default_factory=time.monotonic)


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
        """One job per actor at a time until every job is filed; `finished` gets each record."""
        n_actors = len(self.actors)
        state = _Schedule(queue=deque(todo), idle=self.idle, started=dict.fromkeys(range(n_actors), False),
                          probing={self.actors[n].where.remote(): n for n in range(n_actors)})
        while state.queue or state.running:
            self._reprobe(state)
            self._dispatch(state)
            self._check_alive(state)
            refs = [*state.running, *state.probing]
            if not refs:  # only restarting actors, asked again after their pause
                time.sleep(REPROBE_PAUSE / 4)
                continue
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=1.0)
            for ref in ready:
                if ref in state.probing:
                    self._probed(state, ref)
                else:
                    self._returned(state, ref, finished)

    def _dispatch(self, state: _Schedule) -> None:
        """Give each idle actor its next job."""
        for n in list(state.idle):
            # Actors Ray is still restarting (waiting to be asked again) are not counted: one
            # that never comes back must not keep a lost job from the actors that did.
            others = len(state.idle) > 1 or bool(state.running) or bool(state.probing)
            job = _next_job(state.queue, state.last_actor, n, others=others)
            if job is not None:
                state.idle.remove(n)
                state.running[self.actors[n].run.remote(job)] = (n, job)

    def _reprobe(self, state: _Schedule) -> None:
        """Ask restarting actors again once their pause is over."""
        now = time.monotonic()
        for n, due in list(state.reprobe.items()):
            if due <= now:
                del state.reprobe[n]
                state.probing[self.actors[n].where.remote()] = n

    def _check_alive(self, state: _Schedule) -> None:
        """Give up when jobs wait and no actor has come (back) within the time-out."""
        if state.running or state.idle or not state.queue:
            state.waited_since = time.monotonic()
            return
        ever_started = any(state.started.values())
        limit = RESTART_TIMEOUT if ever_started else START_TIMEOUT
        waiting = state.probing or state.reprobe
        if not waiting or time.monotonic() - state.waited_since > limit:
            raise RuntimeError(self._no_actor_message(ever_started))

    def _probed(self, state: _Schedule, ref: Any) -> None:
        """An actor answered (or failed) its start-up probe: it joins the idle ones."""
        from ray.exceptions import ActorUnavailableError, RayActorError

        n = state.probing.pop(ref)
        try:
            state.where[n] = self.ray.get(ref)
        except RayActorError as exc:
            if isinstance(exc, ActorUnavailableError):
                # Ray is (re)starting it (a call to a restarting actor fails at once rather than
                # wait; a node lost while it started, too): ask again shortly, so that it joins
                # once it is up (_check_alive bounds the wait).
                state.reprobe[n] = time.monotonic() + REPROBE_PAUSE
                return
            if not state.started[n]:  # could not start: a setup problem, not bad luck
                raise RuntimeError(f"an evaluation actor failed to start:\n"
                                   f"{_cause(exc, full=True)}") from None
            log.warning("evaluation actor %s did not come back: %s", n, _cause(exc))
            return
        state.started[n] = True
        state.idle.append(n)

    def _returned(self, state: _Schedule, ref: Any,
                  finished: Callable[[dict[str, Any]], None]) -> None:
        """A job came back: file it, or (its actor lost) retry it elsewhere or file the loss."""
        from ray.exceptions import ObjectLostError, RayActorError

        n, job = state.running.pop(ref)
        try:
            record, files = self.ray.get(ref)
        except (RayActorError, ObjectLostError) as exc:
            reason = f"the Ray actor running it was lost ({state.where.get(n, '?')}): {_cause(exc)}"
            log.warning("%s: %s; retrying on another actor", job.key, reason)
            state.lost.setdefault(job.key, []).append(reason)
            state.last_actor[job.key] = n
            if len(state.lost[job.key]) > self.settings.env_retries:
                finished(lost_record(self.run_dir, job, state.lost.pop(job.key)))
            else:
                state.queue.appendleft(job)
            state.probing[self.actors[n].where.remote()] = n  # rejoins once Ray restarts it
            return
        _unpack(self.run_dir, record, job, files)
        record["env_errors"] = state.lost.pop(job.key, []) + list(record["env_errors"])
        finished(record)
        state.idle.append(n)

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
    folder = run_dir / task_dir(job)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    outcome = Attempt(env_error=reasons[-1], reason=reasons[-1])
    record = make_record(job, outcome, reasons, task_dir(job), cpu=0.0, wall=0.0)
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


def _unpack(run_dir: Path, record: dict[str, Any], job: Job, files: list[tuple[str, bytes]]) -> None:
    """Write a task folder an actor sent into the run folder, at the place its job owns."""
    if record.get("dir") != task_dir(job) or record.get("key") != job.key:
        raise RuntimeError(f"an evaluation actor answered {record.get('key')!r} for {job.key}")
    folder = run_dir / task_dir(job)
    shutil.rmtree(folder, ignore_errors=True)  # a killed driver's or a lost actor's leftovers
    for name, data in files:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise RuntimeError(f"an evaluation actor sent a file outside its task folder: {name!r}")
        target = folder.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
