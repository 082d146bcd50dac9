"""OpenAICompatBackend against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from agent.inference.base import Backend, BackendError
from agent.inference.openai_compat import OpenAICompatBackend

CALL = '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [1, 2]}}\n'
Script = Callable[["Handler", dict[str, Any]], None]


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, dict(self.headers), None))
        if self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{"id": "fara-7b"}, {"id": "other"}]})
        else:
            self.send_json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(("POST", self.path, dict(self.headers), body))
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"detail": "Not Found"})
            return
        self.server.script(self, body)

    def send_json(self, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

    def event(self, data: Any) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        self.wfile.write(f"data: {payload}\n\n".encode())
        self.wfile.flush()


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def stream(pieces: list[str], finish: str = "stop", usage: dict[str, int] | None = None,
           between: Callable[[int], None] | None = None) -> Script:
    """A script that streams `pieces`, like a server that stripped the stop sequence."""

    def script(handler: Handler, body: dict[str, Any]) -> None:
        handler.start_stream()
        for i, piece in enumerate(pieces):
            handler.event(delta(piece))
            if between:
                between(i)
        handler.event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if usage:
            handler.event({"choices": [], "usage": usage})
        handler.event("[DONE]")

    return script


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.script: Script = stream([CALL])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def chat_bodies(self) -> list[dict[str, Any]]:
        return [r[3] for r in self.requests if r[0] == "POST"]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def messages(n_images: int = 1) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": [{"type": "text", "text": "You are an agent."}]},
        {"role": "user", "content": [*([{"type": "image"}] * n_images),
                                     {"type": "text", "text": "Click the button."}]},
    ]


IMAGE = Image.new("RGB", (28, 56), (10, 200, 30))


def test_streams_and_closes_the_call(server: FakeServer) -> None:
    server.script = stream([CALL[:12], CALL[12:40], CALL[40:]],
                           usage={"prompt_tokens": 1234, "completion_tokens": 21})
    backend = OpenAICompatBackend(server.url)
    assert isinstance(backend, Backend)
    tokens: list[str] = []
    gen = backend.generate(messages(), [IMAGE], max_new_tokens=99, on_token=tokens.append)
    assert gen.text == CALL + "</tool_call>"  # stripped stop sequence put back
    assert "".join(tokens) == gen.text and tokens[-1] == "</tool_call>"
    assert (gen.prompt_tokens, gen.generated_tokens, gen.finish_reason) == (1234, 21, "stop")
    assert set(gen.timings) == {"prefill", "decode", "total"}  # total: the base class
    assert backend.name == "openai-compat:fara-7b"  # first model from GET /models
    body = server.chat_bodies()[0]
    assert body["model"] == "fara-7b" and body["stream"] is True and body["temperature"] == 0
    assert body["stop"] == ["</tool_call>"] and body["max_tokens"] == 99
    assert body["messages"][0] == {"role": "system", "content": "You are an agent."}
    image_part, text_part = body["messages"][1]["content"]
    assert text_part == {"type": "text", "text": "Click the button."}
    url = image_part["image_url"]["url"]
    assert image_part["type"] == "image_url" and url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.size == (28, 56) and decoded.getpixel((3, 3)) == (10, 200, 30)


def test_tokens_arrive_while_streaming(server: FakeServer) -> None:
    seen_first = threading.Event()
    order: list[str] = []

    def between(i: int) -> None:
        if i == 0:  # hold the rest of the stream until the client has seen the first token
            order.append("server waits")
            order.append("client saw token" if seen_first.wait(5) else "timeout")

    server.script = stream(["<tool_call>", "\n{}\n"], between=between)

    def on_token(piece: str) -> None:
        seen_first.set()

    OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE], on_token=on_token)
    assert order == ["server waits", "client saw token"]


def test_cancel_between_chunks(server: FakeServer) -> None:
    cancel = threading.Event()
    server.script = stream(["a ", "b ", "c ", "d "], between=lambda i: time.sleep(0.05))
    tokens: list[str] = []

    def on_token(piece: str) -> None:
        tokens.append(piece)
        cancel.set()

    gen = OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE], on_token=on_token,
                                                        cancel=cancel)
    assert gen.finish_reason == "cancelled" and gen.text == "a " and tokens == ["a "]


def test_client_side_stop_when_server_ignores_it(server: FakeServer) -> None:
    server.script = stream([CALL + "</tool", "_call>\n<|im_end|>", "more junk"])
    tokens: list[str] = []
    gen = OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE],
                                                        on_token=tokens.append)
    assert gen.text == CALL + "</tool_call>" and "".join(tokens) == gen.text


def test_length_finish_is_not_closed(server: FakeServer) -> None:
    server.script = stream(["<tool_call>\n{\"name\": "], finish="length")
    gen = OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE])
    assert gen.finish_reason == "length" and not gen.text.endswith("</tool_call>")


def test_non_streaming_json_answer(server: FakeServer) -> None:
    server.script = lambda h, body: h.send_json(200, {
        "choices": [{"message": {"content": CALL}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7}})
    gen = OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE])
    assert gen.text == CALL + "</tool_call>" and gen.generated_tokens == 7


def test_stream_options_retry(server: FakeServer) -> None:
    def script(handler: Handler, body: dict[str, Any]) -> None:
        if "stream_options" in body:
            handler.send_json(400, {"error": {"message": "Unknown field: stream_options"}})
        else:
            stream([CALL])(handler, body)

    server.script = script
    gen = OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE])
    assert gen.text.endswith("</tool_call>") and len(server.chat_bodies()) == 2


def error(status: int, message: str) -> Script:
    return lambda h, body: h.send_json(status, {"error": {"message": message, "code": status}})


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (error(401, "Invalid API key"), "needs an API key"),
        (error(400, "Image input is not supported by this model"),
         "does not accept these images"),
        (error(400, "At most 1 image(s) may be provided in one request."),
         "--limit-mm-per-prompt"),
        (error(404, "The model `m` does not exist."), "has no model 'm'"),
        (error(500, "CUDA out of memory"), "server error 500"),
        (error(400, "This model's maximum context length is 4096 tokens"), "too long"),
        (stream([""], finish="stop"), "returned an empty answer"),
        (lambda h, body: (h.start_stream(), h.event({"error": {"message": "boom"}})),
         "error mid-answer: boom"),
    ],
)
def test_failure_messages(server: FakeServer, script: Script, expected: str) -> None:
    server.script = script
    with pytest.raises(BackendError, match=expected):
        OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE])


def test_wrong_base_url_suggests_v1(server: FakeServer) -> None:
    root = server.url[:-3]
    with pytest.raises(BackendError, match=r"404 Not Found.*try http://127\.0\.0\.1:\d+/v1"):
        OpenAICompatBackend(root, "m").generate(messages(), [IMAGE])
    with pytest.raises(BackendError, match="try removing /v1"):
        OpenAICompatBackend(server.url + "/v1").model_name()


def test_connection_refused_names_the_url() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BackendError, match=rf"nothing is listening at http://127\.0\.0\.1:{port}/v1"):
        OpenAICompatBackend(f"http://127.0.0.1:{port}/v1", "m").generate(messages(), [IMAGE])


def test_timeout(server: FakeServer) -> None:
    server.script = lambda h, body: time.sleep(1.0)
    with pytest.raises(BackendError, match=r"no answer from .* within 0\.3 s"):
        OpenAICompatBackend(server.url, "m", timeout=0.3).generate(messages(), [IMAGE])


def test_timeout_mid_answer(server: FakeServer) -> None:
    server.script = stream(["<tool_call>", "\n{}"], between=lambda i: time.sleep(1.0))
    with pytest.raises(BackendError, match=r"stopped sending for 0\.3 s in the middle"):
        OpenAICompatBackend(server.url, "m", timeout=0.3).generate(messages(), [IMAGE])


def test_api_key_sent(server: FakeServer) -> None:
    OpenAICompatBackend(server.url, "m", api_key="sekret").generate(messages(), [IMAGE])
    assert server.requests[-1][2].get("Authorization") == "Bearer sekret"


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the backend tried to use the network")

    monkeypatch.setattr(socket, "socket", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000/v1", "http://[fe80::1]:8000/v1",
                                 "https://192.168.1.20/v1"])
def test_lan_refused_before_connecting(url: str, no_sockets: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("resolved a literal"))
    with pytest.raises(BackendError, match="refusing to send screenshots"):
        OpenAICompatBackend(url, "m")


def test_names_resolving_off_machine_refused(no_sockets: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Loopback is decided without DNS (agent.offline.is_loopback_host): a name not in
    # /etc/hosts is refused whatever a resolver would answer.
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("asked DNS"))
    with pytest.raises(BackendError, match=r"refusing to send screenshots to gpu-box\.local"):
        OpenAICompatBackend("http://gpu-box.local:8000/v1", "m")
    OpenAICompatBackend("http://gpu-box.local:8000/v1", "m", allow_lan=True)  # explicit opt-in


def test_localhost_allowed_and_proxies_ignored(server: FakeServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")  # must not receive screenshots
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    port = server.server_address[1]
    gen = OpenAICompatBackend(f"http://localhost:{port}/v1", "m", timeout=5).generate(
        messages(), [IMAGE])
    assert gen.text.endswith("</tool_call>")


def test_cancel_interrupts_a_long_prefill(server: FakeServer) -> None:
    release = threading.Event()
    server.script = lambda h, body: release.wait(5)  # "prefill": no answer, not even headers
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.perf_counter()
    gen = OpenAICompatBackend(server.url, "m").generate(messages(), [IMAGE], cancel=cancel)
    release.set()
    assert gen.finish_reason == "cancelled" and gen.text == ""
    assert time.perf_counter() - started < 2


def test_peer_checked_after_connecting() -> None:
    from agent.inference.localhttp import check_peer

    class FakeSock:
        closed = False

        def getpeername(self) -> tuple[str, int]:
            return ("10.0.0.5", 8000)  # e.g. DNS changed between the check and the connect

        def close(self) -> None:
            self.closed = True

    sock = FakeSock()
    with pytest.raises(BackendError, match=r"refusing to talk to 10\.0\.0\.5"):
        check_peer(sock)  # type: ignore[arg-type]
    assert sock.closed
