"""SVG icons from assets/icons, rendered crisply at any device pixel ratio."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from agent.paths import asset

STATES = ("idle", "running", "waiting", "error")


@cache
def icon(name: str) -> QIcon:
    """The icon assets/icons/<name>.svg (an empty icon if the file is missing)."""
    path = asset("icons", f"{name}.svg")
    return QIcon(str(path)) if path.is_file() else QIcon()


def state_icon(state: str) -> QIcon:
    """The tray icon for a run state: idle, running, waiting (for confirmation) or error."""
    return icon(f"state-{state if state in STATES else 'idle'}")
