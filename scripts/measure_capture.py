"""Median time to capture one 1920x1080 monitor and resize it to the model's image size.

Usage (from the repository root):
    .venv/bin/python scripts/measure_capture.py              # starts its own Xvfb 1920x1080
    .venv/bin/python scripts/measure_capture.py --display :0 # measure a running desktop instead

What is timed, 20 times after one warm-up capture, exactly as the loop does it each step:
- capture: `Screen.capture(1)` (mss grab + conversion to an RGB PIL image);
- resize: `image.resize(model_size, BICUBIC)` to `model_size_for(screenshot)` (1484x840 for
  1920x1080 under the default ~1.28 Mpx budget);
- digest: `frame_digest(image)` (what `wait_settled` pays per frame).
Prints the median of each and of capture + resize, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from agent.geometry import model_size_for
from agent.screen import Screen, frame_digest


def measure(display: str, runs: int) -> dict[str, float]:
    """Median milliseconds per phase over `runs` captures of monitor 1."""
    screen = Screen(display)
    try:
        screen.capture(1)  # warm-up: opens the connection, allocates buffers
        times: dict[str, list[float]] = {"capture": [], "resize": [], "capture+resize": [], "digest": []}
        for _ in range(runs):
            t0 = time.perf_counter()
            shot = screen.capture(1)
            t1 = time.perf_counter()
            size = model_size_for(shot.size)
            shot.image.resize((size.width, size.height), Image.Resampling.BICUBIC)
            t2 = time.perf_counter()
            frame_digest(shot.image)
            t3 = time.perf_counter()
            times["capture"].append(t1 - t0)
            times["resize"].append(t2 - t1)
            times["capture+resize"].append(t2 - t0)
            times["digest"].append(t3 - t2)
        print(f"screen {shot.size} -> model image {size}, {runs} runs")
        return {k: statistics.median(v) * 1000 for k, v in times.items()}
    finally:
        screen.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--display", help="an existing X display (default: start Xvfb 1920x1080)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.display:
        context = nullcontext(args.display)
    else:
        from tests.support.xvfb import xvfb

        context = xvfb(1920, 1080)
    with context as display:
        for name, ms in measure(display, args.runs).items():
            print(f"median {name:15s} {ms:7.1f} ms")


if __name__ == "__main__":
    main()
