"""`deskhand run "TASK"`: one task on this desktop, every step printed as it happens.

Also the terminal's side of a run: the confirmation question, Ctrl+C (first press stops between
phases, the second quits) and the step lines. `deskhand runs replay` runs through `cmd_run` too.
"""

from __future__ import annotations

import argparse
import signal
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.options import RunOptions, add_flags, from_args
from agent.termtext import visible, visible_json
from app.commands.backends import load_backend


def register(sub: Any) -> None:
    """Add the `run` subcommand to the `deskhand` parser."""
    run = sub.add_parser("run", help="run one task from the terminal",
                         description="Run one task on this desktop, printing each step live "
                         "(thoughts, action, timings). Ctrl+C stops between phases; a second "
                         "Ctrl+C quits at once.")
    run.add_argument("task", help="what the agent should do, in plain words")
    add_flags(run, "monitor")
    run.add_argument("--model", metavar="NAME|DIR",
                     help="a registered model name or a model folder (onnxruntime-genai folder, "
                     "or a Hugging Face checkpoint run with transformers); default: the only or "
                     "the default registered model")
    add_flags(run, "provider")
    run.add_argument("--server", metavar="URL",
                     help="use a local OpenAI-compatible server instead of an in-process model "
                     "(e.g. http://127.0.0.1:8080/v1)")
    run.add_argument("--server-model", metavar="NAME", help="model name to ask the server for")
    run.add_argument("--allow-lan", action="store_true",
                     help="allow --server on a non-loopback address (screenshots leave the machine; "
                     "offline mode lets that one host through)")
    run.add_argument("--script", metavar="FILE", type=Path,
                     help="replay model replies from a JSON list of strings (demos, tests)")
    add_flags(run, "max_steps", "max_minutes", "policy", "deny_titles")
    run.add_argument("--dry-run", action="store_true",
                     help="predict actions but send no input")
    add_flags(run, "settle_timeout", "search_url", "keep_screenshots", "offline", "history_scale",
              "idle_waits", "kv_shift", "second_look", "mode")
    run.add_argument("--json", action="store_true", help="print one JSON object per step")


def cmd_run(args: argparse.Namespace, *, backend: Any = None,
            settings: dict[str, Any] | None = None, options: RunOptions | None = None) -> int:
    """`deskhand run`; `backend` replaces the model (replay), `settings` adds to the record.

    `options` replaces the run options parsed into `args` (replay builds its own).
    """
    from agent.loop import iter_steps
    from agent.safety import StopFlag

    options = options or from_args(args)
    stop = StopFlag()
    screen = _screen(options.monitor)
    estimate = None
    if backend is None:
        backend = load_backend(args)
        estimate = _step_estimate(args, backend)
    gate, executor, config = _gate(options), _executor(args, options, stop), _config(args, options)
    recorder = _start_record(args, options, backend, settings)
    previous = signal.signal(signal.SIGINT, _sigint_handler(stop))
    streaming = not args.json and sys.stdout.isatty()
    print(f"deskhand: run {recorder.run_id} — {visible(args.task)}"
          + (" (dry run)" if args.dry_run else "")
          + (f" · {estimate.text()}" if estimate is not None else ""))
    try:
        steps = iter_steps(args.task, backend=backend, screen=screen, executor=executor,
                           gate=gate, config=config, stop=stop, recorder=recorder,
                           on_token=_token_printer(streaming),
                           ask_person=terminal_asker(stop, options.confirm_timeout))
        result = _print_steps(steps, args.json, streaming)
    finally:
        signal.signal(signal.SIGINT, previous)
    print(f"\nresult: {result.status.value} — {visible(result.reason)} "
          f"({result.steps} steps, {result.elapsed:.1f} s)")
    if result.answer:
        print(f"answer: {visible(result.answer)}")
    print(f"record: {recorder.path}")
    return 0 if result.status.value in ("success",) else 1


def _step_estimate(args: argparse.Namespace, backend: Any) -> Any:
    """Warm the in-process model up and time a probe: the expected time per step (or None)."""
    # Only a model this process runs and can warm up is probed: a scripted reply must not be
    # spent on the probe, and a server's speed is not this machine's.
    if args.script or args.server or not callable(getattr(backend, "warm_up", None)):
        return None
    from app.step_estimate import measure

    return measure(backend)


def _screen(monitor: int) -> Any:
    """The screen, checked to have `monitor` before any model is loaded."""
    from agent.screen import Screen, ScreenError

    screen = Screen()
    try:
        screen.monitor(monitor)
    except ScreenError as exc:
        raise UserError(str(exc)) from exc
    return screen


def _gate(options: RunOptions) -> Any:
    """The confirmation gate, asking in this terminal."""
    from agent.safety import Gate

    try:
        from agent.desktop import focused_window_title
    except ImportError:
        focused_window_title = lambda: ""  # noqa: E731
    return Gate(options.policy.value, ask=ask_in_terminal, deny_titles=list(options.deny_titles),
                window_title=focused_window_title)


def _executor(args: argparse.Namespace, options: RunOptions, stop: Any) -> Any:
    """The real executor, or one that sends no input for --dry-run."""
    from agent.executor import DryRunExecutor, Executor

    if args.dry_run:
        return DryRunExecutor(search_url=options.search_url)
    return Executor(stop=stop, search_url=options.search_url)


