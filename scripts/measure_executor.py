"""Median overhead of `Executor.perform()` per action kind: click, type, key chord, scroll.

Usage (from the repository root):
    .venv/bin/python scripts/measure_executor.py

Starts its own Xvfb 1920x1080 and the Qt test window (tests/support/apps/form_app.py) so the input has
a real receiver, then performs each action 20 times (after one warm-up each) and prints the
median wall time spent inside `perform()` minus any deliberate sleep the executor makes (the
one-off wait after assigning a spare keycode for a new non-ASCII character), in milliseconds.
The actions:
- click: `left_click` on the red button;
- type: `type` "Zürich ✓ 12" into the text field (click first, no Enter; 11 characters, two
  of them typed through spare keycodes). The clicks come faster than a double-click, so the
  field selects and replaces its text and ends up holding one copy;
- key: `key` ctrl+shift+k;
- scroll: `scroll` down one page (10 wheel clicks) over the list.
It does not include settling (`Screen.wait_settled`), which the loop measures separately.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.actions import Action, KeyPress, LeftClick, Scroll, TypeText  # noqa: E402
from agent.executor import Executor  # noqa: E402
from agent.geometry import Monitor, ScreenMapping, Size  # noqa: E402
from agent.inputs import typers as typers_module  # noqa: E402

RUNS = 20


class SleepMeter:
    """Wraps time.sleep inside agent.inputs.typers to add up deliberate waits."""

    def __init__(self) -> None:
        self.slept = 0.0
        self._sleep = time.sleep

    def __call__(self, seconds: float) -> None:
        start = time.perf_counter()
        self._sleep(seconds)
        self.slept += time.perf_counter() - start


def settled_state(app, quiet: float = 1.0, limit: float = 20.0) -> dict:
    """The window's state once it stops changing: input is asynchronous, so the window may
    still be working through queued events after the last `perform()` returned."""
    deadline = time.monotonic() + limit
    last, since = app.state(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        state = app.state()
        if state != last:
            last, since = state, time.monotonic()
    return last


def main() -> None:
    from tests.agent.test_integration_desktop import FormApp
    from tests.support.xvfb import xvfb

    # The app window at (0, 0); model space == screen space keeps the targets easy to place.
    mapping = ScreenMapping(Monitor(1, 0, 0, 1920, 1080), Size(1920, 1080), Size(1920, 1080))
    actions: dict[str, Action] = {
        "click": LeftClick((300, 40)),
        "type": TypeText("Zürich ✓ 12", (300, 100), press_enter=False, delete_existing_text=False),
        "key": KeyPress(("ctrl", "shift", "k")),
        "scroll": Scroll(-500, (300, 300)),
    }
    meter = SleepMeter()
    typers_module.time.sleep = meter  # the typers' own module reference (the settle sleeps)
    with tempfile.TemporaryDirectory() as tmp, xvfb(1920, 1080) as display:
        app = FormApp(display, 0, 0, Path(tmp) / "state.json")
        try:
            with Executor(display=display) as executor:
                results = {}
                for name, action in actions.items():
                    executor.perform(action, mapping)  # warm-up (first spare-keycode assignment)
                    samples = []
                    for _ in range(RUNS):
                        meter.slept = 0.0
                        start = time.perf_counter()
                        executor.perform(action, mapping)
                        samples.append(time.perf_counter() - start - meter.slept)
                    results[name] = statistics.median(samples) * 1000
                # Before close() gives the spare keycodes back: the window must have read
                # the keys typed with them while they were still mapped.
                state = settled_state(app)
        finally:
            app.close()
            typers_module.time.sleep = meter._sleep
    print(f"Xvfb 1920x1080, {RUNS} runs per action (+1 warm-up); the window received "
          f"{len(state['clicked'])} clicks and {state['chords']} chords; its field holds {state['text']!r}")
    for name, ms in results.items():
        print(f"median {name:7s} {ms:6.2f} ms")


if __name__ == "__main__":
    main()
