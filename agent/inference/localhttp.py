"""HTTP to a server on this machine: the one client for model servers and the model judge.

Screenshots go over these connections, so a server must be on loopback: the host is checked
before connecting (`agent.offline.is_loopback_host`, the one place that decides loopback, with no
DNS lookup) and the socket's peer address after connecting (a name whose answer changed in
between is caught there). http.client is used directly, so environment proxies (http_proxy,
HTTP_PROXY) never see a request, and a cancel flag can shut a blocked socket from a helper thread.
Standard library only.
"""

from __future__ import annotations

import http.client
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.inference.base import BackendError, Cancel
from agent.netpolicy import local_addresses
from agent.offline import is_loopback_host


class Cancelled(Exception):
    """The cancel flag was set before the answer's headers arrived."""


def check_loopback_host(host: str) -> None:
    """Raise BackendError unless every address `host` stands for is loopback."""
    if is_loopback_host(host):
        return
    known = local_addresses(host) if host else None
    where = ", ".join(known) if known else "not a loopback address or a name known without DNS"
    raise BackendError(
        f"refusing to send screenshots to {host} ({where}): it is not this machine. Use a "
        "server on 127.0.0.1 / localhost, or allow LAN servers explicitly (allow_lan=True) if "
        "you trust that network")


def check_peer(sock: socket.socket | None) -> None:
    """Close `sock` and raise BackendError unless its peer is a loopback address."""
    if sock is None:
        return
    peer = sock.getpeername()
    host = peer[0] if isinstance(peer, tuple) else ""
    if isinstance(peer, tuple) and not is_loopback_host(host):
        sock.close()
        raise BackendError(f"refusing to talk to {host}: the server host no longer resolves "
                           "to this machine")


@dataclass
class Exchange:
    """One HTTP request in flight; closing it closes the socket (servers then stop generating)."""

    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    watch: Watch | None

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching, close the response and the connection."""
        if self.watch is not None:
            self.watch.stop()
        self.response.close()
        self.conn.close()


class Watch:
    """Polls a Cancel flag from a helper thread and shuts the socket down when it is set.

    Reading a socket blocks (during prefill, for minutes on a CPU server); shutting it down
    from another thread is what makes the blocked read return at once.
    """

    def __init__(self, cancel: Cancel, conn: http.client.HTTPConnection) -> None:
        self._cancel = cancel
        self._conn = conn
        self._done = threading.Event()
        threading.Thread(target=self._run, name="localhttp-cancel", daemon=True).start()

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


def open_request(url: str, method: str = "GET", *, body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 300.0,
                 loopback_only: bool = True, cancel: Cancel | None = None) -> Exchange:
    """Connect (checking the peer), send, and return the exchange once the headers arrive.

    Raises BackendError for a refused peer, Cancelled when `cancel` was set meanwhile, and the
    transport's own OSError / HTTPException for the caller to word. Any status is returned.
    """
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "", parts.port, timeout=timeout)
    watch = None
    try:
        conn.connect()
        if loopback_only:
            check_peer(conn.sock)
        if cancel is not None:  # lets a stop interrupt even a long prefill
            watch = Watch(cancel, conn)
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                     body=body, headers=headers or {})
        response = conn.getresponse()
    except BaseException as exc:
        if watch is not None:
            watch.stop()
        conn.close()
        if cancel is not None and cancel.is_set():
            raise Cancelled from exc
        raise
    return Exchange(conn, response, watch)


def read_capped(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, or BackendError when it is longer than `limit` bytes."""
    raw = response.read(limit + 1)
    if len(raw) > limit:
        raise BackendError(f"the server's answer is longer than {limit} bytes; refused")
    return raw
