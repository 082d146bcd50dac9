"""One way to run a child process: typed progress events, cancel, and typed failures.

    result = run_child("models.cli:main", ["export", folder], on_event=show, cancel=flag)

The child runs `target(args) -> int` in a fresh interpreter. Before the target runs, the child
moves its stdout to a private descriptor and points descriptor 1 at stderr, so only
`report_progress` / `send_result` write there; a print, a C library or a grandchild writing to
"stdout" lands in the output tail, never in the event stream. Each event is one line: a
per-run token (in the child's environment, removed before the target runs) and a JSON object
of a fixed shape. Lines without the token are output; a line with the token but the wrong shape
is a broken child, stopped and reported as `ChildProtocolError`.

Cancel (and any exception in the caller, Ctrl+C included) terminates the child's whole process
group, then kills it after `grace_s`. The offline guard reaches the child as it reaches every
child (agent/offline_boot.py): a guarded parent's os.environ carries the start-up hook, and
`env` may add a stricter one.

`spawn`, `stop` and `crashed` are the same start / stop / exit handling for a
multiprocessing child that keeps its own pipe protocol (the model process, app/procbackend.py).
"""

from __future__ import annotations

import atexit
import collections
import json
import math
import multiprocessing as mp
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from agent.offline_boot import environment

if TYPE_CHECKING:  # the cancel flag's one definition (threading.Event and StopFlag fit it)
    from agent.inference.base import Cancel

GRACE_S = 5.0
POLL_S = 0.05
MAX_LINE = 16 << 20  # one event (a bench result is a few KB)
TAIL_LINES = 40
TOKEN_VAR = "DESKHAND_CHILD_EVENTS"
# Children still running: stopped when this interpreter exits (they lead their own process
# group, so nothing else would stop them; a Qt dialog's worker thread is a daemon).
_RUNNING: set[subprocess.Popen] = set()
PATH_VAR = "DESKHAND_CHILD_PATH"
# What the child interpreter runs: the parent's import path, then the child side below.
_BOOT = ("import json, os, sys; sys.path.extend(p for p in json.loads(os.environ.pop("
         f"{PATH_VAR!r}, '[]')) if p not in sys.path); "
         "from agent.childproc import _child_main; sys.exit(_child_main(sys.argv[1], sys.argv[2:]))")


@dataclass(frozen=True)
class Progress:
    """`done` of `total` units of `stage`; `eta_s` is the child's estimate for the stage."""

    stage: str
    done: float
    total: float
    eta_s: float | None = None


@dataclass(frozen=True)
class ChildResult:
    """A child that ran its target to the end with exit code 0."""

    value: Any  # what the child passed to send_result (None if nothing)
    output: str  # the tail of its stdout and stderr


