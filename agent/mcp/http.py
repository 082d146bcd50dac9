"""The streamable-HTTP transport: 127.0.0.1 only, a bearer token from the user config dir.

Two checks in front of the SDK's app, on every HTTP request: the peer must be a loopback
address (the socket is bound to 127.0.0.1 anyway; this also holds behind a port forward), and
the `Authorization: Bearer` token must match, compared in constant time. The SDK's own
DNS-rebinding protection (Host and Origin headers) stays on behind them.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from agent.paths import config_dir

HOST = "127.0.0.1"
DEFAULT_PORT = 8767
PATH = "/mcp"
TOKEN_FILE = "mcp-token"


class TokenError(RuntimeError):
    """The token file cannot be trusted or written; the message is for users."""


def token_path() -> Path:
    return config_dir() / TOKEN_FILE


def load_token(path: Path | None = None) -> str:
    """The HTTP bearer token, created on first use (0600, owned by this user)."""
    path = path or token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise TokenError(f"cannot read the MCP token {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
            raise TokenError(f"{path} is not a regular file of yours; delete it and start again")
        if info.st_mode & 0o077:
            os.fchmod(f.fileno(), 0o600)  # readable by others: tighten before trusting it
        token = f.read(256).strip()
    if len(token) < 32:
        raise TokenError(f"the MCP token in {path} is too short; delete the file to make a new one")
    return token


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class LoopbackBearer:
    """ASGI middleware: refuse non-loopback peers (403) and a missing or wrong token (401)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self._token = app, token.encode("ascii")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)  # lifespan: the session manager's start
        client = scope.get("client")
        if not is_loopback(client[0] if client else None):
            return await _refuse(send, 403, "only this computer may connect")
        given = b""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                given = value
        scheme, _, token = given.partition(b" ")
        # compare_digest on equal-type bytes: the time taken does not depend on where they differ.
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), self._token):
            return await _refuse(send, 401, "missing or wrong bearer token (see `deskhand mcp "
                                 "--print-config`)", {"www-authenticate": "Bearer"})
        return await self.app(scope, receive, send)


async def _refuse(send: Any, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = message.encode("utf-8")
    head = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def http_app(mcp_server: Any, token: str) -> Any:
    """The SDK's streamable-HTTP app for `mcp_server` behind the loopback and token checks."""
    return LoopbackBearer(mcp_server.streamable_http_app(streamable_http_path=PATH, host=HOST), token)


async def serve(mcp_server: Any, token: str, port: int = DEFAULT_PORT,
                started: Any = None) -> None:
    """Serve until cancelled, on 127.0.0.1 only; `started` (an anyio Event) is set when listening."""
    import anyio
    import uvicorn

    config = uvicorn.Config(http_app(mcp_server, token), host=HOST, port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    ended = anyio.Event()

    async def run() -> None:
        with anyio.CancelScope(shield=True):  # ended by should_exit below: a clean shutdown
            try:
                await server.serve()
            finally:
                ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            while not server.started and not ended.is_set():
                await anyio.sleep(0.02)
            if not server.started:
                raise OSError(f"could not listen on {HOST}:{port} (is the port taken?)")
            if started is not None:
                started.set()
            await ended.wait()
        finally:
            server.should_exit = True
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await ended.wait()
