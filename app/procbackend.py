"""The model in a child process, so that the GUI process never waits on the interpreter lock.

Image preprocessing, tokenization and the generation loop are Python and numpy work that holds
the GIL between ONNX Runtime calls, and a 7B model's memory traffic slows everything sharing
the process; in a separate process none of it can freeze the GUI thread. Tokens stream
back over a pipe; cancelling returns at once, and the child's late output for that request is
dropped by its request number.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from typing import Any

from PIL import Image

from agent.inference.base import BackendError, Cancel, Generation, Message, TokenCallback

POLL_S = 0.02


def _serve(conn: Any, cancel: Any, model_dir: str, provider: str) -> None:
    """Child process: load the model, then answer ('generate', id, ...) until ('quit',)."""
    try:
        os.nice(5)  # inference saturates the cores; the desktop and our GUI stay responsive
    except (AttributeError, OSError):
        pass
    try:
        from agent.inference.onnx import OnnxBackend

        backend = OnnxBackend(model_dir, provider=provider)
        # Session set-up (weight prepacking, allocator growth) happens on the first run of each
        # graph: pay it now, while the app is idle, rather than in the user's first step.
        backend.warm_up()
    except Exception as exc:
        conn.send(("error", 0, str(exc) or type(exc).__name__))
        return
    conn.send(("ready", 0, getattr(backend, "provider", provider)))
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
                                   on_token=lambda piece, rid=rid: conn.send(("token", rid, piece)),
                                   cancel=cancel)
            conn.send(("done", rid, (gen.text, gen.prompt_tokens, gen.generated_tokens,
                                     dict(gen.timings), gen.finish_reason, gen.cached_tokens,
                                     gen.cached_images)))
        except Exception as exc:
            conn.send(("error", rid, str(exc) or type(exc).__name__))


class ProcessBackend:
    """A `Backend` whose model lives in a child process (started and loaded on construction)."""

    def __init__(self, model_dir: str, provider: str = "auto", *, load_timeout: float = 900.0,
                 should_stop: Cancel | None = None) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that runs Qt and threads
        self._conn, child = ctx.Pipe()
        self._cancel = ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(child, self._cancel, str(model_dir), provider),
                                 name="deskhand-model", daemon=True)
        self._proc.start()
        child.close()
        self._ids = itertools.count(1)
        self.name = "onnx"
        kind, _, payload = self._next(0, load_timeout, should_stop)
        if kind == "error":
            self.close()
            raise BackendError(payload)
        self.provider = payload

    def _next(self, rid: int, timeout: float | None, cancel: Cancel | None) -> tuple[str, int, Any]:
        """The next message for request `rid` (others are stale and dropped)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if cancel is not None and cancel.is_set():
                return ("cancelled", rid, None)
            if self._conn.poll(POLL_S):
                try:
                    kind, got, payload = self._conn.recv()
                except (EOFError, OSError) as exc:
                    raise BackendError(self._death()) from exc
                if got == rid:
                    return kind, got, payload
            elif not self._proc.is_alive():
                raise BackendError(self._death())
            if deadline is not None and time.monotonic() > deadline:
                raise BackendError("the model did not load in time")

    def _death(self) -> str:
        code = self._proc.exitcode
        hint = " (out of memory?)" if code in (-9, 137) else ""
        return f"the model process ended unexpectedly (exit code {code}){hint}"

    def generate(self, messages: Sequence[Message], images: Sequence[Image.Image], *,
                 max_new_tokens: int = 512, on_token: TokenCallback | None = None,
                 cancel: Cancel | None = None) -> Generation:
        rid = next(self._ids)
        self._cancel.clear()
        start = time.perf_counter()
        try:
            self._conn.send(("generate", rid, list(messages), list(images), max_new_tokens))
        except (OSError, ValueError) as exc:
            raise BackendError(self._death()) from exc
        pieces: list[str] = []
        while True:
            kind, _, payload = self._next(rid, None, cancel)
            if kind == "token":
                pieces.append(payload)
                if on_token is not None:
                    on_token(payload)
            elif kind == "done":
                return Generation(*payload)
            elif kind == "error":
                raise BackendError(payload)
            else:  # cancelled: tell the child, answer now; its late output is dropped
                self._cancel.set()
                return Generation("".join(pieces), 0, len(pieces),
                                  {"decode": time.perf_counter() - start}, "cancelled")

    def close(self) -> None:
        """Stop the child process."""
        try:
            self._conn.send(("quit", 0, None))
        except (OSError, ValueError):
            pass
        self._proc.join(2)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(2)
        self._conn.close()
