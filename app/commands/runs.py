"""`deskhand runs list|show|export|delete`: browse the recorded runs in the data dir.

`runs replay` and `runs save` are in replay.py; their parsers are added here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.termtext import visible
from app.commands import replay


def register(sub: Any) -> None:
    """Add the `runs` subcommand and its actions to the `deskhand` parser."""
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
    replay.add_arguments(runs_sub)


def cmd_runs(args: argparse.Namespace) -> int:
    """Dispatch `deskhand runs ACTION`; returns the exit code."""
    from agent.trajectory import TrajectoryError, TrajectoryStore

    store = TrajectoryStore()
    try:
        if args.runs_command == "list":
            return _list(store)
        if args.runs_command == "show":
            return _show(store, args.id)
        if args.runs_command == "export":
            print(store.export_html(args.id, args.output))
            return 0
        if args.runs_command in ("replay", "save"):
            return replay.cmd_replay(args) if args.runs_command == "replay" else replay.cmd_save(args)
        if args.runs_command == "delete":
            print(visible(store.delete(args.id)))
            return 0
    except KeyError as exc:
        raise UserError(exc.args[0]) from exc
    except TrajectoryError as exc:
        raise UserError(str(exc)) from exc
    return 2


def _notes(problems: tuple[str, ...]) -> None:
    for problem in problems:  # damaged records: each said once, the rest still shown
        print(f"deskhand: {visible(problem)}", file=sys.stderr)


def _list(store: Any) -> int:
    listing = store.scan()
    _notes(listing.problems)
    if not listing.runs:
        print("no runs yet")
    for r in listing.runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started))
        print(visible(f"{r.id}  {when}  {r.status:<10} {r.steps:>3} steps  {r.task[:60]}",
                      multiline=False))
    return 0


def _show(store: Any, ref: str) -> int:
    record = store.load(ref)
    _notes(record.problems)
    print(visible(f"{record.info.id}: {record.info.task}\nstatus: {record.info.status}"
                  f" — {record.meta.get('reason', '')}"))
    for s in record.steps:
        print(visible(f"[{s.index + 1}] {s.description or ''}"))
        if s.thoughts:
            print(f"     {visible(s.thoughts)}")
        for line in _offline_lines(list(s.offline_attempts)):
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


def _offline_lines(attempts: Any) -> list[str]:
    """Refused offline-mode attempts of a run record, one line each (bad entries skipped)."""
    lines = []
    for a in attempts if isinstance(attempts, list) else ():
        if isinstance(a, dict):
            lines.append(f"offline mode refused {a.get('operation', '?')} to "
                         f"{a.get('destination', '?')} ({a.get('process', '')})")
    return lines
