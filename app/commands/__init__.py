"""The `deskhand` command line: the program's composition root for the terminal.

It wires the agent core (`agent`) to model management (`models`, for the registry that turns a
model name into a folder), the bench (`app.bench`) and the desktop app (`app.main`), each loaded
lazily and only for the subcommand asked for: `deskhand run` and `deskhand runs` never import
Qt. One module per subcommand:

    run.py      `deskhand run`: step printing, terminal confirmation, Ctrl+C
    runs.py     `deskhand runs list|show|export|delete` (replay.py: `runs replay|save`)
    desktop.py  `deskhand app` and `deskhand monitors`
    backends.py the model flags (--model/--server/--script) -> a backend, through the factory
    eval.py, mcp.py, and the PLUGINS below: the other subcommands
"""

from __future__ import annotations

import argparse
import importlib
import sys

from agent import __version__
from agent.errors import UserError
from agent.termtext import visible
from app.commands import desktop, doctor, runs
from app.commands import run as run_command
from app.commands.backends import resolve_model_folder

EPILOG = """\
commands:
  deskhand                      open the desktop app (same as `deskhand app`)
  deskhand run "TASK"           run one task from the terminal, printing every step
  deskhand runs list|show|export|delete
                                browse recorded runs; export writes one self-contained HTML file
  deskhand runs replay ID|NAME  perform a successful run's actions again, each target checked
                                on screen first (`runs save ID NAME` names a run)
  deskhand models get|list|import|export|verify|download|remove
                                manage on-device models (see `deskhand models --help`)
  deskhand eval run|report      the offline WebVoyager-style evaluation harness
  deskhand bench                per-phase timings of one agent step on this machine
  deskhand monitors             list monitors as the agent sees them
  deskhand doctor [--json]      check this machine before the first task (display, capture,
                                input, CPU, memory, disk, providers, model, offline guard)
  deskhand mcp [--http]         serve Deskhand to other agents (MCP hosts) as a local MCP
                                server; only text goes back (`deskhand mcp --help`)

Runs refuse every non-loopback network connection from this process (verified offline mode)
unless --allow-network is given. Run records live in the user data dir: DESKHAND_DATA_DIR,
else the app's data folder setting, else the platform's.
"""

# Subcommands whose parts may be left out of a build: (name, module, help). Each module has
# `register(subparsers)` and `run(args) -> int`; a module that cannot be imported is left out.
PLUGINS = (
    ("models", "models.cli", "manage on-device models"),
    ("eval", "app.commands.eval", "offline evaluation harness"),
    ("bench", "app.bench", "benchmark one agent step on this machine"),
    ("mcp", "app.commands.mcp", "serve Deskhand to other agents as a local MCP server"),
)

# The subcommands always present: name -> handler of the parsed arguments.
BUILTIN = {"app": desktop.cmd_app, "run": run_command.cmd_run, "runs": runs.cmd_runs,
           "monitors": desktop.cmd_monitors, "doctor": doctor.cmd_doctor}


def build_parser() -> argparse.ArgumentParser:
    """The `deskhand` argument parser, with every subcommand this build has."""
    parser = argparse.ArgumentParser(
        prog="deskhand", description="An on-device computer-use agent: a local vision-language "
        "model looks at your screen and clicks and types until the task is done.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"deskhand {__version__}")
    # `eval` hands this to the harness, which lives in `agent` and may not import the registry.
    parser.set_defaults(resolve_model=resolve_model_folder)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    desktop.register_app(sub)
    run_command.register(sub)
    runs.register(sub)
    desktop.register_monitors(sub)
    doctor.register(sub)
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
    """Run the `deskhand` command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "app"
    try:
        if command in BUILTIN:
            return BUILTIN[command](args)
        for name, module, _help in PLUGINS:
            if command == name:
                return int(importlib.import_module(module).run(args) or 0)
    except UserError as exc:  # may quote a server or a file: shown, never obeyed
        print(f"deskhand: {visible(str(exc))}", file=sys.stderr)
        return 2
    parser.print_help()
    return 2
