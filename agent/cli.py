"""The `deskhand` command line.

This module is the program's composition root: besides the agent core it loads, lazily and only
for the subcommand asked for, the model registry (`models`), the evaluation harness and the
desktop app (`app`). Nothing else in `agent` imports those packages.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

from agent import __version__
from agent.termtext import visible, visible_json

EPILOG = """\
commands:
  deskhand                      open the desktop app (same as `deskhand app`)
  deskhand run "TASK"           run one task from the terminal, printing every step
  deskhand runs list|show|export|delete
                                browse recorded runs; export writes one self-contained HTML file
  deskhand runs replay ID|NAME  perform a successful run's actions again, each target checked
                                on screen first (`runs save ID NAME` names a run)
  deskhand models list|import|export|verify|download|remove
                                manage on-device models (see `deskhand models --help`)
  deskhand eval run|report      the offline WebVoyager-style evaluation harness
  deskhand bench                per-phase timings of one agent step on this machine
  deskhand monitors             list monitors as the agent sees them
  deskhand mcp [--http]         serve Deskhand to other agents (MCP hosts) as a local MCP
                                server; only text goes back (`deskhand mcp --help`)

Runs refuse every non-loopback network connection from this process (verified offline mode)
unless --allow-network is given. Run records live in the user data dir
(DESKHAND_DATA_DIR overrides it).
"""

# Subcommands implemented outside the agent core: (name, module, help).
PLUGINS = (
    ("models", "models.cli", "manage on-device models"),
    ("eval", "agent.eval.cli", "offline evaluation harness"),
    ("bench", "models.bench", "benchmark one agent step on this machine"),
    ("mcp", "agent.mcp.cli", "serve Deskhand to other agents as a local MCP server"),
)


def fraction(text: str) -> float:
    """An argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 (exclusive) and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deskhand", description="An on-device computer-use agent: a local vision-language "
        "model looks at your screen and clicks and types until the task is done.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"deskhand {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    app = sub.add_parser("app", help="open the desktop app (the default)")
    app.add_argument("--tray", action="store_true", help="start in the system tray, window hidden")
    app.add_argument("--no-hotkeys", action="store_true",
                     help="don't grab the global hotkeys (quick command, stop)")

    run = sub.add_parser("run", help="run one task from the terminal",
                         description="Run one task on this desktop, printing each step live "
                         "(thoughts, action, timings). Ctrl+C stops between phases; a second "
                         "Ctrl+C quits at once.")
    run.add_argument("task", help="what the agent should do, in plain words")
    run.add_argument("--monitor", type=int, default=1,
                     help="monitor to watch and act on: 1..n, or 0 for all together (default 1)")
    run.add_argument("--model", metavar="NAME|DIR",
                     help="a registered model name or a model folder (onnxruntime-genai folder, "
                     "or a Hugging Face checkpoint run with transformers); default: the only or "
                     "the default registered model")
    run.add_argument("--provider", choices=["auto", "cpu", "cuda", "dml"], default="auto",
                     help="ONNX Runtime execution provider (default auto: CUDA if usable, "
                     "DirectML on Windows, else CPU)")
    run.add_argument("--server", metavar="URL",
                     help="use a local OpenAI-compatible server instead of an in-process model "
                     "(e.g. http://127.0.0.1:8080/v1)")
    run.add_argument("--server-model", metavar="NAME", help="model name to ask the server for")
    run.add_argument("--allow-lan", action="store_true",
                     help="allow --server on a non-loopback address (screenshots leave the machine; "
                     "offline mode lets that one host through)")
    run.add_argument("--script", metavar="FILE", type=Path,
                     help="replay model replies from a JSON list of strings (demos, tests)")
    run.add_argument("--max-steps", type=int, default=30, help="stop after this many steps (30)")
    run.add_argument("--max-minutes", type=float, default=30.0,
                     help="stop after this many minutes (30)")
    run.add_argument("--confirm", choices=["never", "risky", "always"], default="risky",
                     help="when to ask before acting: never, risky actions (pay, send, delete, "
                     "closing windows, deny-listed windows), or always (default risky)")
    run.add_argument("--deny-title", action="append", default=[], metavar="TEXT",
                     help="ask before any action while the focused window's title contains TEXT "
                     "(repeatable)")
    run.add_argument("--dry-run", action="store_true",
                     help="predict actions but send no input")
    run.add_argument("--settle-timeout", type=float, default=3.0,
                     help="longest wait for the screen to stop changing after an action (3 s)")
    run.add_argument("--search-url", metavar="TEMPLATE",
                     help="URL template for web_search, with {query} (default: a local page)")
    run.add_argument("--no-screenshots", action="store_true",
                     help="record steps without saving screenshots")
    run.add_argument("--allow-network", action="store_true",
                     help="turn off verified offline mode for this run")
    run.add_argument("--history-scale", type=fraction, default=1.0, metavar="F",
                     help="send earlier screenshots at this fraction of their size, e.g. 0.5 "
                     "(fewer image tokens per step, faster; the model was trained on full size, "
                     "so accuracy may drop; default 1)")
    run.add_argument("--idle-waits", type=int, default=0, metavar="N",
                     help="after a wait that left the screen unchanged, wait again up to N times "
                     "before asking the model (saves model steps; default 0)")
    run.add_argument("--json", action="store_true", help="print one JSON object per step")

    runs = sub.add_parser("runs", help="browse recorded runs")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    runs_sub.add_parser("list", help="list runs, newest first")
    show = runs_sub.add_parser("show", help="print a run step by step")
    show.add_argument("id", help="run id, a unique prefix of one, or 'last'")
    export = runs_sub.add_parser("export", help="write a self-contained HTML file of a run")
    export.add_argument("id", help="run id, a unique prefix of one, or 'last'")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: in the run folder)")
    delete = runs_sub.add_parser("delete", help="delete a run's record")
    delete.add_argument("id")
    from agent.replay.command import add_arguments as add_replay_arguments

    add_replay_arguments(runs_sub)

    sub.add_parser("monitors", help="list monitors as the agent sees them")

    for name, module, help_text in PLUGINS:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue  # the part is not installed in this build; its command is simply absent
        if hasattr(mod, "register"):
            mod.register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "app"
    try:
        if command == "app":
            return cmd_app(args)
        if command == "run":
            return cmd_run(args)
        if command == "runs":
            return cmd_runs(args)
        if command == "monitors":
            return cmd_monitors()
        for name, module, _help in PLUGINS:
            if command == name:
                return int(importlib.import_module(module).run(args) or 0)
    except UserError as exc:  # may quote a server or a file: shown, never obeyed
        print(f"deskhand: {visible(str(exc))}", file=sys.stderr)
        return 2
    parser.print_help()
    return 2


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def load_backend(args: argparse.Namespace) -> Any:
    """The backend the `run` arguments ask for."""
    from agent.inference.base import BackendError, ScriptedBackend

    if args.script:
        try:
            replies = json.loads(args.script.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read --script {args.script}: {exc}") from exc
        if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
            raise UserError("--script must hold a JSON list of strings")
        return ScriptedBackend(replies)
    try:
        if args.server:
            from agent.inference.openai_compat import OpenAICompatBackend

            return OpenAICompatBackend(args.server, args.server_model, allow_lan=args.allow_lan)
        folder = resolve_model_folder(args.model)
        if (folder / "genai_config.json").exists():
            from agent.inference.onnx import OnnxBackend

            return OnnxBackend(folder, provider=args.provider)
        if (folder / "config.json").exists():
            from agent.inference.reference import ReferenceBackend

            return ReferenceBackend(folder)
        raise UserError(f"{folder} is neither an onnxruntime-genai model folder "
                        "(genai_config.json) nor a Hugging Face checkpoint (config.json)")
    except BackendError as exc:
        raise UserError(str(exc)) from exc
    except ImportError as exc:
        raise UserError(f"{exc}. Install the model runtime: pip install 'deskhand[onnx]'") from exc


def resolve_model_folder(name_or_dir: str | None) -> Path:
    """The model folder for --model: a registered name, or a folder that validates first."""
    try:
        from models.registry import resolve_model
    except ImportError as exc:
        if name_or_dir and Path(name_or_dir).expanduser().is_dir():
            return Path(name_or_dir).expanduser()  # no validator in this build; the backend checks
        raise UserError("the model registry is not installed; pass --model DIR") from exc
    try:
        return Path(resolve_model(name_or_dir))
    except (KeyError, LookupError, ValueError, FileNotFoundError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        raise UserError(f"{message}\nImport a model with `deskhand models import DIR`, export one "
                        "with `deskhand models export HF_DIR`, or pass --model DIR.") from exc


def _ask_in_terminal(request: Any) -> Any:
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


def cmd_run(args: argparse.Namespace, *, backend: Any = None,
            settings: dict[str, Any] | None = None) -> int:
    """`deskhand run`; `backend` replaces the model (replay), `settings` adds to the record."""
    from agent.executor import DryRunExecutor, Executor
    from agent.loop import RunConfig, iter_steps
    from agent.safety import Gate, Limits, StopFlag
    from agent.screen import Screen, ScreenError
    from agent.trajectory import TrajectoryError, TrajectoryStore

    stop = StopFlag()
    screen = Screen()
    try:
        screen.monitor(args.monitor)
    except ScreenError as exc:
        raise UserError(str(exc)) from exc
    backend = backend or load_backend(args)
    try:
        from agent.desktop import focused_window_title
    except ImportError:
        focused_window_title = lambda: ""  # noqa: E731
    gate = Gate(args.confirm, ask=_ask_in_terminal, deny_titles=args.deny_title,
                window_title=focused_window_title)
    executor_kwargs: dict[str, Any] = {"stop": stop}
    if args.search_url:
        executor_kwargs["search_url"] = args.search_url
    executor = DryRunExecutor() if args.dry_run else Executor(**executor_kwargs)
    lan_host = ((urllib.parse.urlsplit(args.server).hostname or "",)
                if args.server and args.allow_lan else ())
    config = RunConfig(monitor=args.monitor, settle_timeout=args.settle_timeout,
                       offline=not args.allow_network, offline_allow=lan_host,
                       history_scale=args.history_scale, idle_waits=max(0, args.idle_waits),
                       limits=Limits(max_steps=args.max_steps, max_seconds=args.max_minutes * 60))
    settings = {"model": getattr(backend, "name", "?"), "monitor": args.monitor,
                "confirm": args.confirm, "dry_run": args.dry_run, "max_steps": args.max_steps,
                **(settings or {})}
    try:
        recorder = TrajectoryStore().start(args.task, settings,
                                           keep_screenshots=not args.no_screenshots)
    except TrajectoryError as exc:
        raise UserError(str(exc)) from exc

    presses = 0

    def on_sigint(_sig: int, _frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            raise KeyboardInterrupt
        stop.set("stopped with Ctrl+C")
        print("\n  stopping after the current phase (Ctrl+C again to quit now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    streaming = not args.json and sys.stdout.isatty()

    def on_token(piece: str) -> None:
        if streaming:  # escaped per character, so a sequence split over tokens is harmless
            print(visible(piece), end="", flush=True)

    print(f"deskhand: run {recorder.run_id} — {visible(args.task)}"
          + (" (dry run)" if args.dry_run else ""))
    try:
        steps = iter_steps(args.task, backend=backend, screen=screen, executor=executor,
                           gate=gate, config=config, stop=stop, recorder=recorder,
                           on_token=on_token)
        while True:
            try:
                step = next(steps)
            except StopIteration as done:
                result = done.value
                break
            _print_step(step, args.json, streamed=streaming)
    finally:
        signal.signal(signal.SIGINT, previous)
    print(f"\nresult: {result.status.value} — {visible(result.reason)} "
          f"({result.steps} steps, {result.elapsed:.1f} s)")
    if result.answer:
        print(f"answer: {visible(result.answer)}")
    print(f"record: {recorder.path}")
    return 0 if result.status.value in ("success",) else 1


def _print_step(step: Any, as_json: bool, *, streamed: bool) -> None:
    if as_json:
        from agent.trajectory import step_to_dict

        print(visible_json(step_to_dict(step)), flush=True)
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


def cmd_runs(args: argparse.Namespace) -> int:
    from agent.trajectory import TrajectoryError, TrajectoryStore

    def notes(problems: tuple[str, ...]) -> None:
        for problem in problems:  # damaged records: each said once, the rest still shown
            print(f"deskhand: {visible(problem)}", file=sys.stderr)

    store = TrajectoryStore()
    try:
        if args.runs_command == "list":
            listing = store.scan()
            notes(listing.problems)
            runs = listing.runs
            if not runs:
                print("no runs yet")
            for r in runs:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started))
                print(visible(f"{r.id}  {when}  {r.status:<10} {r.steps:>3} steps  {r.task[:60]}",
                              multiline=False))
            return 0
        if args.runs_command == "show":
            record = store.load(args.id)
            notes(record.problems)
            print(visible(f"{record.info.id}: {record.info.task}\nstatus: {record.info.status}"
                          f" — {record.meta.get('reason', '')}"))
            for s in record.steps:
                print(visible(f"[{s['index'] + 1}] {s.get('description', '')}"))
                if s.get("thoughts"):
                    print(f"     {visible(s['thoughts'])}")
                for line in _offline_lines(s.get("offline_attempts")):
                    print(f"     {visible(line)}")
            if record.info.answer:
                print(f"answer: {visible(record.info.answer)}")
            offline = record.meta.get("offline")
            offline = offline if isinstance(offline, dict) else {}
            attempts = _offline_lines(offline.get("attempts"))
            if attempts:
                print(f"offline mode refused {len(attempts)} attempt(s) to reach the network:")
                for line in attempts:
                    print(f"  {visible(line)}")
            processes = offline.get("processes")
            for name, text in (processes.items() if isinstance(processes, dict) else ()):
                print(visible(f"{name}: {text}"))
            return 0
        if args.runs_command == "export":
            print(store.export_html(args.id, args.output))
            return 0
        if args.runs_command in ("replay", "save"):
            from agent.replay.command import cmd_replay, cmd_save

            return cmd_replay(args) if args.runs_command == "replay" else cmd_save(args)
        if args.runs_command == "delete":
            print(visible(store.delete(args.id)))
            return 0
    except KeyError as exc:
        raise UserError(exc.args[0]) from exc
    except TrajectoryError as exc:
        raise UserError(str(exc)) from exc
    return 2


def _offline_lines(attempts: Any) -> list[str]:
    """Refused offline-mode attempts of a run record, one line each (bad entries skipped)."""
    lines = []
    for a in attempts if isinstance(attempts, list) else ():
        if isinstance(a, dict):
            lines.append(f"offline mode refused {a.get('operation', '?')} to "
                         f"{a.get('destination', '?')} ({a.get('process', '')})")
    return lines


def cmd_app(args: argparse.Namespace) -> int:
    import os

    if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM")):
        raise UserError("no desktop session to open the app on (DISPLAY is not set). Run it from "
                        "a desktop, or use `deskhand run \"TASK\"` from a terminal that has one.")
    try:
        from app.main import main as app_main
    except ImportError as exc:
        raise UserError(f"the desktop app needs PySide6: pip install 'deskhand[gui]' ({exc})") from exc
    argv = [flag for flag, on in (("--tray", getattr(args, "tray", False)),
                                  ("--no-hotkeys", getattr(args, "no_hotkeys", False))) if on]
    return app_main(argv)


def cmd_monitors() -> int:
    from agent.screen import Screen, ScreenError

    try:
        monitors = Screen().monitors()
    except ScreenError as exc:
        raise UserError(str(exc)) from exc
    for m in monitors:
        print(f"{m.index}: {m.width}x{m.height} at ({m.left}, {m.top})"
              + ("  (all monitors)" if m.index == 0 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
