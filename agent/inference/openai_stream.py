"""Reading one chat-completions answer: a server-sent-events stream or one JSON document, bounded.

What a server may send us, whatever it claims: a hostile or broken `--server` ignores
max_tokens and could stream forever. Text is capped per requested token (a token is a few
characters; 32 is generous), the raw stream per token (event JSON around each piece), and
one SSE line or JSON document outright.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agent.actions import TOOL_CALL_CLOSE as STOP
from agent.actions import TOOL_CALL_OPEN as OPEN
from agent.inference.base import BackendError, FinishReason, Generation, Request
from agent.inference.localhttp import read_capped

CHARS_PER_TOKEN = 32
BYTES_PER_TOKEN = 2048
MIN_ANSWER_BYTES = 1 << 20
MAX_LINE_BYTES = 1 << 20
MAX_DOCUMENT_BYTES = 8 << 20
PIECE_SLACK = 8  # events beyond max_tokens tolerated before the server counts as runaway


class Overflow(BackendError):
    """The server sent more than an answer may hold (see CHARS_PER_TOKEN and friends)."""


@dataclass(frozen=True)
class Limits:
    """The most one answer may hold: characters of text, content events, raw bytes."""

    chars: int
    pieces: int
    bytes: int

    @classmethod
    def for_tokens(cls, max_new_tokens: int) -> Limits:
        tokens = max(1, max_new_tokens)
        return cls(chars=CHARS_PER_TOKEN * tokens, pieces=tokens + PIECE_SLACK,
                   bytes=max(MIN_ANSWER_BYTES, BYTES_PER_TOKEN * tokens))


class AnswerReader:
    """Turns one HTTP answer from `base_url` into a Generation, streaming to `request.emit`."""

    def __init__(self, base_url: str, timeout: float, request: Request, start: float) -> None:
        self.base_url, self.timeout, self.request, self.start = base_url, timeout, request, start
        self.limits = Limits.for_tokens(request.max_new_tokens)

    def read(self, response: http.client.HTTPResponse) -> Generation:
        """The answer, whichever form the server chose."""
        if response.headers.get_content_type() == "application/json":
            return self._whole_answer(response)
        return self._stream(response)

    def _stream(self, response: http.client.HTTPResponse) -> Generation:
        text, pieces, usage, finish, reasoning = "", 0, None, None, False
        first: float | None = None
        limits, request = self.limits, self.request
        events = self._events(response)
        while True:
            try:
                event = next(events, None)
            except Overflow:
                if text.strip():  # keep what came within bounds, as a length-cut answer
                    return self._result(text, pieces, usage, first, FinishReason.LENGTH)
                raise
            except BackendError:
                if request.cancelled():  # our watcher cut the connection
                    return self._result(text, pieces, usage, first, FinishReason.CANCELLED)
                raise
            if event is None:
                break
            if request.cancelled():
                # Closing the connection (on return) makes vLLM / llama.cpp abort the request.
                return self._result(text, pieces, usage, first, FinishReason.CANCELLED)
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            choices = event.get("choices")
            for choice in choices if isinstance(choices, list) else []:
                choice = as_object(choice)
                delta = as_object(choice.get("delta") or choice.get("message"))
                reasoning = reasoning or bool(delta.get("reasoning_content"))
                piece = delta.get("content") or choice.get("text") or ""
                finish = choice.get("finish_reason") or finish
                if not piece or not isinstance(piece, str):
                    continue
                if pieces >= limits.pieces or len(text) >= limits.chars:  # runaway server
                    return self._result(text, pieces, usage, first, FinishReason.LENGTH)
                first = first or time.perf_counter()
                piece, closed = _cut_at_stop(text, piece)
                over = len(text) + len(piece) > limits.chars
                piece = piece[:limits.chars - len(text)]
                text += piece
                pieces += 1
                request.emit(piece)
                if closed and not over:
                    return self._result(text, pieces, usage, first, FinishReason.STOP)
                if over:
                    return self._result(text, pieces, usage, first, FinishReason.LENGTH)
        return self._finish(text, pieces, usage, first, finish, reasoning)

    def _whole_answer(self, response: http.client.HTTPResponse) -> Generation:
        # Some servers ignore stream=true and answer with one JSON document.
        limits = self.limits
        data = as_object(parse_json(read_capped(response, min(limits.bytes, MAX_DOCUMENT_BYTES))))
        choices = data.get("choices")
        choice = as_object(choices[0] if isinstance(choices, list) and choices else None)
        message = as_object(choice.get("message"))
        text = message.get("content") or choice.get("text") or ""
        text = text if isinstance(text, str) else ""
        cut = text.find(STOP)
        text = text[:cut + len(STOP)] if cut != -1 else text
        if len(text) > limits.chars:  # a server past max_tokens: keep the bounded part
            text = text[:limits.chars]
            choice = {**choice, "finish_reason": "length"}
        first = time.perf_counter()
        self.request.emit(text)
        return self._finish(text, 1, as_object(data.get("usage")), first,
                            choice.get("finish_reason"), bool(message.get("reasoning_content")))

    def _finish(self, text: str, pieces: int, usage: dict[str, Any] | None,
                first: float | None, finish: str | None, reasoning: bool) -> Generation:
        if not text.strip():
            hint = ("it sent only reasoning_content: turn off the server's reasoning parser"
                    if reasoning else "check the server's chat template and stop tokens")
            raise BackendError(f"{self.base_url} returned an empty answer "
                               f"(finish_reason={str(finish)[:40]!r}); {hint}")
        reason = FinishReason.LENGTH if finish == "length" else FinishReason.STOP
        # The server strips the stop sequence; put it back so the parser sees a closed call.
        if reason == FinishReason.STOP and text.rfind(OPEN) > text.rfind(STOP):
            text += STOP
            self.request.emit(STOP)
        return self._result(text, pieces, usage, first, reason)

    def _result(self, text: str, pieces: int, usage: dict[str, Any] | None,
                first: float | None, reason: FinishReason) -> Generation:
        return result(text, pieces, usage, self.start, first, reason)

    def _events(self, response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
        """The JSON payloads of a server-sent-events stream, until [DONE] or end of stream.

        At most `limits.bytes` in all and MAX_LINE_BYTES per line are read; past that, Overflow.
        """
        max_bytes = left = self.limits.bytes
        try:
            while raw := response.readline(min(left, MAX_LINE_BYTES) + 1):
                left -= len(raw)
                if left < 0:
                    raise Overflow(f"{self.base_url} sent more than {max_bytes} bytes for one "
                                   "answer; stopped reading it")
                if len(raw) > MAX_LINE_BYTES:
                    raise Overflow(f"{self.base_url} sent a line of more than {MAX_LINE_BYTES} "
                                   "bytes; stopped reading it")
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" names
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                event = parse_json(payload.encode())
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise BackendError(f"the server reported an error mid-answer: "
                                       f"{error_text(event)}")
                yield event
        except TimeoutError as exc:
            raise BackendError(f"{self.base_url} stopped sending for {self.timeout:g} s "
                               "in the middle of an answer") from exc
        except (http.client.HTTPException, OSError) as exc:
            raise BackendError(f"the connection to {self.base_url} broke mid-answer ({exc})"
                               ) from exc


def _cut_at_stop(text: str, piece: str) -> tuple[str, bool]:
    """`piece` up to the end of the first tool call it completes, and whether it did.

    Servers that ignore `stop` keep talking past the call. Only the tail of `text` can complete
    it (searching all the text each time was quadratic).
    """
    tail = text[len(text) - len(STOP) + 1:] if len(text) >= len(STOP) else text
    cut = (tail + piece).find(STOP)
    if cut == -1:
        return piece, False
    return piece[:cut + len(STOP) - len(tail)], True


def result(text: str, pieces: int, usage: dict[str, Any] | None, start: float,
           first: float | None, reason: FinishReason) -> Generation:
    """A Generation with the server's token counts (when sane) and what timing we can see."""
    end = time.perf_counter()
    first = first or end
    usage = usage or {}
    return Generation(
        text,
        prompt_tokens=_count(usage.get("prompt_tokens"), 0),
        generated_tokens=_count(usage.get("completion_tokens"), pieces),
        # The server does vision + prefill before the first token; we can only see the sum.
        timings={"prefill": first - start, "decode": end - first},
        finish_reason=reason,
    )


def parse_json(raw: bytes) -> Any:
    """The JSON value in `raw`, or None."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def as_object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (server output is never trusted)."""
    return value if isinstance(value, dict) else {}


def _count(value: Any, default: int) -> int:
    """A token count from a server's usage, or `default` when it is not a plain number."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok else default


def error_text(data: Any) -> str:
    """The human part of an OpenAI-style error body."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error", data)
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or "")
    return str(error or data.get("detail") or data.get("message") or "")
