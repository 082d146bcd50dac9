"""A Backend that talks to a local OpenAI-compatible server (vLLM, llama.cpp, LM Studio, Ollama).

Screenshots go over the wire, so by default only loopback servers are allowed: the host is
checked when the backend is created (every address it resolves to must be loopback) and again
on every connection (the peer address of the socket); http.client is used directly, so
environment proxies (http_proxy) never see a screenshot. Standard library only: no extra needed.
"""

from __future__ import annotations

import base64
import http.client
import io
import ipaddress
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from agent.inference.base import (
    BackendError,
    Cancel,
    Generation,
    Message,
    TokenCallback,
    count_images,
)
from agent.inference.chat import neutralize_markers

STOP = "</tool_call>"
OPEN = "<tool_call>"
API_KEY_ENV = "DESKHAND_API_KEY"
_IMAGE_WORDS = re.compile(r"image|vision|multi-?modal|mmproj|limit.mm", re.IGNORECASE)
# What a server may send us, whatever it claims: a hostile or broken `--server` ignores
# max_tokens and could stream forever. Text is capped per requested token (a token is a few
# characters; 32 is generous), the raw stream per token (event JSON around each piece), and
# one SSE line or JSON document outright.
CHARS_PER_TOKEN = 32
BYTES_PER_TOKEN = 2048
MIN_ANSWER_BYTES = 1 << 20
MAX_LINE_BYTES = 1 << 20
MAX_DOCUMENT_BYTES = 8 << 20
PIECE_SLACK = 8  # events beyond max_tokens tolerated before the server counts as runaway


