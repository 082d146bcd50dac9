"""`deskhand app` (the default: open the desktop app) and `deskhand monitors`.

The only command module that reaches the Qt part of `app`, and only when `app` is run.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agent.errors import UserError


def register_app(sub: Any) -> None:
    """Add the `app` subcommand to the `deskhand` parser."""
    app = sub.add_parser("app", help="open the desktop app (the default)")
    app.add_argument("--tray", action="store_true", help="start in the system tray, window hidden")
    app.add_argument("--no-hotkeys", action="store_true",
                     help="don't grab the global hotkeys (quick command, stop)")


def register_monitors(sub: Any) -> None:
    """Add the `monitors` subcommand to the `deskhand` parser."""
    sub.add_parser("monitors", help="list monitors as the agent sees them")


def cmd_app(args: argparse.Namespace) -> int:
    """`deskhand app`: the desktop app (PySide6), or a message saying what is missing."""
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


def cmd_monitors(_args: argparse.Namespace | None = None) -> int:
    """`deskhand monitors`: the monitors as the agent numbers them."""
    from agent.screen import Screen, ScreenError

    try:
        monitors = Screen().monitors()
    except ScreenError as exc:
        raise UserError(str(exc)) from exc
    for m in monitors:
        print(f"{m.index}: {m.width}x{m.height} at ({m.left}, {m.top})"
              + ("  (all monitors)" if m.index == 0 else ""))
    return 0
