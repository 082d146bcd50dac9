"""Worker threads hand results to the GUI thread without sharing or freeing any Qt object.

Two ways a background thread crashes a PySide app seconds later, in unrelated code (both seen
as rare segfaults in the GUI tests, after the first-run dialog's download/export tests):
- it emits through a QObject the GUI thread deletes meanwhile (a dialog closed mid-download),
  or it drops the last Python reference to a QObject, so Qt deletes it off its own thread;
- Python's cycle collector runs on whichever thread happens to allocate: a worker thread then
  frees a closed dialog caught in a reference cycle (every widget whose slot is a lambda or a
  bound method of itself) while the GUI thread is using Qt.

So a worker never holds a widget: it gets `to_gui(widget.method)`, a plain callable with only
a weak reference, which posts the call through one mailbox that lives as long as the process;
the GUI thread runs it only if the widget still exists. And the GUI process collects cycles
on the GUI thread only (`collect_on_gui_thread`).
"""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, QTimer, Signal
from shiboken6 import isValid

from app.qtcompat import emit


class _Mailbox(QObject):
    post = Signal(object)  # (WeakMethod, gone Event, args)


_mailbox: _Mailbox | None = None


def _on_gui_thread() -> bool:
    app = QCoreApplication.instance()
    if app is not None:
        return QThread.currentThread() is app.thread()
    return threading.current_thread() is threading.main_thread()


def _box() -> _Mailbox:
    global _mailbox
    if _mailbox is None:
        if not _on_gui_thread():
            raise RuntimeError("to_gui() must first be called on the GUI thread")
        box = _Mailbox()
        # Queued even from the GUI thread itself: every delivery runs from the event loop.
        box.post.connect(_deliver, Qt.ConnectionType.QueuedConnection)
        _mailbox = box  # never deleted: a thread may post to it at any time
    return _mailbox


def _deliver(item: tuple[weakref.WeakMethod, threading.Event, tuple[Any, ...]]) -> None:
    ref, gone, args = item
    method = ref()
    if method is None or gone.is_set() or not isValid(method.__self__):
        return  # the widget was closed meanwhile: the result goes nowhere
    method(*args)


class ToGui:
    """`method(*args)` run later on the GUI thread; callable from any thread, any number of
    times. Holds no strong reference to the method's object."""

    def __init__(self, method: Callable[..., Any]) -> None:
        owner = method.__self__  # a bound method of a QObject
        self._ref = weakref.WeakMethod(method)  # type: ignore[arg-type]
        gone = self._gone = threading.Event()
        owner.destroyed.connect(lambda *_: gone.set())
        _box()

    @property
    def alive(self) -> bool:
        """False once the object is deleted (a worker may stop early then)."""
        return not self._gone.is_set()

    def __call__(self, *args: Any) -> bool:
        """Post the call; False (and nothing posted) when the object is already gone."""
        if self._gone.is_set():
            return False
        emit(_box().post, (self._ref, self._gone, args))
        return True


def to_gui(method: Callable[..., Any]) -> ToGui:
    """Wrap a QObject's bound method for a worker thread (create it on the GUI thread)."""
    return ToGui(method)


class _Collector(QObject):
    """Python's cycle collection, run on the GUI thread only (see the module docstring)."""

    def __init__(self, interval_ms: int) -> None:
        super().__init__(QCoreApplication.instance())
        self._thresholds = gc.get_threshold()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    def check(self) -> None:
        # The interpreter's own rule (a generation is collected once its count passes its
        # threshold), applied here instead of in whichever thread allocates.
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return


def collect_on_gui_thread(interval_ms: int = 500) -> None:
    """Turn off automatic cycle collection in this (GUI) process and collect from a GUI-thread
    timer instead. Call once, on the GUI thread, after the QApplication exists."""
    global _collector
    if not _on_gui_thread() or QCoreApplication.instance() is None:
        raise RuntimeError("collect_on_gui_thread() needs the QApplication's thread")
    if _collector is None:
        gc.disable()
        _collector = _Collector(interval_ms)


_collector: _Collector | None = None