class ChildError(Exception):
    """A child that did not finish its work; `exit_code` is None while it never exited."""

    def __init__(self, message: str, exit_code: int | None = None, output: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.output = output

    def last_line(self) -> str:
        """The child's last line of output (often its own error message)."""
        return _last_line(self.output)


class ChildFailed(ChildError):
    """The target returned a non-zero code or raised (its message is the child's)."""


class ChildCrashed(ChildError):
    """The process ended without finishing its target: a signal, os._exit, a failed start-up."""


class ChildCancelled(ChildError):
    """The caller cancelled; the child was stopped."""


class ChildProtocolError(ChildError):
    """The child wrote a token-bearing line that is not an event; it was stopped."""


# --- the parent side -------------------------------------------------------------------------
def run_child(target: str, args: Sequence[str] = (), *,
              on_event: Callable[[Progress], None] | None = None, cancel: Cancel | None = None,
              grace_s: float = GRACE_S, env: Mapping[str, str] | None = None) -> ChildResult:
    """Run `target` ("module:function", called with `args`) in a child; raise a ChildError."""
    token = secrets.token_hex(16)
    child_env = {**os.environ, **(env or {}), TOKEN_VAR: token,
                 PATH_VAR: json.dumps([p for p in sys.path if p])}
    proc = subprocess.Popen([sys.executable, "-c", _BOOT, target, *args], env=child_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=os.name == "posix")
    _RUNNING.add(proc)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    readers = [threading.Thread(target=_read_events, args=(proc.stdout, token, inbox, tail),
                                daemon=True, name="child-events"),
               threading.Thread(target=_read_output, args=(proc.stderr, tail), daemon=True,
                                name="child-output")]
    for reader in readers:
        reader.start()
    try:
        final = _pump(inbox, on_event, cancel)
        # After the event stream ends the child is exiting; a cancelled or broken one is stopped.
        code = stop(proc, grace_s) if final[0] != "eof" else proc.wait()
    except BaseException:  # an on_event that raised, Ctrl+C: no child outlives its caller
        stop(proc, grace_s)
        raise
    finally:
        _RUNNING.discard(proc)
    for reader in readers:
        reader.join(5)
    return _outcome(final, code, "\n".join(tail))


def _pump(inbox: queue.Queue, on_event: Callable[[Progress], None] | None,
          cancel: Cancel | None) -> tuple[str, Any]:
    """Deliver progress until the stream ends; the last word (exit, error, result...)."""
    last: dict[str, Any] = {}
    while True:
        if cancel is not None and cancel.is_set():
            return ("cancelled", last)
        try:
            kind, payload = inbox.get(timeout=POLL_S)
        except queue.Empty:
            continue
        if kind == "progress":
            if on_event is not None:
                on_event(payload)
        elif kind in ("result", "error", "exit"):
            last[kind] = payload
        else:  # "eof" or "protocol"
            return (kind, last if kind == "eof" else payload)


def _outcome(final: tuple[str, Any], code: int | None, output: str) -> ChildResult:
    kind, info = final
    if kind == "cancelled":
        raise ChildCancelled("cancelled", code, output)
    if kind == "protocol":
        raise ChildProtocolError(f"the child broke the event protocol ({info})", code, output)
    if "exit" not in info or info["exit"] != code:
        raise crashed(code, "the child process", output)
    if code != 0:
        message = info.get("error") or _last_line(output) or "no message"
        raise ChildFailed(f"exit code {code}: {message}", code, output)
    return ChildResult(info.get("result"), output)


def _last_line(output: str) -> str:
    return next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "")


def _read_output(stream: Any, tail: collections.deque[str]) -> None:
    """Keep the last lines of the child's output (stderr, and stdout written as output)."""
    for raw in iter(lambda: stream.readline(MAX_LINE), b""):
        tail.append(raw.decode(errors="replace").rstrip("\n")[:2000])
    stream.close()


def _read_events(stream: Any, token: str, inbox: queue.Queue, tail: collections.deque[str]) -> None:
    """Lines of the event stream: a token-bearing line is an event, any other is output."""
    prefix = token.encode() + b" "
    try:
        for raw in iter(lambda: stream.readline(MAX_LINE + 1), b""):
            if not raw.startswith(prefix):
                tail.append(raw.decode(errors="replace").rstrip("\n")[:2000])
                continue
            try:
                inbox.put(_parse(raw[len(prefix):]))
            except ValueError as exc:
                inbox.put(("protocol", str(exc)))
                return
    finally:
        inbox.put(("eof", None))
        stream.close()


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse(data: bytes) -> tuple[str, Any]:
    """One event record, checked field by field (ValueError for anything else)."""
    if not data.endswith(b"\n"):
        raise ValueError("an event line without its end")
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("an event that is not JSON") from exc
    kind = record.get("event") if isinstance(record, dict) else None
    fields = set(record) - {"event"} if isinstance(record, dict) else set()
    if kind == "progress" and fields == {"stage", "done", "total", "eta_s"} \
            and isinstance(record["stage"], str) and len(record["stage"]) <= 200 \
            and _number(record["done"]) and _number(record["total"]) \
            and (record["eta_s"] is None or _number(record["eta_s"])):
        return kind, Progress(record["stage"], record["done"], record["total"], record["eta_s"])
    if kind == "result" and fields == {"value"}:
        return kind, record["value"]
    if kind == "error" and fields == {"message"} and isinstance(record["message"], str):
        return kind, record["message"]
    if kind == "exit" and fields == {"code"} and isinstance(record["code"], int) \
            and not isinstance(record["code"], bool):
        return kind, record["code"]
    raise ValueError(f"an unknown or malformed event {str(kind)[:40]!r}")


