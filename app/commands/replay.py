"""`deskhand runs replay|save`: load a run, check it may be replayed, and run it through `cmd_run`.

The replay itself is `app.commands.run.cmd_run` with a `ReplayBackend` in the model's place, so the
terminal run, its confirmation prompts, Ctrl+C handling, recording and printing are the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.options import DEFAULTS, add_flags, from_args
from agent.replay.backend import LazyBackend, ReplayBackend
from agent.replay.recording import (
    Recording,
    ReplayRefused,
    check_replayable,
    from_record,
    parse_sets,
    task_parameters,
    with_parameters,
)
from agent.replay.saved import SavedTasks


def add_arguments(runs_sub: Any) -> None:
    """The `runs replay` and `runs save` parsers."""
    replay = runs_sub.add_parser(
        "replay", help="perform a recorded run's actions again, each checked on screen first",
        description="Replay a successful run: before each recorded action its target is looked "
        "for on the current screen and the click lands where it is now; typed text, keys and "
        "scrolls repeat. A step whose target is gone or ambiguous is handed to the model (with "
        "the task and recent history); replay resumes when the screen matches the recording "
        "again. Every action passes the confirmation gate again.")
    replay.add_argument("id", help="run id, a unique prefix, 'last', or a saved task name")
    add_flags(replay, "monitor", "policy", monitor={
        "help": f"monitor to replay on (default {DEFAULTS.monitor})"}, policy={
        "help": f"when to ask before acting (default {DEFAULTS.policy}, as for a model run)"})
    replay.add_argument("--dry-run", action="store_true",
                        help="check the first steps and print them, send no input, load no model")
    replay.add_argument("--set", action="append", default=[], metavar="OLD=NEW",
                        help="replace text typed from the task, e.g. --set Oslo=Bergen (repeatable)")
    replay.add_argument("--allow-unfinished", action="store_true",
                        help="replay a run that did not end successfully")
    replay.add_argument("--no-model", action="store_true",
                        help="never call the model: stop at the first step that cannot be verified")
    replay.add_argument("--model", metavar="NAME|DIR", help="model for steps that cannot be "
                        "verified (default: the default registered model, loaded only if needed)")
    replay.add_argument("--server", metavar="URL", help="use a local OpenAI-compatible server "
                        "as that model")
    replay.add_argument("--server-model", metavar="NAME")
    replay.add_argument("--script", metavar="FILE", type=Path, help=argparse.SUPPRESS)
    add_flags(replay, "settle_timeout")
    replay.add_argument("--json", action="store_true", help="print one JSON object per step")
    save = runs_sub.add_parser("save", help="name a replayable run (start it by name from the "
                               "tray's quick command or `runs replay NAME`)")
    save.add_argument("id", help="run id, a unique prefix, or 'last'")
    save.add_argument("name", nargs="?", help="the name (default: the run's task)")
    save.add_argument("--forget", action="store_true", help="remove the name instead")


def load_recording(store: Any, ref: str, *, sets: list[str] = (),  # type: ignore[assignment]
                   allow_unfinished: bool = False, saved: SavedTasks | None = None) -> Recording:
    """The recording `ref` names (run id, prefix, 'last' or saved name), parameters applied."""
    saved = saved or SavedTasks()
    try:
        record = store.load(ref)
    except KeyError:
        run_id = saved.run_id(ref)
        if run_id is None:
            raise
        record = store.load(run_id)
    recording = from_record(record)
    check_replayable(recording, allow_unfinished=allow_unfinished)
    return with_parameters(recording, parse_sets(list(sets)))


def cmd_replay(args: argparse.Namespace) -> int:
    """`deskhand runs replay`."""
    from agent.termtext import visible
    from agent.trajectory import TrajectoryError, TrajectoryStore
    from app.commands.backends import model_spec, open_backend
    from app.commands.run import cmd_run

    try:
        recording = load_recording(TrajectoryStore(), args.id, sets=args.set,
                                   allow_unfinished=args.allow_unfinished)
    except KeyError as exc:
        raise UserError(exc.args[0]) from exc
    except (ReplayRefused, TrajectoryError) as exc:
        raise UserError(str(exc)) from exc
    for problem in recording.problems:
        print(f"deskhand: {visible(problem)}")
    params = task_parameters(recording)
    print(visible(f"replaying run {recording.run_id}: {len(recording.steps)} recorded actions"
                  + (f"; typed from the task: {', '.join(map(repr, params))}" if params else "")))
    fallback = None
    if not (args.no_model or args.dry_run):
        fallback = LazyBackend(lambda: open_backend(model_spec(
            model=args.model, script=args.script, server=args.server,
            server_model=args.server_model)))
    run_args = argparse.Namespace(task=recording.task, dry_run=args.dry_run, server=None,
                                  allow_lan=False, json=args.json)
    options = from_args(args, max_steps=len(recording.steps) + 20)
    backend = ReplayBackend(recording, fallback=fallback)
    code = cmd_run(run_args, backend=backend, options=options,
                   settings={"replay_of": recording.run_id,
                             "substitutions": [list(p) for p in recording.substitutions]})
    print(f"replay: {backend.cursor} of {len(recording.steps)} recorded actions replayed, "
          f"{backend.model_steps} step(s) by the model")
    return code


def cmd_save(args: argparse.Namespace) -> int:
    """`deskhand runs save ID [NAME]` (or `--forget NAME`)."""
    from agent.termtext import visible
    from agent.trajectory import TrajectoryError, TrajectoryStore

    saved = SavedTasks()
    try:
        if args.forget:
            name = args.name or args.id
            if not saved.forget(name):
                raise UserError(f"no saved task {name!r}")
            print(visible(f"forgot {name!r}"))
            return 0
        recording = from_record(TrajectoryStore().load(args.id))
        check_replayable(recording)
        name = saved.save(args.name or recording.task, recording.run_id)
    except KeyError as exc:
        raise UserError(exc.args[0]) from exc
    except (ReplayRefused, TrajectoryError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    print(visible(f"saved {name!r} → run {recording.run_id}"))
    return 0