class OpenAICompatBackend:
    """Streams chat completions from `base_url` (e.g. http://127.0.0.1:8000/v1)."""

    def __init__(self, base_url: str, model: str | None = None, *, allow_lan: bool = False,
                 api_key: str | None = None, timeout: float = 300.0) -> None:
        self.base_url = base_url.strip().rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"server URL {base_url!r} must look like http://127.0.0.1:8000/v1")
        self.allow_lan = allow_lan
        if not allow_lan:
            check_loopback_host(parts.hostname)
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self.timeout = timeout
        self.name = f"openai-compat:{model}" if model else "openai-compat"

    def model_name(self) -> str:
        """The model to ask for: the given one, else the first the server lists at /models."""
        if self.model:
            return self.model
        with self._send("GET", "/models") as exchange:
            data = _object(_json(_read_capped(exchange.response, MAX_DOCUMENT_BYTES)))
        listed = data.get("data")
        models = [m.get("id") for m in (listed if isinstance(listed, list) else [])
                  if isinstance(m, dict)]
        if not models or not models[0]:
            raise BackendError(f"{self.base_url}/models lists no models; pass the model name")
        self.model = str(models[0])
        self.name = f"openai-compat:{self.model}"
        return self.model

    def generate(self, messages: Sequence[Message], images: Sequence[Image.Image], *,
                 max_new_tokens: int = 512, on_token: TokenCallback | None = None,
                 cancel: Cancel | None = None) -> Generation:
        """Send the conversation with its screenshots and stream the answer."""
        if count_images(messages) != len(images):
            raise ValueError("messages and images disagree on the number of images")
        body = {
            "model": self.model_name(),
            "messages": to_openai_messages(messages, images),
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0,
            "max_tokens": max_new_tokens,
            "stop": [STOP],
        }
        if cancel is not None and cancel.is_set():
            return Generation("", finish_reason="cancelled")
        start = time.perf_counter()
        try:
            exchange = self._post_chat(body, cancel)
        except _Cancelled:
            return self._result("", 0, None, start, None, "cancelled")
        with exchange:
            limits = _Limits.for_tokens(max_new_tokens)
            if exchange.response.headers.get_content_type() == "application/json":
                return self._whole_answer(exchange.response, start, on_token, limits)
            return self._stream(exchange.response, start, on_token, cancel, limits)

    # --- reading answers ------------------------------------------------------------------

    def _stream(self, response: http.client.HTTPResponse, start: float,
                on_token: TokenCallback | None, cancel: Cancel | None,
                limits: _Limits) -> Generation:
        text, pieces, usage, finish, reasoning = "", 0, None, None, False
        first: float | None = None
        events = self._events(response, limits.bytes)
        while True:
            try:
                event = next(events, None)
            except _Overflow:
                if text.strip():  # keep what came within bounds, as a length-cut answer
                    return self._result(text, pieces, usage, start, first, "length")
                raise
            except BackendError:
                if cancel is not None and cancel.is_set():  # our watcher cut the connection
                    return self._result(text, pieces, usage, start, first, "cancelled")
                raise
            if event is None:
                break
            if cancel is not None and cancel.is_set():
                # Closing the connection (on return) makes vLLM / llama.cpp abort the request.
                return self._result(text, pieces, usage, start, first, "cancelled")
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            choices = event.get("choices")
            for choice in choices if isinstance(choices, list) else []:
                choice = _object(choice)
                delta = _object(choice.get("delta") or choice.get("message"))
                reasoning = reasoning or bool(delta.get("reasoning_content"))
                piece = delta.get("content") or choice.get("text") or ""
                finish = choice.get("finish_reason") or finish
                if not piece or not isinstance(piece, str):
                    continue
                if pieces >= limits.pieces or len(text) >= limits.chars:  # runaway server
                    return self._result(text, pieces, usage, start, first, "length")
                first = first or time.perf_counter()
                # Servers that ignore `stop` keep talking past the call: cut at the first one.
                # Only the tail can complete it (searching all the text each time was quadratic).
                tail = text[len(text) - len(STOP) + 1:] if len(text) >= len(STOP) else text
                cut = (tail + piece).find(STOP)
                if cut != -1:
                    piece = piece[:cut + len(STOP) - len(tail)]
                over = len(text) + len(piece) > limits.chars
                piece = piece[:limits.chars - len(text)]
                text += piece
                pieces += 1
                if on_token is not None and piece:
                    on_token(piece)
                if cut != -1 and not over:
                    return self._result(text, pieces, usage, start, first, "stop")
                if over:
                    return self._result(text, pieces, usage, start, first, "length")
        return self._finish(text, pieces, usage, start, first, finish, reasoning, on_token)

    def _whole_answer(self, response: http.client.HTTPResponse, start: float,
                      on_token: TokenCallback | None, limits: _Limits) -> Generation:
        # Some servers ignore stream=true and answer with one JSON document.
        data = _object(_json(_read_capped(response, min(limits.bytes, MAX_DOCUMENT_BYTES))))
        choices = data.get("choices")
        choice = _object(choices[0] if isinstance(choices, list) and choices else None)
        message = _object(choice.get("message"))
        text = message.get("content") or choice.get("text") or ""
        text = text if isinstance(text, str) else ""
        cut = text.find(STOP)
        text = text[:cut + len(STOP)] if cut != -1 else text
        if len(text) > limits.chars:  # a server past max_tokens: keep the bounded part
            text = text[:limits.chars]
            choice = {**choice, "finish_reason": "length"}
        first = time.perf_counter()
        if text and on_token is not None:
            on_token(text)
        return self._finish(text, 1, _object(data.get("usage")), start, first,
                            choice.get("finish_reason"),
                            bool(message.get("reasoning_content")), on_token)

    def _finish(self, text: str, pieces: int, usage: dict[str, Any] | None, start: float,
                first: float | None, finish: str | None, reasoning: bool,
                on_token: TokenCallback | None) -> Generation:
        if not text.strip():
            hint = ("it sent only reasoning_content: turn off the server's reasoning parser"
                    if reasoning else "check the server's chat template and stop tokens")
            raise BackendError(f"{self.base_url} returned an empty answer "
                               f"(finish_reason={str(finish)[:40]!r}); {hint}")
        reason = "length" if finish == "length" else "stop"
        # The server strips the stop sequence; put it back so the parser sees a closed call.
        if reason == "stop" and text.rfind(OPEN) > text.rfind(STOP):
            text += STOP
            if on_token is not None:
                on_token(STOP)
        return self._result(text, pieces, usage, start, first, reason)

    @staticmethod
    def _result(text: str, pieces: int, usage: dict[str, Any] | None, start: float,
                first: float | None, reason: str) -> Generation:
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

    def _events(self, response: http.client.HTTPResponse,
                max_bytes: int) -> Iterator[dict[str, Any]]:
        """The JSON payloads of a server-sent-events stream, until [DONE] or end of stream.

        At most `max_bytes` in all and MAX_LINE_BYTES per line are read; past that, _Overflow.
        """
        left = max_bytes
        try:
            while raw := response.readline(min(left, MAX_LINE_BYTES) + 1):
                left -= len(raw)
                if left < 0:
                    raise _Overflow(f"{self.base_url} sent more than {max_bytes} bytes for one "
                                    "answer; stopped reading it")
                if len(raw) > MAX_LINE_BYTES:
                    raise _Overflow(f"{self.base_url} sent a line of more than {MAX_LINE_BYTES} "
                                    "bytes; stopped reading it")
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" names
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                event = _json(payload.encode())
                if not isinstance(event, dict):
                    continue
                if event.get("error"):
                    raise BackendError(f"the server reported an error mid-answer: "
                                       f"{_error_text(event)}")
                yield event
        except TimeoutError as exc:
            raise BackendError(f"{self.base_url} stopped sending for {self.timeout:g} s "
                               "in the middle of an answer") from exc
        except (http.client.HTTPException, OSError) as exc:
            raise BackendError(f"the connection to {self.base_url} broke mid-answer ({exc})"
                               ) from exc

    # --- HTTP -----------------------------------------------------------------------------

    def _post_chat(self, body: dict[str, Any], cancel: Cancel | None) -> _Exchange:
        try:
            return self._send("POST", "/chat/completions", body, cancel)
        except _ServerSaid as exc:
            # Older servers reject stream_options; usage is a nicety, so retry without it.
            if exc.status == 400 and "stream_options" in exc.message:
                body = {k: v for k, v in body.items() if k != "stream_options"}
                return self._send("POST", "/chat/completions", body, cancel)
            raise

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None,
              cancel: Cancel | None = None) -> _Exchange:
        """Connect (checking the peer), send, and return the answer once its headers arrive."""
        parts = urlsplit(self.base_url + path)
        url = self.base_url + path
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname or "", parts.port, timeout=self.timeout)
        headers = {"Accept": "text/event-stream, application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        watch = None
        try:
            conn.connect()
            if not self.allow_lan:
                _check_peer(conn.sock)
            if cancel is not None:  # lets a stop interrupt even a long prefill
                watch = _Watch(cancel, conn)
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                         body=data, headers=headers)
            response = conn.getresponse()
        except BaseException as exc:
            if watch is not None:
                watch.stop()
            conn.close()
            if cancel is not None and cancel.is_set():
                raise _Cancelled from exc
            if isinstance(exc, BackendError | KeyboardInterrupt):
                raise
            if isinstance(exc, OSError | http.client.HTTPException):
                raise self._connect_error(exc, url) from exc
            raise
        exchange = _Exchange(conn, response, watch)
        if response.status >= 300:
            with exchange:
                raw = response.read(65536)
            parsed = _json(raw)
            message = (_error_text(parsed) if parsed is not None
                       else raw.decode("utf-8", "replace").strip()[:500]) or response.reason
            # The server's words end up in a dialog or on a terminal: keep them short.
            raise self._http_error(response.status, str(message)[:500], url, path)
        return exchange

    def _http_error(self, status: int, message: str, url: str, path: str) -> BackendError:
        said = f" (server said: {message})" if message else ""
        if status == 404 and path == "/chat/completions" and re.search(
                r"model", message, re.IGNORECASE):
            return _ServerSaid(status, message,
                               f"the server has no model {self.model!r}{said}; "
                               f"see {self.base_url}/models for the names it serves")
        if status == 404:
            if self.base_url.endswith("/v1"):
                other = self.base_url[:-3]
                hint = f"try removing /v1: {other}"
            else:
                hint = f"most servers serve under /v1: try {self.base_url}/v1"
            return _ServerSaid(status, message,
                               f"{url} returned 404 Not Found: the base URL is probably wrong; "
                               f"{hint}")
        if status in (401, 403):
            return _ServerSaid(status, message,
                               f"{url} refused the request ({status}): the server needs an API "
                               f"key; set {API_KEY_ENV} or pass api_key{said}")
        if status in (400, 422) and _IMAGE_WORDS.search(message):
            return _ServerSaid(status, message,
                               "the server or model does not accept these images" + said +
                               ". Deskhand needs a vision model (Fara-7B / Qwen2.5-VL) served "
                               "with image support: llama.cpp needs --mmproj; vLLM may need "
                               "--limit-mm-per-prompt '{\"image\": 3}'")
        if status in (400, 413) and re.search(r"context|too long|too large|max_model_len",
                                              message, re.IGNORECASE):
            return _ServerSaid(status, message,
                               "the prompt (text + screenshots) is too long for the server" + said
                               + "; start it with a larger context (e.g. vLLM --max-model-len)")
        if status >= 500:
            return _ServerSaid(status, message, f"server error {status} from {url}{said}")
        return _ServerSaid(status, message, f"{url} rejected the request ({status}){said}")

    def _connect_error(self, reason: BaseException, url: str) -> BackendError:
        if isinstance(reason, TimeoutError):
            return BackendError(f"no answer from {url} within {self.timeout:g} s; the server "
                                "may be overloaded or still loading the model")
        if type(reason).__name__ == "OfflineViolation":
            return BackendError(f"offline mode blocked the connection to {url} ({reason})")
        if isinstance(reason, ConnectionRefusedError):
            return BackendError(
                f"nothing is listening at {self.base_url} (connection refused): start the model "
                "server first, e.g. `vllm serve microsoft/Fara-7B --port 8000`, or fix the port")
        if isinstance(reason, socket.gaierror):
            return BackendError(f"cannot resolve the host of {url} ({reason})")
        return BackendError(f"cannot talk to {url}: {reason}")


