"""Screen capture with mss: monitors, origins, scale, and waiting for the screen to settle."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from PIL import Image

from agent.geometry import Monitor, Size
from agent.options import DEFAULTS


class ScreenError(RuntimeError):
    """The screen cannot be captured (no display, monitor gone); the message is for users."""


@dataclass(frozen=True)
class Screenshot:
    """One captured monitor: RGB pixels plus where they are on the desktop."""

    image: Image.Image
    monitor: Monitor
    captured_at: float = field(default_factory=time.time)

    @property
    def size(self) -> Size:
        return Size(*self.image.size)

    @cached_property
    def digest(self) -> str:
        """A cheap fingerprint of the pixels (for stall and settle detection), computed once."""
        return frame_digest(self.image)


def frame_digest(image: Image.Image) -> str:
    # A reduced greyscale copy: ignores sub-pixel noise, costs ~1 ms at 1920x1080.
    small = image.convert("L").resize((160, 100), Image.Resampling.BILINEAR)
    return hashlib.blake2b(small.tobytes(), digest_size=12).hexdigest()


class Screen:
    """Captures monitors of the current display with `mss.MSS` (one instance per thread).

    `monitors` overrides what mss reports, as rectangles in desktop pixels: for displays whose
    monitors mss cannot see (an Xvfb screen split in two, a single huge X screen driven by
    several projectors). They are renumbered 1..n in the order given.
    """

    def __init__(self, display: str | None = None, *,
                 monitors: Sequence[Monitor] | None = None) -> None:
        self._display = display
        self._local = threading.local()
        self._override: list[dict[str, int]] | None = None
        if monitors is not None:
            if not monitors:
                raise ValueError("monitors must list at least one monitor")
            regions = [{"left": m.left, "top": m.top, "width": m.width, "height": m.height}
                       for m in monitors]
            if any(r["width"] <= 0 or r["height"] <= 0 for r in regions):
                raise ValueError("every monitor needs a positive width and height")
            left = min(r["left"] for r in regions)
            top = min(r["top"] for r in regions)
            right = max(r["left"] + r["width"] for r in regions)
            bottom = max(r["top"] + r["height"] for r in regions)
            self._override = [{"left": left, "top": top, "width": right - left,
                               "height": bottom - top}, *regions]

    def _regions(self) -> list[dict[str, int]]:
        """Index 0 = all monitors together, then each monitor (mss's convention)."""
        if self._override is not None:
            return self._override
        try:
            return self._mss().monitors
        except ScreenError:
            raise
        except Exception as exc:
            raise ScreenError(f"cannot list the monitors ({exc}); is the display still there?") from exc

    def _mss(self):
        sct = getattr(self._local, "sct", None)
        if sct is None:
            try:
                import mss
            except ImportError as exc:  # pragma: no cover - mss is a core dependency
                raise ScreenError("mss is not installed (pip install deskhand)") from exc
            try:
                kwargs = {"display": self._display} if self._display else {}
                sct = mss.MSS(**kwargs)
            except Exception as exc:
                raise ScreenError(f"cannot open the display ({exc}); is a desktop session "
                                  "running and DISPLAY set?") from exc
            self._local.sct = sct
        return sct

    def monitors(self) -> list[Monitor]:
        """The individual monitors (index 1..n), then index 0 = all monitors together."""
        found = []
        for i, m in enumerate(self._regions()):
            found.append(Monitor(i, int(m["left"]), int(m["top"]), int(m["width"]),
                                 int(m["height"]), 1.0, "all monitors" if i == 0 else f"monitor {i}"))
        return found[1:] + found[:1]

    def monitor(self, index: int) -> Monitor:
        regions = self._regions()
        count = len(regions) - 1
        if not 0 <= index <= count:
            raise ScreenError(f"monitor {index} is not connected (this display has {count} "
                              f"monitor{'s' if count != 1 else ''}; 0 means all of them)")
        m = regions[index]
        return Monitor(index, int(m["left"]), int(m["top"]), int(m["width"]), int(m["height"]))

    def capture(self, index: int = 1) -> Screenshot:
        """Capture one monitor (1..n) or all of them (0)."""
        monitor = self.monitor(index)
        region = {"left": monitor.left, "top": monitor.top,
                  "width": monitor.width, "height": monitor.height}
        try:
            shot = self._mss().grab(region)
        except Exception as exc:
            raise ScreenError(f"capturing monitor {index} failed: {exc}") from exc
        image = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
        # Where the OS reports monitors in logical points (macOS), the capture comes back in
        # physical pixels: the ratio is that monitor's scale, and our Monitor is physical.
        scale = shot.size[0] / monitor.width if monitor.width else 1.0
        if abs(scale - 1.0) > 1e-3:
            monitor = Monitor(index, round(monitor.left * scale), round(monitor.top * scale),
                              shot.size[0], shot.size[1], scale, monitor.name)
        return Screenshot(image, monitor)

    def wait_settled(
        self, index: int = 1, *, timeout: float = DEFAULTS.settle_timeout, interval: float = 0.08,
        stable_frames: int = 2, should_stop: Callable[[], bool] = lambda: False,
    ) -> Screenshot:
        """Return once `stable_frames` consecutive captures are identical, or after `timeout`.

        Replaces fixed sleeps after actions: a static screen returns in ~2 intervals, a page
        still loading is waited for up to the bound.
        """
        deadline = time.monotonic() + timeout
        shot = self.capture(index)
        last, same = shot.digest, 1
        while same < stable_frames and time.monotonic() < deadline and not should_stop():
            time.sleep(interval)
            shot = self.capture(index)
            digest = shot.digest
            same = same + 1 if digest == last else 1
            last = digest
        return shot

    def close(self) -> None:
        sct = getattr(self._local, "sct", None)
        if sct is not None:
            sct.close()
            self._local.sct = None