# --- start / stop / exit, shared with multiprocessing children -------------------------------
def spawn(target: Callable[..., Any], args: tuple[Any, ...], *, name: str,
          env: Mapping[str, str]) -> BaseProcess:
    """Start `target(*args)` in a spawned (never forked) daemon child with `env` set at start-up."""
    proc = mp.get_context("spawn").Process(target=target, args=args, name=name, daemon=True)
    with environment(dict(env)):
        proc.start()
    return proc


def stop(proc: subprocess.Popen | BaseProcess, grace_s: float = GRACE_S) -> int | None:
    """Terminate the child (its process group, for run_child's), kill it after `grace_s`."""
    if isinstance(proc, subprocess.Popen):
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))  # grandchildren too
        return proc.wait()
    if proc.is_alive():
        proc.terminate()
        proc.join(grace_s)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return proc.exitcode


@atexit.register
def _stop_running() -> None:
    for proc in list(_RUNNING):
        stop(proc, 1.0)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)  # the child leads its own group (start_new_session)
        elif proc.poll() is None:
            proc.terminate()  # Windows: TerminateProcess, at once
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def crashed(code: int | None, what: str, output: str = "") -> ChildCrashed:
    """The typed error for a child that ended without finishing (`what`: whose process)."""
    hint = " (out of memory?)" if code in (-9, 137) else ""
    return ChildCrashed(f"{what} ended unexpectedly (exit code {code}){hint}", code, output)


# --- the child side --------------------------------------------------------------------------
class _Channel:
    """The child's private event stream (the stdout it was started with)."""

    def __init__(self, fd: int, token: str) -> None:
        self._fd, self._prefix = fd, token.encode() + b" "
        self._lock = threading.Lock()
        self._stages: dict[str, tuple[float, float]] = {}

    def send(self, record: dict[str, Any]) -> None:
        line = self._prefix + json.dumps(record, allow_nan=False).encode() + b"\n"
        with self._lock:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]

    def progress(self, stage: str, done: float, total: float, eta_s: float | None) -> None:
        now = time.monotonic()
        start, first = self._stages.setdefault(stage, (now, done))
        if eta_s is None and done > first and total >= done:
            eta_s = (now - start) / (done - first) * (total - done)
        self.send({"event": "progress", "stage": stage[:200], "done": done, "total": total,
                   "eta_s": eta_s})


_CHANNEL: _Channel | None = None


def in_child() -> bool:
    """Whether this process was started by run_child (its events reach a parent)."""
    return _CHANNEL is not None


def report_progress(stage: str, done: float, total: float, eta_s: float | None = None) -> None:
    """Tell the parent how far `stage` is (no-op outside a run_child child); ETA if not given."""
    if _CHANNEL is not None:
        _CHANNEL.progress(stage, done, total, eta_s)


def send_result(value: Any) -> None:
    """Hand a JSON value back to the parent (ChildResult.value)."""
    if _CHANNEL is None:
        raise RuntimeError("send_result outside a child started by run_child")
    _CHANNEL.send({"event": "result", "value": value})


def _child_main(target: str, args: list[str]) -> int:
    """Child entry: take over stdout, run the target, report how it ended."""
    global _CHANNEL
    token = os.environ.pop(TOKEN_VAR, "")
    sys.stdout.flush()
    events = os.dup(1)  # not inheritable: grandchildren never see the event stream
    os.dup2(2, 1)  # print(), C libraries and grandchildren now write output, not events
    _CHANNEL = _Channel(events, token)
    try:
        module, _, name = target.partition(":")
        code = __import__(module, fromlist=[name]).__dict__[name](args)
        code = code if isinstance(code, int) and not isinstance(code, bool) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # reported to the parent as ChildFailed with this message
        traceback.print_exc()
        _CHANNEL.send({"event": "error", "message": f"{type(exc).__name__}: {exc}"[:4000]})
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    _CHANNEL.send({"event": "exit", "code": code})
    return code