@dataclass
class _Exchange:
    """One HTTP request in flight; closing it closes the socket (servers then stop generating)."""

    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    watch: _Watch | None

    def __enter__(self) -> _Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.watch is not None:
            self.watch.stop()
        self.response.close()
        self.conn.close()


class _Watch:
    """Polls a Cancel flag from a helper thread and shuts the socket down when it is set.

    Reading a socket blocks (during prefill, for minutes on a CPU server); shutting it down
    from another thread is what makes the blocked read return at once.
    """

    def __init__(self, cancel: Cancel, conn: http.client.HTTPConnection) -> None:
        self._cancel = cancel
        self._conn = conn
        self._done = threading.Event()
        threading.Thread(target=self._run, name="openai-compat-cancel", daemon=True).start()

    def _run(self) -> None:
        while not self._done.wait(0.05):
            if self._cancel.is_set():
                sock = self._conn.sock
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

    def stop(self) -> None:
        self._done.set()


class _Cancelled(Exception):
    """Generation was cancelled before the answer started."""


class _Overflow(BackendError):
    """The server sent more than an answer may hold (see CHARS_PER_TOKEN and friends)."""


@dataclass(frozen=True)
class _Limits:
    """The most one answer may hold: characters of text, content events, raw bytes."""

    chars: int
    pieces: int
    bytes: int

    @classmethod
    def for_tokens(cls, max_new_tokens: int) -> _Limits:
        tokens = max(1, max_new_tokens)
        return cls(chars=CHARS_PER_TOKEN * tokens, pieces=tokens + PIECE_SLACK,
                   bytes=max(MIN_ANSWER_BYTES, BYTES_PER_TOKEN * tokens))


