"""Start the tray on login (Linux, XDG autostart), and the one writer of Deskhand's desktop entry.

No Qt: the Linux packager (packaging/linux/make_packages.py) writes the menu entry of the .deb
and the AppImage with `desktop_entry` too, so the two entries can never disagree.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from agent.atomic import write_text_atomic

FILE_NAME = "deskhand.desktop"
NAME = "Deskhand"
COMMENT = "On-device computer-use agent: a local model clicks and types for you"
TRAY_ARGS = ["app", "--tray"]
_RESERVED = set(' \t\n"\'\\><~|&;$*?#()`=')


def supported() -> bool:
    """XDG autostart is a Linux (and BSD) desktop convention; other systems get it later."""
    return sys.platform.startswith(("linux", "freebsd", "openbsd"))


def quote_exec(argv: list[str]) -> str:
    """`argv` as an Exec value in the file (the spec's two layers: argument quoting, then the
    string escape that doubles every backslash; `%` doubled so it is no field code)."""
    def one(arg: str) -> str:
        if arg and not (set(arg) & _RESERVED):
            return arg
        return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return " ".join(one(a).replace("%", "%%") for a in argv).replace("\\", "\\\\")


def desktop_entry(argv: list[str], *, autostart: bool = False) -> str:
    """The text of deskhand.desktop starting `argv`; `autostart`: the login item, no menu entry."""
    lines = ["[Desktop Entry]", "Type=Application", f"Name={NAME}", f"Comment={COMMENT}",
             f"Exec={quote_exec(argv)}", "Icon=deskhand", "Terminal=false", "Categories=Utility;",
             "StartupWMClass=deskhand", "Keywords=agent;automation;assistant;"]
    if autostart:
        lines += ["NoDisplay=true", "X-GNOME-Autostart-enabled=true"]
    return "\n".join(lines) + "\n"


def autostart_path() -> Path:
    """~/.config/autostart/deskhand.desktop (XDG_CONFIG_HOME moves it)."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    return Path(base) / "autostart" / FILE_NAME


def launch_command() -> list[str]:
    """How this Deskhand is started again: the AppImage file, the bundle, or the venv's script.

    An AppImage runs from a temporary mount, so its own path is only in $APPIMAGE; a bundle's
    binary is sys.executable; from source the console script sits next to the interpreter.
    """
    if os.environ.get("APPIMAGE"):
        return [os.environ["APPIMAGE"]]
    if getattr(sys, "frozen", False):
        return [sys.executable]
    script = Path(sys.executable).with_name("deskhand")
    if script.is_file():
        return [str(script)]
    found = shutil.which("deskhand")
    if found:
        return [found]
    raise OSError(0, "cannot find the deskhand command to start on login")


def autostart_enabled(path: Path | None = None) -> bool:
    """True when the login item exists."""
    return (path or autostart_path()).is_file()


def set_autostart(enabled: bool, path: Path | None = None) -> None:
    """Create or remove the login item that starts the tray (OSError when it cannot)."""
    path = path or autostart_path()
    if not enabled:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, desktop_entry(launch_command() + TRAY_ARGS, autostart=True))
