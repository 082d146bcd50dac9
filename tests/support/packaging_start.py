"""Start time of the built app: process start to its main window mapped and visible, on Xvfb.

    .venv/bin/python -m tests.support.packaging_start BINARY [RUNS]     prints each time and the median
Each start gets fresh config and data folders (first-run state) and ends before the next one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from tests.support.xvfb import xvfb


def time_to_window(binary: str, display: str, *, timeout: float = 60) -> float:
    """Seconds from starting `binary app` to its window "Deskhand" being visible."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
               "DESKHAND_DATA_DIR": f"{home}/data", "DESKHAND_CONFIG_DIR": f"{home}/config",
               "DESKHAND_CACHE_DIR": f"{home}/cache"}
        start = time.monotonic()
        app = subprocess.Popen([binary, "app", "--no-hotkeys"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            found = subprocess.run(["xdotool", "search", "--sync", "--onlyvisible", "--name", "^Deskhand$"],
                                   env=env, capture_output=True, text=True, timeout=timeout)
            elapsed = time.monotonic() - start
            if found.returncode != 0:
                raise RuntimeError(f"no Deskhand window appeared: {found.stderr}")
            return elapsed
        finally:
            app.terminate()
            try:
                app.wait(15)
            except subprocess.TimeoutExpired:
                app.kill()


def main(argv: list[str]) -> int:
    binary, runs = argv[0], int(argv[1]) if len(argv) > 1 else 5
    with xvfb(1440, 900) as display:
        times = [time_to_window(binary, display) for _ in range(runs)]
    print("start to visible window (s):", " ".join(f"{t:.2f}" for t in times))
    print(f"median of {runs}: {statistics.median(times):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