class _ServerSaid(BackendError):
    """An HTTP error answer, keeping the status and server message for retry decisions."""

    def __init__(self, status: int, message: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.message = message


def check_loopback_host(host: str) -> None:
    """Raise BackendError unless every address `host` stands for is loopback."""
    bare = host.strip("[]")
    try:
        addresses = [ipaddress.ip_address(bare.split("%")[0])]
    except ValueError:
        try:  # a name: resolve it (localhost through /etc/hosts) and check every answer
            infos = socket.getaddrinfo(bare, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise BackendError(f"cannot resolve the server host {host!r} ({exc})") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    bad = [str(a) for a in addresses if not a.is_loopback]
    if bad or not addresses:
        raise BackendError(
            f"refusing to send screenshots to {host} ({', '.join(bad) or 'no address'}): it is "
            "not this machine. Use a server on 127.0.0.1 / localhost, or allow LAN servers "
            "explicitly (allow_lan=True) if you trust that network")


def _check_peer(sock: socket.socket | None) -> None:
    if sock is None:
        return
    peer = sock.getpeername()
    host = peer[0] if isinstance(peer, tuple) else ""
    if isinstance(peer, tuple) and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
        sock.close()
        raise BackendError(f"refusing to talk to {host}: the server host no longer resolves "
                           "to this machine")


def to_openai_messages(messages: Sequence[Message], images: Sequence[Image.Image]
                       ) -> list[dict[str, Any]]:
    """Deskhand chat messages -> OpenAI ones, each {"type": "image"} replaced by a data URL.

    The server renders its own template and tokenizer over the text, out of our reach; what we
    can guarantee is that no text we send spells a special token: markers such as
    `<|im_end|>` or `<|image_pad|>` are broken by a zero-width space (`neutralize_markers`), after
    adjacent text parts are joined, so that no marker is completed across two parts.
    """
    pending = iter(images)
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts: list[dict[str, Any]] = []
            for part in content:
                if part.get("type") == "image":
                    parts.append({"type": "image_url",
                                  "image_url": {"url": png_data_url(next(pending))}})
                elif parts and parts[-1]["type"] == "text":
                    parts[-1]["text"] += str(part.get("text", ""))
                else:
                    parts.append({"type": "text", "text": str(part.get("text", ""))})
            for p in parts:
                if p["type"] == "text":
                    p["text"] = neutralize_markers(p["text"])
            # Text-only content as a plain string: some servers accept lists only for users.
            text_only = all(p["type"] == "text" for p in parts)
            content = "".join(p["text"] for p in parts) if text_only else parts
        elif isinstance(content, str):
            content = neutralize_markers(content)
        out.append({"role": message["role"], "content": content})
    return out


def png_data_url(image: Image.Image) -> str:
    """A base64 PNG data URL (lossless: the model must see the pixels we measured against)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # level 1: far faster, slightly larger
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _object(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else an empty one (server output is never trusted)."""
    return value if isinstance(value, dict) else {}


def _count(value: Any, default: int) -> int:
    """A token count from a server's usage, or `default` when it is not a plain number."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok else default


def _read_capped(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, or BackendError when it is longer than `limit` bytes."""
    raw = response.read(limit + 1)
    if len(raw) > limit:
        raise BackendError(f"the server's answer is longer than {limit} bytes; refused")
    return raw


def _error_text(data: Any) -> str:
    """The human part of an OpenAI-style error body."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error", data)
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or "")
    return str(error or data.get("detail") or data.get("message") or "")
