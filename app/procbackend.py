"""The model in a child process, so that the GUI process never waits on the interpreter lock.

Image preprocessing, tokenization and the generation loop are Python and numpy work that holds
the GIL between ONNX Runtime calls, and a 7B model's memory traffic slows everything sharing
the process; in a separate process none of it can freeze the GUI thread. Tokens stream
back over a pipe; cancelling returns at once, and the child's late output for that request is
dropped by its request number.

Every screenshot of a run is piped to this process, so it runs under the strictest offline mode
from its first import (see agent/offline_boot.py): its own network namespace and a syscall
filter where the OS allows (agent/sandbox.py), and the Python guard refusing every socket,
loopback included. What the OS layer could do is reported back and shown to the user.

Start (spawn with the offline environment), stop (quit, terminate, kill after a grace period)
and a dead child's typed error come from agent/childproc.py, as for every other child. What
stays here: the duplex pipe with request ids, the checked-JSON protocol, cancelling a
generation through a shared Event (the process lives on), and the /proc check of the sandbox.
"""

from __future__ import annotations

import importlib
import itertools
import json
import multiprocessing as mp
import os
import time
from typing import Any, NoReturn

from agent.childproc import crashed, spawn, stop
from agent.inference.base import Backend, BackendError, Cancel, FinishReason, Generation, Request
from agent.offline_boot import child_environment
from agent.options import Provider

POLL_S = 0.02
ONNX = "agent.inference.onnx:OnnxBackend"
# The child answers in JSON, never pickle: unpickling runs code, and the child is the sealed-off
# side that handles untrusted data (model files, screenshots); the app has the network.
MAX_MESSAGE = 16 << 20
_SHAPES: dict[str, tuple[type, ...]] = {
    "token": (str,), "error": (str,), "ready": (str, str, bool, bool),
    "done": (str, int, int, dict, str, int, int),
}


def _say(conn: Any, kind: str, rid: int, payload: Any) -> None:
    """Child side: one JSON message to the app."""
    conn.send_bytes(json.dumps([kind, rid, payload]).encode())


def _read(data: bytes) -> tuple[str, int, Any]:
    """App side: a message from the child, checked against its expected shape."""
    try:
        kind, rid, payload = json.loads(data)
        shape = _SHAPES[kind]
        if len(shape) > 1 and not isinstance(payload, list):
            raise ValueError(kind)
        values = [payload] if len(shape) == 1 else payload
        if not isinstance(rid, int) or not all(
                isinstance(v, t) and not (t is int and isinstance(v, bool))
                for v, t in zip(values, shape, strict=True)):
            raise ValueError(kind)
        if kind == "done" and not all(isinstance(k, str) and isinstance(v, (int, float))
                                      for k, v in values[3].items()):
            raise ValueError(kind)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise BackendError("the model process sent a message that is not in the protocol") from exc
    return kind, rid, payload


def _isolation() -> list[Any]:
    """What protects this (child) process's network: description and the two OS-layer flags."""
    from agent import offline, sandbox

    guard = "Python guard on" if offline.OfflineGuard.active() else "Python guard OFF"
    state = sandbox.CURRENT
    return [f"{state.describe()}; {guard}", state.network_namespace, state.syscall_filter]


def _verified(claim: list[Any], pid: int) -> str:
    """The child's own description, unless the kernel shows otherwise (then the kernel's)."""
    from agent import sandbox

    text, netns, seccomp = claim
    seen = sandbox.observed(pid)
    if seen is None or seen == (netns, seccomp):
        return text
    return sandbox.Isolation(*seen, detail="checked by the app: the model process reported "
                             "otherwise").describe()


def _serve(conn: Any, cancel: Any, model_dir: str, provider: str, backend_class: str = ONNX) -> None:
    """Child process: load the model, then answer ('generate', id, ...) until ('quit',)."""
    try:
        os.nice(5)  # inference saturates the cores; the desktop and our GUI stay responsive
    except (AttributeError, OSError):
        pass
    from agent.offline import OfflineGuard

    if not OfflineGuard.active():  # the start-up hook did not run (python -I, a frozen build)
        _say(conn, "error", 0, "offline mode could not be set up in the model process, so it "
                               "will not load the model (see agent/offline_boot.py)")
        return
    try:
        module, _, name = backend_class.partition(":")
        backend = getattr(importlib.import_module(module), name)(model_dir, provider=provider)
        # Session set-up (weight prepacking, allocator growth) happens on the first run of each
        # graph: pay it now, while the app is idle, rather than in the user's first step.
        backend.warm_up()
    except Exception as exc:
        _say(conn, "error", 0, str(exc) or type(exc).__name__)
        return
    _say(conn, "ready", 0, [str(getattr(backend, "provider", provider)), *_isolation()])
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the app went away
        if message[0] != "generate":
            return
        _, rid, messages, images, max_new_tokens = message
        try:
            gen = backend.generate(messages, images, max_new_tokens=max_new_tokens,
                                   on_token=lambda piece, rid=rid: _say(conn, "token", rid, piece),
                                   cancel=cancel)
            _say(conn, "done", rid, [gen.text, gen.prompt_tokens, gen.generated_tokens,
                                     dict(gen.timings), gen.finish_reason, gen.cached_tokens,
                                     gen.cached_images])
        except Exception as exc:
            _say(conn, "error", rid, str(exc) or type(exc).__name__)


