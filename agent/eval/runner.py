"""Runs (or resumes) an evaluation: what is run, where its results are filed, and who runs it.

The configuration (agent/eval/settings.py) is hashed into the run folder's manifest, so that a
run resumes after its finished tasks and refuses a changed configuration. The tasks are carried
out by workers (agent/eval/worker.py: pixels in, real X input out) here, in a process pool
(`--workers N`, agent/eval/process_pool.py) or as Ray actors (`--ray`, agent/eval/ray_pool.py);
all three file results through `run_eval`'s one writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.eval.results import EvalResult, ResultsLog, open_run_dir
from agent.eval.settings import (  # re-exported: the harness's public names live here
    SCRIPTED,
    EvalSettings,
    Job,
    default_run_dir,
    select_tasks,
    server_hosts,
)
from agent.eval.worker import Worker, safe_name

__all__ = ["EvalSettings", "Job", "RunSummary", "Worker", "default_run_dir", "run_eval",
           "safe_name", "select_tasks"]


@dataclass
class RunSummary:
    run_dir: Path
    resumed: bool
    skipped: int
    ran: int
    passed: int
    records: list[EvalResult] = field(default_factory=list)


def run_eval(settings: EvalSettings, *, displays: list[str] | None = None,
             progress: Callable[[EvalResult], None] | None = None,
             on_start: Callable[[int, int], None] | None = None) -> RunSummary:
    """Run (or resume) an evaluation; returns once every selected task has a result.

    `on_start(total, skipped)` is told the size of the run before the first task starts;
    `progress(record)` gets each result as it is filed."""
    allow = server_hosts(settings)  # refuses a public model server before anything starts
    tasks = select_tasks(settings)  # before the run folder: an unknown --only id leaves none
    manifest = settings.manifest()
    run_dir = Path(settings.out or default_run_dir(manifest))
    resumed = open_run_dir(run_dir, manifest)  # refuses a changed configuration
    log = ResultsLog(run_dir)
    done = log.finished_keys()
    if settings.model in SCRIPTED:
        _check_plans(settings, tasks)
    jobs = [Job(t, r) for t in tasks for r in range(settings.repeat)]
    todo = [j for j in jobs if j.key not in done]
    summary = RunSummary(run_dir, resumed, len(jobs) - len(todo), 0, 0)
    if on_start is not None:
        on_start(len(jobs), summary.skipped)

    def finished(record: dict[str, Any]) -> None:
        result = EvalResult.of(record)  # the worker's record, checked once where it is filed
        log.append(result)
        summary.ran += 1
        summary.passed += result.passed
        summary.records.append(result)
        if progress is not None:
            progress(result)

    _carry_out(settings, run_dir, todo, finished, displays=displays, allow=allow)
    return summary


def _carry_out(settings: EvalSettings, run_dir: Path, todo: list[Job],
               finished: Callable[[dict[str, Any]], None], *, displays: list[str] | None,
               allow: tuple[str, ...]) -> None:
    """Hand `todo` to Ray actors, worker processes or one worker here."""
    from agent.eval import process_pool

    workers = max(1, min(settings.workers, len(todo)))
    if settings.ray is not None and todo:
        from agent.eval.ray_pool import run_on_ray

        run_on_ray(settings, run_dir, todo, finished, allow=allow)
    elif workers == 1:
        process_pool.run_here(settings, run_dir, todo, finished, display=(displays or [None])[0])
    else:
        process_pool.run_parallel(settings, run_dir, todo, workers, displays, finished, allow=allow)


def _check_plans(settings: EvalSettings, tasks: list[Any]) -> None:
    from agent.eval.solver import PlanError
    from agent.eval.tasks import load_plans

    path = settings.solutions_path()
    if not path.exists():
        raise PlanError(f"scripted solvers need plans: {path} does not exist (--solutions FILE)")
    missing = [t.id for t in tasks if t.id not in load_plans(path)]
    if missing:
        raise PlanError(f"{path} has no plan for {len(missing)} task(s): {', '.join(missing[:5])}")