def _config(args: argparse.Namespace, options: RunOptions) -> Any:
    """The loop's configuration; offline mode lets an --allow-lan --server host through."""
    from agent.loop import RunConfig

    lan_host = ((urllib.parse.urlsplit(args.server).hostname or "",)
                if args.server and args.allow_lan else ())
    return RunConfig.from_options(options, offline_allow=lan_host)


def _start_record(args: argparse.Namespace, options: RunOptions, backend: Any,
                  settings: dict[str, Any] | None) -> Any:
    """The run's record in the data dir, with the settings that describe the run."""
    from agent.trajectory import TrajectoryError, TrajectoryStore

    settings = {"model": getattr(backend, "name", "?"), "monitor": options.monitor,
                "confirm": options.policy.value, "dry_run": args.dry_run,
                "max_steps": options.max_steps, **(settings or {})}
    try:
        return TrajectoryStore().start(args.task, settings,
                                       keep_screenshots=options.keep_screenshots)
    except TrajectoryError as exc:
        raise UserError(str(exc)) from exc


def _sigint_handler(stop: Any) -> Any:
    """Ctrl+C: the first press stops the run between phases, the second quits at once."""
    presses = 0

    def on_sigint(_sig: int, _frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            raise KeyboardInterrupt
        stop.set("stopped with Ctrl+C")
        print("\n  stopping after the current phase (Ctrl+C again to quit now)", file=sys.stderr)

    return on_sigint


def _token_printer(streaming: bool) -> Any:
    """The on_token callback: prints the model's text as it comes when on a terminal."""
    def on_token(piece: str) -> None:
        if streaming:  # escaped per character, so a sequence split over tokens is harmless
            print(visible(piece), end="", flush=True)

    return on_token


def _print_steps(steps: Any, as_json: bool, streaming: bool) -> Any:
    """Print every step the generator yields; returns the run's result."""
    while True:
        try:
            step = next(steps)
        except StopIteration as done:
            return done.value
        print_step(step, as_json, streamed=streaming)


def ask_in_terminal(request: Any) -> Any:
    """The gate's question, asked on this terminal (denied when there is none)."""
    from agent.actions import describe
    from agent.safety import Decision, read_on_screen

    if not sys.stdin.isatty():
        print("  confirmation needed but no terminal to ask: denied", file=sys.stderr)
        return Decision.DENY
    print(f"\n  The agent wants to: {visible(describe(request.action), multiline=False)}")
    print(f"  because it {visible('; '.join(request.reasons), multiline=False)}.")
    print(f"  {visible(read_on_screen(request.label), multiline=False)}")
    answer = input("  Allow? [y]es once / [a]ll this run / [N]o: ").strip().lower()
    return {"y": Decision.ALLOW_ONCE, "yes": Decision.ALLOW_ONCE,
            "a": Decision.ALLOW_RUN, "all": Decision.ALLOW_RUN}.get(answer, Decision.DENY)


def terminal_asker(stop: Any, timeout: float, stream: Any = None) -> Any:
    """The loop's `ask_person` on this terminal: the answer typed within `timeout` seconds.

    None (the run ends) without a terminal, on an empty line, at the time-out, or when Ctrl+C
    stops the run while it waits (the line is read in slices, so the stop is seen).
    """
    def ask(question: str) -> str | None:
        source = stream or sys.stdin
        if not source.isatty():
            print("  the agent asks a question, but there is no terminal to answer it", file=sys.stderr)
            return None
        print(f"\n  The agent asks you: {visible(question)}")
        print(f"  (answer within {timeout:.0f} s; an empty line does not answer)", flush=True)
        return (_read_line(source, stop, timeout) or "").strip() or None

    return ask


def _read_line(source: Any, stop: Any, timeout: float) -> str | None:
    """One line from `source` within `timeout` seconds; None at the time-out or a stop."""
    import select
    import time

    if sys.platform == "win32":  # select() takes sockets only there: a plain blocking read
        return source.readline()
    print("  > ", end="", flush=True)
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            print("\n  no answer in time", file=sys.stderr)
            return None
        ready, _, _ = select.select([source], [], [], min(left, 0.2))
        if ready:
            return source.readline()
    return None


def print_step(step: Any, as_json: bool, *, streamed: bool) -> None:
    """One step's lines (or one JSON object); every model or page text made inert."""
    if as_json:
        from agent.step_record import StepRecord

        print(visible_json(StepRecord.from_step(step).to_json()), flush=True)
        return
    if streamed:
        print()
    else:
        print(f"\n  {visible(step.thoughts)}")
    phases = " ".join(f"{k} {v:.2f}s" for k, v in step.timings.items() if not k.startswith("model."))
    marker = "!" if step.error else "→"
    print(f"[{step.index + 1}] {marker} {visible(step.summary)}")
    if step.note:
        print(f"     {visible(step.note)}")
    if step.replay is not None:
        c = step.replay
        score = f" {c.score:.2f}" if c.score is not None else ""
        print(visible(f"     replay: {c.verification}{score}" + (" · model called" if
                      c.model_called else "") + (f" · {c.reason}" if c.reason else "")))
    print(f"     {phases} | tokens {step.prompt_tokens} in, {step.generated_tokens} out", flush=True)
