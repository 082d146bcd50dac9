"""The loaded model, shared by runs and the preload thread, and the one place that loads it.

Plain Python on purpose: worker threads hold it, and no Qt object may be held or freed off the
GUI thread (app/to_gui.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from app.step_estimate import StepEstimate
from app.step_estimate import measure as measure_step

Key = tuple[str, str]  # (model name, provider)


class LoadedModel:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entry: tuple[Key, Any] | None = None  # (key, backend) of the cached model
        self.step_estimate: StepEstimate | None = None  # measured after the model's warm-up

    def builder(self, key: Key, make: Callable[[], Any], *, measure: bool) -> Callable[[], Any]:
        """A function, for a worker thread, that returns the model for `key`: the cached one,
        or a new one from `make()` (cached and timed when `measure`; scripted test backends
        are single-use and are neither)."""
        def build() -> Any:
            with self.lock:
                cached = self.entry
                if cached is not None and cached[0] == key:
                    return cached[1]
                self.close()  # another model or provider: free the old one's memory
                backend = make()
                if measure:
                    # Timed while the lock keeps runs off the model (app/step_estimate.py).
                    self.step_estimate = measure_step(backend)
                    self.entry = (key, backend)
                return backend

        return build

    def close(self) -> None:
        """Unload the cached model."""
        cached, self.entry = self.entry, None
        close = getattr(cached[1], "close", None) if cached is not None else None
        if close is not None:
            close()
