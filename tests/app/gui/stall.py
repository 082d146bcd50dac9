"""Measure the GUI thread's event-loop stalls with a 5 ms QTimer probe."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QTimer

BAR_S = 0.1  # the product bar: no event-loop stall of 100 ms or more during a run


class StallProbe:
    """`with StallProbe() as p: ...` then `p.worst` (seconds) and `p.count`."""

    def __init__(self, interval_ms: int = 5) -> None:
        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self.gaps: list[float] = []
        self.busy: list[float] = []  # GUI-thread CPU seconds spent inside each gap
        self._last = 0.0
        self._cpu = 0.0

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self.gaps.append(now - self._last)
        self.busy.append(cpu - self._cpu)
        self._last, self._cpu = now, cpu

    def __enter__(self) -> StallProbe:
        self._last, self._cpu = time.perf_counter(), time.thread_time()
        self._timer.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._timer.stop()

    @property
    def worst(self) -> float:
        return max(self.gaps[1:], default=0.0)

    @property
    def worst_busy(self) -> float:
        """The most CPU the GUI thread itself spent in one event-loop turn."""
        return max(self.busy[1:], default=0.0)

    @property
    def count(self) -> int:
        return len(self.gaps)


def idle_worst(qtbot, seconds: float) -> float:
    """The longest stall of an idle event loop here and now (the machine's own noise)."""
    with StallProbe() as probe:
        qtbot.wait(int(seconds * 1000))
    return probe.worst


def overloaded() -> bool:
    """More runnable work than cores (another suite running on a shared host)."""
    return os.getloadavg()[0] > (os.cpu_count() or 1)


def check_stall(probe: StallProbe, idle: float) -> None:
    """Our own work on the GUI thread stays far under the bar, always. The wall-clock stall must
    be under the bar too; on an overloaded host, where even an idle loop stalls and a preempted
    worker keeps the GIL, only a gross regression (a blocking call on the GUI thread) is judged."""
    assert probe.worst_busy < BAR_S / 2, f"the GUI thread worked {probe.worst_busy * 1000:.0f} ms"
    limit = BAR_S if not overloaded() else max(1.0, 3 * idle)
    assert probe.worst < limit, (
        f"GUI stall {probe.worst * 1000:.0f} ms during the run (idle loop here: {idle * 1000:.0f} ms, "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def report(label: str, probe: StallProbe, idle: float) -> str:
    return (f"{label}: longest GUI event-loop stall {probe.worst * 1000:.1f} ms over {probe.count} "
            f"probes; most GUI-thread CPU in one turn {probe.worst_busy * 1000:.1f} ms; idle loop "
            f"on this machine {idle * 1000:.1f} ms; load {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores")