class ProcessBackend(Backend):
    """A `Backend` whose model lives in a child process (started and loaded on construction).

    The base class checks the images and answers a cancel set before the call here, in the app:
    such a request never reaches the child. The child's own backend checks again (it is a
    `Backend` too); its "total" time, measured there, is the one returned.
    """

    name = "onnx"

    def __init__(self, model_dir: str, provider: str = Provider.AUTO, *, load_timeout: float = 900.0,
                 should_stop: Cancel | None = None, backend_class: str = ONNX) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that runs Qt and threads
        self._conn, child = ctx.Pipe()
        self._cancel = ctx.Event()
        # `backend_class` ("module:Class", built in the child) is the seam for other in-process
        # backends; the offline set-up (strictest, OS layer too) is the same for every one.
        self._proc = spawn(_serve, (child, self._cancel, str(model_dir), str(provider),
                                    backend_class),
                           name="deskhand-model",
                           env=child_environment(strict=True, sandbox=True))
        child.close()
        self._ids = itertools.count(1)
        try:
            kind, _, payload = self._next(0, load_timeout, should_stop)
        except BaseException:  # too slow, broken or gone: no model process is left behind
            self.close()
            raise
        if kind != "ready":
            self.close()
            raise BackendError(payload if kind == "error" else "stopped while the model loaded")
        self.provider = payload[0]
        self.isolation = _verified(payload[1:], self._proc.pid)
        # Shown to the user and saved with each run (see agent/offline.py).
        from agent.offline import note_isolation

        note_isolation("model process", self.isolation)

    def _next(self, rid: int, timeout: float | None, cancel: Cancel | None) -> tuple[str, int, Any]:
        """The next message for request `rid` (others are stale and dropped)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if cancel is not None and cancel.is_set():
                return ("cancelled", rid, None)
            if self._conn.poll(POLL_S):
                try:
                    data = self._conn.recv_bytes(MAX_MESSAGE)
                except (EOFError, OSError):
                    self._died()
                try:
                    kind, got, payload = _read(data)
                except BackendError:
                    self._proc.kill()  # a child that breaks the protocol is not trusted again
                    raise
                if got == rid:
                    return kind, got, payload
            elif not self._proc.is_alive():
                self._died()
            if deadline is not None and time.monotonic() > deadline:
                raise BackendError("the model did not load in time")

    def _died(self) -> NoReturn:
        """Raise the error for a child that is gone, its typed crash (exit code) as the cause."""
        self._proc.join(1)  # the exit code is only known once the child is reaped
        crash = crashed(self._proc.exitcode, "the model process")
        raise BackendError(str(crash)) from crash

    def _generate(self, request: Request) -> Generation:
        rid = next(self._ids)
        self._cancel.clear()
        start = time.perf_counter()
        try:
            self._conn.send(("generate", rid, list(request.messages), list(request.images),
                             request.max_new_tokens))
        except (OSError, ValueError):
            self._died()
        pieces: list[str] = []
        while True:
            kind, _, payload = self._next(rid, None, request.cancel)
            if kind == "token":
                pieces.append(payload)
                request.emit(payload)
            elif kind == "done":
                return Generation(*payload)
            elif kind == "error":
                raise BackendError(payload)
            else:  # cancelled: tell the child, answer now; its late output is dropped
                self._cancel.set()
                return Generation("".join(pieces), 0, len(pieces),
                                  {"decode": time.perf_counter() - start}, FinishReason.CANCELLED)

    def close(self) -> None:
        """Stop the child process: asked to quit, then terminated, then killed."""
        try:
            self._conn.send(("quit", 0, None))
        except (OSError, ValueError):
            pass
        self._proc.join(2)
        stop(self._proc, grace_s=2)
        self._conn.close()
