"""Work-arounds for bugs in the Qt binding, each detected at run time rather than assumed.

PySide6 6.12.0's `SignalInstance.emit` returns `True` without taking a reference, so every emit
from Python drops one reference to the `True` singleton; after a few thousand streamed tokens
the interpreter deallocates `True` and aborts ("bool_dealloc"). `emit` below gives the
reference back when (and only when) the probe shows the binding has that bug.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal


class _Probe(QObject):
    ping = Signal()


def _emit_drops_a_reference() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    if lost > 0:  # give back what the probe itself took
        for _ in range(lost):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))
    return lost >= 8


_BROKEN = _emit_drops_a_reference()


def emit(signal: Any, *args: Any) -> None:
    """`signal.emit(*args)`, safe on bindings whose emit leaks a reference to its result."""
    result = signal.emit(*args)
    if _BROKEN and isinstance(result, bool):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(result))


def emitter(signal: Any):
    """A callable that emits `signal` (for callbacks handed to non-Qt code)."""
    return lambda *args: emit(signal, *args)
