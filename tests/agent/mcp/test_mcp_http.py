"""The streamable-HTTP transport: loopback only, bearer token, one run at a time."""

from __future__ import annotations

import os
import socket
import stat

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from agent.mcp.http import PATH, LoopbackBearer, is_loopback, load_token, serve, token_path
from agent.safety import Decision
from tests.agent.mcp.test_mcp_server import RISKY, field
from tests.app.gui.fakes import click, done
from tests.support.mcp_fakes import CLIENT, Person, make_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers)),
                  client_info=CLIENT)


async def serving(app, token, port, body):
    started = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, app.server, token, port, started)
        await started.wait()
        try:
            return await body(f"http://127.0.0.1:{port}{PATH}")
        finally:
            tg.cancel_scope.cancel()


def test_token_file_is_private_and_stable():
    first = load_token()
    assert len(first) >= 32 and load_token() == first
    assert stat.S_IMODE(token_path().stat().st_mode) == 0o600
    os.chmod(token_path(), 0o644)
    assert load_token() == first and stat.S_IMODE(token_path().stat().st_mode) == 0o600


def test_http_with_the_token_works_and_without_or_wrong_is_refused():
    app, _ = make_app([click(300, 140), done("over http")], transport="http")
    token = load_token()

    async def body(url):
        out = {}
        async with client(url, token) as c:
            out["tools"] = [t.name for t in (await c.list_tools()).tools]
            out["run"] = (await c.call_tool("run_task", {"task": "http task"})).content[0].text
        async with httpx2.AsyncClient() as raw:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            heads = {"Accept": "application/json, text/event-stream"}
            out["none"] = await raw.post(url, json=ping, headers=heads)
            out["wrong"] = await raw.post(url, json=ping, headers={
                **heads, "Authorization": "Bearer " + token[:-1] + ("A" if token[-1] != "A" else "B")})
            out["basic"] = await raw.post(url, json=ping, headers={**heads,
                                                                  "Authorization": f"Basic {token}"})
        with pytest.raises(Exception):  # noqa: B017 - the SDK's error type for a 401 varies
            async with client(url, "x" * 43) as c:
                await c.list_tools()
        return out

    out = anyio.run(serving, app, token, free_port(), body)
    assert "run_task" in out["tools"]
    assert field(out["run"], "status") == "success" and field(out["run"], "answer") == "over http"
    for key in ("none", "wrong", "basic"):
        assert out[key].status_code == 401, key
        assert "bearer token" in out[key].text


def test_a_second_run_task_while_busy_is_refused_with_busy():
    person = Person()
    app, _ = make_app([RISKY, done()], ask=person, transport="http")
    token = load_token()

    async def body(url):
        out = {}
        async with client(url, token) as first, client(url, token) as second, \
                anyio.create_task_group() as tg:
            async def run_first():
                out["first"] = await first.call_tool("run_task", {"task": "buy"})
            tg.start_soon(run_first)
            await anyio.to_thread.run_sync(person.asked.wait, 20)
            out["second"] = await second.call_tool("run_task", {"task": "other"})
            out["status"] = (await second.call_tool("status", {})).structured_content
            person.answer(Decision.DENY)
        return out

    out = anyio.run(serving, app, token, free_port(), body)
    assert out["second"].is_error and out["second"].content[0].text.startswith("busy:")
    assert out["status"]["state"] == "waiting"
    assert field(out["first"].content[0].text, "status") == "denied"


@pytest.mark.parametrize("peer", ["10.0.0.5", "192.168.1.20", "::ffff:8.8.8.8", "0.0.0.0", "", None])
def test_non_loopback_peers_are_refused_before_the_token_is_looked_at(peer):
    reached, sent = [], []

    async def inner(scope, receive, send):
        reached.append(scope)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "client": (peer, 5555) if peer is not None else None,
             "headers": [(b"authorization", b"Bearer " + b"t" * 43)]}
    anyio.run(LoopbackBearer(inner, "t" * 43), scope, None, send)
    assert not reached and sent[0]["status"] == 403


def test_loopback_peers_with_the_token_pass():
    reached = []

    async def inner(scope, receive, send):
        reached.append(scope)

    for peer in ("127.0.0.1", "127.8.0.1", "::1"):
        scope = {"type": "http", "client": (peer, 5555),
                 "headers": [(b"authorization", b"Bearer " + b"t" * 43)]}
        anyio.run(LoopbackBearer(inner, "t" * 43), scope, None, None)
    assert len(reached) == 3
    assert is_loopback("::1") and not is_loopback("localhost") and not is_loopback("::ffff:8.8.8.8")
