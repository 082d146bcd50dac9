"""The app's end of the MCP hand-off: tasks from `deskhand mcp` run here, where the person sees them.

The app listens on the per-user local socket of `agent.mcp.handoff` (QLocalServer: Qt's own
sockets, so the offline guard, which watches Python's, never cuts the channel mid-run). A task
starts like a quick command (the window collapses to the status pill with its Stop button, the
app's confirmation dialog asks the person); progress and the outcome go back as JSON lines. The
connection closing (the MCP server or its client went away) stops the run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from agent.loop import RunResult
from agent.mcp.desk import POLICIES, WAITING, busy_message, step_line
from agent.mcp.handoff import MAX_LINE, encode, private_dir, socket_path
from agent.options import POLICIES as ALL_POLICIES
from agent.options import ConfirmPolicy
from app.controller import RunController
from app.model_choice import model_name
from app.qtcompat import emit

_STRICTNESS = ALL_POLICIES  # a client may make the gate stricter than the setting, never laxer


class _Client(QObject):
    """One connection from an MCP server process."""

    def __init__(self, hub: McpHandoff, sock: QLocalSocket) -> None:
        super().__init__(hub)
        self.hub, self.sock = hub, sock
        self._buffer = b""
        self.owns_run = False
        self.lines: list[str] = []
        sock.readyRead.connect(self._read)
        sock.disconnected.connect(self._gone)

    def send(self, message: dict[str, Any]) -> None:
        if self.sock.state() == QLocalSocket.LocalSocketState.ConnectedState:
            self.sock.write(encode(message))
            self.sock.flush()

    def _read(self) -> None:
        self._buffer += bytes(self.sock.readAll().data())
        if len(self._buffer) > MAX_LINE:
            self.sock.abort()  # not a Deskhand MCP server
            return
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                self.hub.handle(self, message)

    def _gone(self) -> None:
        self.hub.client_gone(self)
        self.deleteLater()


class McpHandoff(QObject):
    """Carries out MCP-delegated runs through the app's `RunController`."""

    sharing_changed = Signal(bool)  # an MCP server that shares screenshots is (no longer) connected

    def __init__(self, controller: RunController, path: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.path = path or socket_path()
        self.server = QLocalServer(self)
        self.server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self.server.newConnection.connect(self._accept)
        self.owner: _Client | None = None
        self.sharing: set[_Client] = set()
        self.origin: dict[str, Any] | None = None
        self.error = ""
        c = controller
        c.step.connect(self._on_step)
        c.phase.connect(self._on_phase)
        c.state_changed.connect(self._on_state)
        c.run_finished.connect(self._on_finished)
        c.failed.connect(self._on_failed)

    def listen(self) -> bool:
        """Start listening; False (with `error`) when another app already listens or it fails."""
        try:
            private_dir(self.path.parent)
        except OSError as exc:
            self.error = f"the MCP hand-off socket folder is unusable: {exc}"
            return False
        probe = QLocalSocket()
        probe.connectToServer(str(self.path))
        if probe.waitForConnected(200):
            probe.abort()
            self.error = "another Deskhand app already takes MCP tasks"
            return False
        QLocalServer.removeServer(str(self.path))  # a stale socket left by a crash
        if not self.server.listen(str(self.path)):
            self.error = self.server.errorString()
            return False
        os.chmod(self.path, 0o600)
        return True

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        while self.server.hasPendingConnections():
            _Client(self, self.server.nextPendingConnection())

    # --- requests ----------------------------------------------------------------------------
    def handle(self, client: _Client, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "status":
            client.send({"event": "status", **self.status()})
        elif op == "stop":
            stopped = self.controller.running
            self.controller.stop(str(message.get("reason") or "stopped by an MCP client"))
            client.send({"event": "ok", "stopped": stopped})
        elif op == "call":
            if self.origin is not None and isinstance(message.get("call"), dict):
                self.origin["calls"].append(message["call"])
            client.send({"event": "ok"})
        elif op == "run":
            self._start(client, message)
        elif op == "sharing" and client not in self.sharing:
            self.sharing.add(client)
            if len(self.sharing) == 1:
                emit(self.sharing_changed, True)

    def status(self) -> dict[str, Any]:
        c = self.controller
        state = {"paused": "running"}.get(c.state, c.state) if c.running else "idle"
        info: dict[str, Any] = {"state": state, "model": model_name(c.settings) or None,
                                "model_loaded": c._backend_cache is not None,
                                "seconds_per_step": None, "runs_in": "the Deskhand app"}
        info["screenshots_shared"] = bool(self.sharing)
        if c.running:
            info["run"] = {"id": c.run_id or "", "step": c._steps, "mcp": self.origin is not None}
        return info

    def _start(self, client: _Client, message: dict[str, Any]) -> None:
        c = self.controller
        if c.running or self.owner is not None:
            client.send({"event": "busy", "message": busy_message(c.run_id or "", "the current task")})
            return
        s = c.settings
        requested = str(message.get("policy", ConfirmPolicy.RISKY.value))
        policy = max(s.policy, requested if requested in POLICIES else ConfirmPolicy.RISKY.value,
                     key=lambda p: _STRICTNESS.index(p) if p in _STRICTNESS else 1)
        overrides: dict[str, Any] = {"policy": policy}
        if isinstance(message.get("monitor"), int):
            overrides["monitor"] = message["monitor"]
        if isinstance(message.get("max_steps"), int) and message["max_steps"] >= 1:
            overrides["max_steps"] = min(message["max_steps"], s.max_steps)
        caller = message.get("caller") if isinstance(message.get("caller"), dict) else {}
        self.origin = dict(caller, calls=[dict(caller, tool="run_task")])
        self.owner, client.owns_run, client.lines = client, True, []
        self.error = ""
        if not c.start(str(message.get("task", "")), collapse=True, overrides=overrides,
                       origin=self.origin):
            self.owner, self.origin, client.owns_run = None, None, False
            client.send({"event": "outcome", "run_id": "", "status": "error", "answer": "",
                         "reason": self.error or "the run could not start", "steps": [],
                         "elapsed": 0.0})
            return
        client.send({"event": "progress", "step": 0, "phase": "started",
                     "text": "the task runs in the Deskhand app (the person can see and stop it)"})

    def client_gone(self, client: _Client) -> None:
        if client in self.sharing:
            self.sharing.discard(client)
            if not self.sharing:
                emit(self.sharing_changed, False)
        if client is self.owner and self.controller.running:
            self.controller.stop("stopped: the MCP client went away")
        if client is self.owner:
            self.owner = None

    # --- the controller's signals, forwarded to the owning client -----------------------------
    def _on_step(self, view: Any) -> None:
        if self.owner is not None:
            line = step_line(view.step)
            self.owner.lines.append(line)
            self.owner.send({"event": "progress", "step": view.step.index + 1, "phase": "acted",
                             "text": line})

    def _on_phase(self, phase: str) -> None:
        if self.owner is not None and phase == "generate":
            n = self.controller._steps + 1
            self.owner.send({"event": "progress", "step": n, "phase": "thinking",
                             "text": f"step {n}: the local model is looking at the screen and deciding"})

    def _on_state(self, state: str) -> None:
        if self.owner is not None and state == "waiting":
            self.owner.send({"event": "progress", "step": self.controller._steps + 1,
                             "phase": "waiting", "text": WAITING})

    def _on_failed(self, message: str) -> None:
        self.error = message

    def _on_finished(self, result: RunResult) -> None:
        owner, self.owner, self.origin = self.owner, None, None
        if owner is None:
            return
        owner.owns_run = False
        owner.send({"event": "outcome", "run_id": self.controller.run_id or "",
                    "status": result.status.value, "answer": result.answer,
                    "reason": result.reason, "steps": owner.lines,
                    "elapsed": round(result.elapsed, 3), "finished": time.time()})
