"""HTTP to local servers: one loopback decision, one client (model servers and the model judge)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.eval.model_judge import JudgeError, ModelJudge
from agent.inference import localhttp
from agent.inference.base import BackendError
from agent.inference.openai_compat import OpenAICompatBackend


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with a judge verdict and remembers the request line."""

    status = 200

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        self.server.seen.append(self.requestline)  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        data = json.dumps({"choices": [{"message": {"content": "VERDICT: SUCCESS"}}]}).encode()
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


def _serve(status: int = 200) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    server.status = status  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def judge_server() -> Iterator[ThreadingHTTPServer]:
    server = _serve()
    yield server
    server.shutdown()
    server.server_close()


def test_judge_ignores_proxy_variables(judge_server: ThreadingHTTPServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _serve()  # a proxy that would answer, so going through it would "work"
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        port = judge_server.server_address[1]
        verdict = ModelJudge(f"http://127.0.0.1:{port}/v1", "j", timeout=5).judge("t", "a", [])
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert verdict["passed"] is True
    assert proxy.seen == []  # type: ignore[attr-defined]
    assert judge_server.seen == ["POST /v1/chat/completions HTTP/1.1"]  # type: ignore[attr-defined]


def test_judge_connections_are_peer_checked(judge_server: ThreadingHTTPServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[object] = []

    def refuse(sock: socket.socket | None) -> None:
        checked.append(sock)
        raise BackendError("refusing to talk to 10.0.0.5: the server host no longer resolves")

    monkeypatch.setattr(localhttp, "check_peer", refuse)
    port = judge_server.server_address[1]
    with pytest.raises(JudgeError, match=r"refusing to talk to 10\.0\.0\.5"):
        ModelJudge(f"http://127.0.0.1:{port}/v1", timeout=5).judge("t", "a", [])
    assert len(checked) == 1 and judge_server.seen == []  # type: ignore[attr-defined]


def test_judge_http_errors_are_judge_errors() -> None:
    server = _serve(status=500)
    try:
        judge = ModelJudge(f"http://127.0.0.1:{server.server_address[1]}/v1", timeout=5)
        with pytest.raises(JudgeError, match="HTTP 500"):
            judge.judge("t", "a", [])
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_is_decided_without_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    # A resolver that says 127.0.0.1 for any name: it must not be what makes a host loopback.
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answers)
    with pytest.raises(BackendError, match=r"refusing to send screenshots to gpu-box\.example"):
        OpenAICompatBackend("http://gpu-box.example:8000/v1", "m")
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("asked DNS"))
    for url in ("http://localhost:8000/v1", "http://127.0.0.1:8000/v1", "http://[::1]:8000/v1",
                "http://model.localhost:8000/v1"):
        OpenAICompatBackend(url, "m")  # accepted, and no resolver was asked


def test_peer_check_uses_the_same_decision() -> None:
    class Sock:
        closed = False

        def __init__(self, host: str) -> None:
            self.host = host

        def getpeername(self) -> tuple[str, int]:
            return (self.host, 8000)

        def close(self) -> None:
            self.closed = True

    localhttp.check_peer(Sock("::ffff:127.0.0.1"))  # type: ignore[arg-type]  # IPv4-mapped
    bad = Sock("::ffff:10.0.0.5")
    with pytest.raises(BackendError, match="refusing to talk"):
        localhttp.check_peer(bad)  # type: ignore[arg-type]
    assert bad.closed
