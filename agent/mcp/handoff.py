"""Single instance: when the desktop app runs, the MCP server hands tasks to it.

The app listens on a per-user local socket (a 0700 folder, the socket 0600); this module owns
its path and its protocol, JSON lines:

    client -> app  {"op": "run", "task", "monitor", "max_steps", "policy", "caller"}
                   {"op": "stop", "reason"}   {"op": "status"}   {"op": "call", "call"}
                   {"op": "sharing"}  (held open while screenshots are shared with clients)
    app -> client  {"event": "progress", "step", "phase", "text"}
                   {"event": "outcome", "run_id", "status", "answer", "reason", "steps", "elapsed"}
                   {"event": "busy", "message"}   {"event": "status", ...}   {"event": "ok"}

A run's connection closing (the MCP server went away) stops that run in the app. `AutoDesk`
picks the app when its socket answers and the headless `LocalDesk` otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.mcp.desk import Busy, Desk, Outcome, Progress, TaskRequest
from agent.options import DEFAULTS
from agent.safety import StopFlag

SOCKET_NAME = "app.sock"
MAX_LINE = 1 << 20  # a longer line is a broken peer, not a message


def socket_path() -> Path:
    """Where the running app listens (DESKHAND_RUNTIME_DIR, else per config dir, else per user)."""
    override = os.environ.get("DESKHAND_RUNTIME_DIR")
    if override:
        return Path(override) / SOCKET_NAME
    if os.environ.get("DESKHAND_CONFIG_DIR"):  # another config is another Deskhand
        return Path(os.environ["DESKHAND_CONFIG_DIR"]) / "run" / SOCKET_NAME
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path(tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return base / (f"deskhand-{uid}" if not runtime else "deskhand") / SOCKET_NAME


def private_dir(path: Path) -> Path:
    """Create `path` (the socket's folder) as 0700 and refuse one that others could enter."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.lstat()
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or not path.is_dir() or path.is_symlink()):
        raise PermissionError(f"{path} is not a folder of yours")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, ensure_ascii=True) + "\n").encode("ascii")


class Connection:
    """One JSON-lines connection to the app."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path | None = None, timeout: float = 1.0) -> Connection | None:
        """Connect to the running app, or None when no app listens there."""
        path = path or socket_path()
        if not path.exists():
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:  # a stale socket file, or (offline mode on) a connection refused
            sock.close()
            return None
        sock.settimeout(None)
        return cls(sock)

    def alive(self, wait: float) -> bool:
        """False once the app closed the connection (checked for up to `wait` seconds)."""
        readable, _, _ = select.select([self._sock], [], [], wait)
        return not readable or self._sock.recv(4096) != b""  # the app sends nothing here

    def settimeout(self, seconds: float | None) -> None:
        self._sock.settimeout(seconds)

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._sock.sendall(encode(message))

    def receive(self) -> dict[str, Any] | None:
        """The next message, or None when the app closed the connection."""
        line = self._file.readline(MAX_LINE)
        if not line:
            return None
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
            self._sock.close()


def _ask(op: dict[str, Any], path: Path | None, timeout: float = 5.0) -> dict[str, Any] | None:
    conn = Connection.open(path)
    if conn is None:
        return None
    try:
        conn.settimeout(timeout)  # a frozen app must not hang status() or stop_run()
        conn.send(op)
        return conn.receive()
    except OSError:
        return None
    finally:
        conn.close()


class AppDesk:
    """A `Desk` whose runs happen in the running desktop app (window, pill, its confirm dialog)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path

    def available(self) -> bool:
        return _ask({"op": "status"}, self.path) is not None

    def run(self, request: TaskRequest, on_progress: Callable[[Progress], None],
            stop: StopFlag, conn: Connection | None = None) -> Outcome:
        conn = conn or Connection.open(self.path)
        if conn is None:
            raise ConnectionError("the Deskhand app is not running")
        done = threading.Event()

        def forward_stop() -> None:  # the MCP cancel, passed on as the app's stop
            while not done.is_set():
                if stop.wait(0.01):
                    with contextlib.suppress(OSError):
                        conn.send({"op": "stop", "reason": stop.reason})
                    return

        watcher = threading.Thread(target=forward_stop, name="deskhand-mcp-stop", daemon=True)
        try:
            conn.send({"op": "run", "task": request.task, "monitor": request.monitor,
                       "max_steps": request.max_steps, "policy": request.policy,
                       "caller": request.caller})
            watcher.start()
            while True:
                message = conn.receive()
                if message is None:
                    return Outcome("", "error", "", "the Deskhand app closed the connection "
                                   "(it was quit?)", (), 0.0)
                event = message.get("event")
                if event == "progress":
                    on_progress(Progress(int(message.get("step", 0)), str(message.get("phase", "")),
                                         str(message.get("text", ""))))
                elif event == "busy":
                    raise Busy(str(message.get("message", "busy")))
                elif event == "outcome":
                    return Outcome(str(message.get("run_id", "")), str(message.get("status", "error")),
                                   str(message.get("answer", "")), str(message.get("reason", "")),
                                   tuple(str(s) for s in message.get("steps", ())),
                                   float(message.get("elapsed", 0.0)))
        finally:
            done.set()
            conn.close()

    def stop(self, reason: str) -> bool:
        reply = _ask({"op": "stop", "reason": reason}, self.path)
        return bool(reply and reply.get("stopped"))

    def status(self) -> dict[str, Any]:
        reply = _ask({"op": "status"}, self.path) or {"state": "unknown"}
        reply.pop("event", None)
        return reply

    def note_call(self, call: dict[str, Any]) -> None:
        _ask({"op": "call", "call": call}, self.path)


class AutoDesk:
    """The running app when there is one (checked per call), else the headless desk."""

    def __init__(self, local: Desk, app: AppDesk | None = None) -> None:
        self.local, self.app = local, app or AppDesk()
        self.max_steps = getattr(local, "max_steps", DEFAULTS.max_steps)

    def run(self, request: TaskRequest, on_progress: Callable[[Progress], None],
            stop: StopFlag) -> Outcome:
        conn = Connection.open(self.app.path)
        if conn is None:
            return self.local.run(request, on_progress, stop)
        return self.app.run(request, on_progress, stop, conn)

    def stop(self, reason: str) -> bool:
        return self.local.stop(reason) or self.app.stop(reason)

    def status(self) -> dict[str, Any]:
        local = self.local.status()
        if local.get("state") != "idle":
            return local
        return self.app.status() if self.app.available() else local

    def note_call(self, call: dict[str, Any]) -> None:
        self.local.note_call(call)
        if self.local.status().get("state") == "idle":  # a local run: offline mode is on here
            with contextlib.suppress(OSError):
                self.app.note_call(call)


class SharingNotice:
    """While the server shares screenshots, holds a connection that makes the app show it.

    The app shows its warning for as long as such a connection is open; an app started later is
    found within `interval` seconds.
    """

    def __init__(self, path: Path | None = None, interval: float = 2.0) -> None:
        self.path, self.interval = path, interval
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._hold, name="deskhand-mcp-sharing", daemon=True)

    def start(self) -> SharingNotice:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._thread.join(self.interval + 1)

    def _hold(self) -> None:
        while not self._closing.is_set():
            conn = Connection.open(self.path)
            if conn is not None:
                try:
                    conn.send({"op": "sharing"})
                    while not self._closing.is_set() and conn.alive(self.interval):
                        pass
                except OSError:
                    pass
                finally:
                    conn.close()
            self._closing.wait(self.interval)
