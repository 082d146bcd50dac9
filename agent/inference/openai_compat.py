"""A Backend that talks to a local OpenAI-compatible server (vLLM, llama.cpp, LM Studio, Ollama).

Screenshots go over the wire, so by default only loopback servers are allowed: the host is
checked when the backend is created and the peer of every connection after connecting
(`agent.inference.localhttp`, which also keeps environment proxies out). The answer is read by
`agent.inference.openai_stream`, the messages converted by `agent.inference.openai_messages`.
Standard library only: no extra needed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from agent.actions import TOOL_CALL_CLOSE
from agent.inference.base import Backend, BackendError, Cancel, FinishReason, Generation, Request
from agent.inference.localhttp import (
    Cancelled,
    Exchange,
    check_loopback_host,
    open_request,
    read_capped,
)
from agent.inference.openai_messages import png_data_url, to_openai_messages
from agent.inference.openai_stream import (
    CHARS_PER_TOKEN,
    MAX_DOCUMENT_BYTES,
    PIECE_SLACK,
    AnswerReader,
    as_object,
    error_text,
    parse_json,
    result,
)

# Re-exported: tests and callers name them from here.
__all__ = ["CHARS_PER_TOKEN", "PIECE_SLACK", "OpenAICompatBackend", "check_loopback_host",
           "png_data_url", "to_openai_messages"]

API_KEY_ENV = "DESKHAND_API_KEY"
_IMAGE_WORDS = re.compile(r"image|vision|multi-?modal|mmproj|limit.mm", re.IGNORECASE)


class OpenAICompatBackend(Backend):
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
            data = as_object(parse_json(read_capped(exchange.response, MAX_DOCUMENT_BYTES)))
        listed = data.get("data")
        models = [m.get("id") for m in (listed if isinstance(listed, list) else [])
                  if isinstance(m, dict)]
        if not models or not models[0]:
            raise BackendError(f"{self.base_url}/models lists no models; pass the model name")
        self.model = str(models[0])
        self.name = f"openai-compat:{self.model}"
        return self.model

    def _generate(self, request: Request) -> Generation:
        """Send the conversation with its screenshots and stream the answer."""
        body = {
            "model": self.model_name(),
            "messages": to_openai_messages(request.messages, request.images),
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0,
            "max_tokens": request.max_new_tokens,
            "stop": [TOOL_CALL_CLOSE],
        }
        if request.cancelled():
            return Generation("", finish_reason=FinishReason.CANCELLED)
        start = time.perf_counter()
        try:
            exchange = self._post_chat(body, request.cancel)
        except Cancelled:
            return result("", 0, None, start, None, FinishReason.CANCELLED)
        with exchange:
            return AnswerReader(self.base_url, self.timeout, request, start).read(exchange.response)

    # --- HTTP -----------------------------------------------------------------------------

    def _post_chat(self, body: dict[str, Any], cancel: Cancel | None) -> Exchange:
        try:
            return self._send("POST", "/chat/completions", body, cancel)
        except _ServerSaid as exc:
            # Older servers reject stream_options; usage is a nicety, so retry without it.
            if exc.status == 400 and "stream_options" in exc.message:
                body = {k: v for k, v in body.items() if k != "stream_options"}
                return self._send("POST", "/chat/completions", body, cancel)
            raise

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None,
              cancel: Cancel | None = None) -> Exchange:
        """Connect (checking the peer), send, and return the answer once its headers arrive."""
        url = self.base_url + path
        headers = {"Accept": "text/event-stream, application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            exchange = open_request(url, method, body=data, headers=headers, timeout=self.timeout,
                                    loopback_only=not self.allow_lan, cancel=cancel)
        except (OSError, http.client.HTTPException) as exc:
            raise self._connect_error(exc, url) from exc
        response = exchange.response
        if response.status >= 300:
            with exchange:
                raw = response.read(65536)
            parsed = parse_json(raw)
            message = (error_text(parsed) if parsed is not None
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


class _ServerSaid(BackendError):
    """An HTTP error answer, keeping the status and server message for retry decisions."""

    def __init__(self, status: int, message: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.message = message
