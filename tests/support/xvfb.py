"""Start a private Xvfb server for tests that need a real X display."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_display_number(start: int = 90) -> int:
    for n in range(start, start + 400):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    raise RuntimeError("no free X display number")


@contextmanager
def xvfb(width: int = 1440, height: int = 900, depth: int = 24,
         extra_screens: list[tuple[int, int]] | None = None) -> Iterator[str]:
    """Run Xvfb; yield its DISPLAY string (e.g. ':93'). Skips nothing: fails if Xvfb is missing."""
    if shutil.which("Xvfb") is None:
        raise RuntimeError("Xvfb is not installed (apt-get install xvfb; scripts/setup.sh does it)")
    # python-xlib refuses to connect without an Xauthority file, even an empty one.
    xauth = Path.home() / ".Xauthority"
    if not xauth.exists():
        xauth.touch()
    number = _free_display_number()
    display = f":{number}"
    cmd = ["Xvfb", display, "-screen", "0", f"{width}x{height}x{depth}", "-nolisten", "tcp",
           "-ac", "+extension", "RANDR"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket_path = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"Xvfb {display} did not start")
        time.sleep(0.05)
    try:
        yield display
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def display_env(display: str) -> Iterator[None]:
    """Point DISPLAY at `display` for the duration."""
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
