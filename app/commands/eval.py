"""`deskhand eval run` and `deskhand eval report`: the offline evaluation harness's commands."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.options import DEFAULTS, add_flags
from agent.paths import asset
from agent.termtext import visible

if TYPE_CHECKING:  # imported when a run starts, so `deskhand --help` stays quick
    from agent.eval.results import EvalResult
    from agent.eval.runner import EvalSettings

DEFAULT_TASKS = asset("tasks", "offline-webvoyager.jsonl")


def register(subparsers: Any) -> None:
    """Add the `eval` command and its actions to the main parser."""
    ev = subparsers.add_parser(
        "eval", help="offline evaluation harness",
        description="Run WebVoyager-style tasks in a real browser on a private virtual display: "
        "the agent sees X pixels and acts with X input; judges read the outcome.")
    sub = ev.add_subparsers(dest="eval_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run (or resume) an evaluation",
                         description="Results are filed by a hash of the configuration; "
                         "re-running the same command resumes after the finished tasks.")
    run.add_argument("--tasks", type=Path, default=DEFAULT_TASKS,
                     help="task file: our JSONL, the original WebVoyager JSONL, or miniwob "
                     f"(default {DEFAULT_TASKS.name})")
    run.add_argument("--model", required=True, metavar="NAME|DIR|scripted:solver|scripted:wrong",
                     help="a registered model, a model folder, server:URL for a loopback "
                     "OpenAI-compatible server, or a scripted solver (self-test)")
    run.add_argument("--repeat", type=int, default=1, metavar="K",
                     help="runs per task, for pass@k and pass^k (default 1)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="tasks in parallel, each in its own process with its own display, "
                     "site server and copy of the model (default 1); with --ray, the number of "
                     "actors (default: as many as the cluster's CPUs or GPUs hold)")
    run.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run the workers as Ray actors: on the cluster at ADDRESS, else at "
                     "$RAY_ADDRESS, else on a local cluster bound to 127.0.0.1 "
                     "(pip install 'deskhand[ray]'; see the README)")
    run.add_argument("--ray-cpus", type=float, metavar="N",
                     help="CPUs per Ray actor (default 1 for scripted and server: models, else 4; "
                     "also the model's thread count)")
    run.add_argument("--ray-gpus", type=float, metavar="N",
                     help="GPUs per Ray actor, fractions share one (default 1 with --provider "
                     "cuda, else 0)")
    run.add_argument("--ray-memory", type=float, metavar="GB",
                     help="memory per Ray actor, for Ray's packing (default 2 + the model's size)")
    run.add_argument("--allow-lan", action="store_true",
                     help="let a --model server:URL on a private network (e.g. a vLLM server "
                     "inside the cluster) through the offline guard; screenshots go to that one "
                     "host, never to a public address")
    add_flags(run, "max_steps", max_steps={
        "default": None, "metavar": "N",
        "help": f"step cap per task (default: each task's own, else {DEFAULTS.max_steps})"})
    run.add_argument("--out", type=Path, metavar="RUN_DIR",
                     help="run folder (default: the data dir's eval/<config hash>)")
    run.add_argument("--sites-only", metavar="SITE,...", default="",
                     help="only tasks of these sites (comma-separated)")
    run.add_argument("--only", metavar="ID,...", default="",
                     help="only these tasks (ids; a MiniWoB++ task also by its page name, e.g. "
                          "click-button,enter-text)")
    run.add_argument("--limit", type=int, metavar="N", help="only the first N tasks")
    add_flags(run, "provider")
    run.add_argument("--browser-mode", choices=["window", "kiosk"], default="window",
                     help="window: a browser window filling the screen, with its address bar "
                     "(default); kiosk: the page fills the screen as in Fara's training, but "
                     "visit_url has no address bar to type into")
    run.add_argument("--solutions", type=Path, metavar="FILE",
                     help="scripted solvers' plans (default: <tasks>.solutions.jsonl)")
    run.add_argument("--reference", type=Path, metavar="FILE",
                     help="WebVoyager reference answers (JSON), shown to the model judge")
    run.add_argument("--judge-url", metavar="URL",
                     help="also ask a model judge on this loopback OpenAI-compatible endpoint")
    run.add_argument("--judge-model", metavar="NAME", help="model name for the judge endpoint")
    # Adaptive compute and shifted reuse; see `deskhand eval compare`.
    add_flags(run, "history_scale", "idle_waits", "kv_shift", "second_look")
    run.add_argument("--no-report", action="store_true", help="skip writing the report at the end")
    comp = sub.add_parser("compare", help="success rate and model time of two runs side by side",
                          description="Compare two runs of the same task file, e.g. with and "
                          "without an adaptive-compute option: success rates with 95 %% intervals, "
                          "their difference, tasks only one run solved (paired interval, "
                          "McNemar p), model time per step.")
    comp.add_argument("run_a", type=Path, metavar="RUN_A")
    comp.add_argument("run_b", type=Path, metavar="RUN_B")
    comp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    report = sub.add_parser("report", help="write summary.json and report.html for a run folder")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument("--max-thumbs", type=int, default=12,
                        help="screenshots shown per task (the last ones; default 12)")


def run(args: argparse.Namespace) -> int:
    """Dispatch `deskhand eval ACTION`; returns the exit code."""
    if args.eval_command == "report":
        return _report(args)
    if args.eval_command == "compare":
        return _compare(args)
    return _run(args)


def _report(args: argparse.Namespace) -> int:
    from agent.eval.report import write_report

    if not (args.run_dir / "manifest.json").exists():
        print(f"deskhand: {args.run_dir} is not an evaluation run folder", file=sys.stderr)
        return 2
    summary_path, report_path = write_report(args.run_dir, max_thumbs=args.max_thumbs)
    print(f"wrote {summary_path}\nwrote {report_path}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from agent.eval.compare import compare, format_comparison

    for folder in (args.run_a, args.run_b):
        if not (folder / "manifest.json").exists():
            print(f"deskhand: {folder} is not an evaluation run folder", file=sys.stderr)
            return 2
    try:
        result = compare(args.run_a, args.run_b)
    except ValueError as exc:
        print(f"deskhand: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else visible(format_comparison(result)))
    return 0


def _run(args: argparse.Namespace) -> int:
    from agent.eval.browser import EnvironmentFailure
    from agent.eval.results import ManifestMismatch
    from agent.eval.runner import run_eval
    from agent.eval.settings import HostError, TaskSelectionError
    from agent.eval.solver import PlanError

    problem = _check(args)
    if problem:
        print(f"deskhand: {problem}", file=sys.stderr)
        return 2
    settings = _settings(args)
    progress, on_start = _progress_printer()

    def terminate(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # unwind: browsers, displays and workers are shut down

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        summary = run_eval(settings, progress=progress, on_start=on_start)
    except ManifestMismatch as exc:
        print(f"deskhand: {visible(str(exc))}", file=sys.stderr)
        return 2
    except (PlanError, HostError, TaskSelectionError) as exc:
        print(f"deskhand: {visible(str(exc))}", file=sys.stderr)
        return 2
    except EnvironmentFailure as exc:
        print(f"deskhand: the evaluation environment failed: {visible(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; finished tasks are kept and the same command resumes",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    total = summary.skipped + summary.ran
    print(f"{summary.run_dir}: ran {summary.ran}, skipped {summary.skipped} already finished; "
          f"{summary.passed}/{summary.ran} passed this session ({total} results in all)")
    if not args.no_report:
        from agent.eval.report import write_report

        _, report_path = write_report(summary.run_dir)
        print(f"report: {report_path}")
    return 0


def _check(args: argparse.Namespace) -> str:
    """What is wrong with the `eval run` arguments, or "" when nothing is."""
    if args.ray is None and (args.ray_cpus, args.ray_gpus, args.ray_memory) != (None,) * 3:
        return "--ray-cpus, --ray-gpus and --ray-memory need --ray"
    if str(args.tasks) != "miniwob" and not args.tasks.exists():
        return f"no task file {args.tasks}"
    return ""


def _settings(args: argparse.Namespace) -> EvalSettings:
    """The harness's settings from the `eval run` arguments."""
    from agent.eval.runner import EvalSettings

    return EvalSettings(
        tasks=args.tasks, model=args.model, repeat=max(1, args.repeat), max_steps=args.max_steps,
        provider=args.provider, browser_mode=args.browser_mode, solutions=args.solutions,
        reference=args.reference, judge_url=args.judge_url, judge_model=args.judge_model,
        workers=max(1, args.workers or 1), history_scale=args.history_scale,
        allow_lan=args.allow_lan, ray=_ray_options(args),
        idle_waits=max(0, args.idle_waits), kv_shift=args.kv_shift,
        second_look=not args.no_second_look,
        sites_only=tuple(s for s in args.sites_only.split(",") if s.strip()),
        only=tuple(s for s in args.only.split(",") if s.strip()), limit=args.limit,
        out=args.out, resolve_model=getattr(args, "resolve_model", None))


def _progress_printer() -> tuple[Callable[[EvalResult], None], Callable[[int, int], None]]:
    """The harness's (progress, on_start) callbacks: one line per finished task, numbered."""
    count = {"done": 0, "total": 0}

    def on_start(total: int, skipped: int) -> None:
        count.update(done=skipped, total=total)

    def progress(record: EvalResult) -> None:
        count["done"] += 1
        mark = "PASS" if record.passed else f"FAIL ({record.failure})"
        width = len(str(count["total"]))
        # A failure reason can quote the model or the page: shown, never obeyed by the terminal.
        print(visible(f"[{count['done']:{width}}/{count['total']}] {mark:24} {record.task_id}"
                      f"#{record.repeat}  {record.steps} steps  {record.wall_s:.1f} s",
                      multiline=False), flush=True)

    return progress, on_start


def _ray_options(args: argparse.Namespace) -> Any:
    """The Ray options for `--ray`, or None to run on this machine."""
    if args.ray is None:
        return None
    from agent.eval.ray_pool import RayOptions

    return RayOptions(address=args.ray, actors=args.workers, cpus=args.ray_cpus,
                      gpus=args.ray_gpus, memory_gb=args.ray_memory)
