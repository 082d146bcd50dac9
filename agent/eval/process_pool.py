"""`deskhand eval run --workers N`: the harness's workers here, in this process or in N processes.

Processes, not threads: pyautogui's display binding is process-wide, and each worker needs its
own display, site server and model instance. A worker process starts under the offline guard
(agent/offline_boot.py) because it holds screenshots for its whole life. Results come back to
the parent, which files them through `run_eval`'s one writer. (Ray actors: agent/eval/ray_pool.py.)
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.eval.settings import EvalSettings, Job
from agent.eval.worker import Worker

Finished = Callable[[dict[str, Any]], None]


def run_here(settings: EvalSettings, run_dir: Path, todo: list[Job], finished: Finished, *,
             display: str | None = None) -> None:
    """Run `todo` one after another in this process, on `display` or a private Xvfb."""
    worker = Worker(settings, run_dir, display=display)
    try:
        for job in todo:
            finished(worker.run(job))
    finally:
        worker.close()


def run_parallel(settings: EvalSettings, run_dir: Path, todo: list[Job], workers: int,
                 displays: list[str] | None, finished: Finished, *,
                 allow: tuple[str, ...] = ()) -> None:
    """Run `todo` in `workers` processes; `finished(record)` is called here as each one ends."""
    from agent.offline_boot import child_environment, environment

    ctx = multiprocessing.get_context("spawn")
    jobs: Any = ctx.Queue()
    results: Any = ctx.Queue()
    for job in todo:
        jobs.put(job)
    procs = []
    for n in range(workers):
        display = displays[n] if displays and n < len(displays) else None
        proc = ctx.Process(target=_worker_main, args=(settings, run_dir, display, jobs, results),
                           name=f"eval-worker-{n}", daemon=True)
        with environment(child_environment(allow=allow)):  # offline from its first import
            proc.start()
        procs.append(proc)
    remaining = len(todo)
    try:
        remaining = _collect(results, procs, remaining, finished)
    finally:
        _stop(procs, interrupted=remaining > 0)


def _collect(results: Any, procs: list[Any], remaining: int, finished: Finished) -> int:
    """File results until none remain; raises if a worker crashed or all of them exited."""
    while remaining:
        try:
            kind, payload = results.get(timeout=1.0)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                raise RuntimeError("all evaluation workers exited early") from None
            continue
        if kind == "result":
            finished(payload)
            remaining -= 1
        elif kind == "crash":
            raise RuntimeError(f"an evaluation worker failed:\n{payload}")
    return remaining


def _stop(procs: list[Any], *, interrupted: bool) -> None:
    if interrupted:  # ask the workers to unwind (close browsers and displays)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
    for proc in procs:
        proc.join(timeout=15)
        if proc.is_alive():
            proc.kill()


def _worker_main(settings: EvalSettings, run_dir: Path, display: str | None, jobs: Any,
                 results: Any) -> None:
    def terminate(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    worker = None
    parent = os.getppid()
    try:
        worker = Worker(settings, run_dir, display=display)
        while os.getppid() == parent:  # an orphan stops (and cleans up) instead of running on
            try:
                job = jobs.get(timeout=0.5)
            except queue.Empty:
                return
            results.put(("result", worker.run(job)))
    except BaseException:
        results.put(("crash", traceback.format_exc()))
    finally:
        if worker is not None:
            worker.close()
