"""What the loopback eval-sites server accepts: its own Host, same-origin writes, bounded requests.

The sites server listens on loopback, so every browser on the machine can reach it: a page on any
web site can POST to it (a "simple" text/plain request needs no CORS preflight), and a name that
DNS-rebinds to 127.0.0.1 makes its answers readable cross-site. The checks here refuse both, and
bound what one client can hold (body size, time per request, connections at once).
"""

from __future__ import annotations

import hmac
import io
import ipaddress
import logging
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # the largest site form is a few hundred bytes
REQUEST_TIMEOUT = 15.0  # seconds a client has to send one whole request, idle wait included
MAX_CONNECTIONS = 64  # Chromium opens at most 6 per host; the rest are someone else's
CONTROL_HEADER = "X-Deskhand-Token"
_LENGTH = re.compile(r"[0-9]{1,10}")
_WRITE_FETCH_SITES = ("same-origin", "none")  # "same-site" is another port on 127.0.0.1


class Refused(Exception):
    """A request the server will not serve; carries the HTTP status to answer with."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestPolicy:
    """The Host values and the control token one running server accepts."""

    hosts: frozenset[str]  # lower-case "host:port" exactly as a browser sends it
    token: str

    @classmethod
    def for_address(cls, host: str, port: int, token: str) -> RequestPolicy:
        """Accept the bound loopback address and `localhost`, both with the bound port only."""
        names = {"localhost"}
        if host != "localhost":
            ip = ipaddress.ip_address(host)
            names.add(f"[{ip.compressed}]" if ip.version == 6 else ip.compressed)
        else:
            names.add("127.0.0.1")
        return cls(frozenset(f"{name}:{port}" for name in names), token)

    def check_request(self, target: str, headers: Message) -> None:
        """Every request: origin-form target, exactly one Host of ours, no transfer coding."""
        if not target.startswith("/") or target.startswith("//"):
            # Absolute-form (`GET http://evil/ …`) names a host that overrides Host; no browser
            # sends it to a server that is not a proxy.
            raise Refused(HTTPStatus.BAD_REQUEST, "request target must be a path")
        hosts = headers.get_all("Host") or []
        if len(hosts) != 1:
            raise Refused(HTTPStatus.BAD_REQUEST, "exactly one Host header is required")
        if hosts[0].strip().lower() not in self.hosts:
            # A rebound DNS name, a trailing-dot name, another port: not this server's origin.
            raise Refused(HTTPStatus.MISDIRECTED_REQUEST, "unknown Host")
        if headers.get_all("Transfer-Encoding"):
            # Not read here; the chunks would be parsed as the next request on the connection.
            raise Refused(HTTPStatus.NOT_IMPLEMENTED, "transfer codings are not supported")

    def check_write(self, headers: Message) -> None:
        """A state-changing request: same origin where the browser says, and a JSON body.

        Call after check_request (one Host of ours). Origin and Referer must name that very
        Host: a page on localhost:PORT posting to 127.0.0.1:PORT is cross-origin too.
        """
        own = f"http://{str(headers['Host']).strip().lower()}"
        origins = headers.get_all("Origin") or []
        if len(origins) > 1 or (origins and origins[0].strip().lower() != own):
            raise Refused(HTTPStatus.FORBIDDEN, "cross-origin request refused")
        fetch_site = headers.get_all("Sec-Fetch-Site") or []
        if any(v.strip().lower() not in _WRITE_FETCH_SITES for v in fetch_site):
            raise Refused(HTTPStatus.FORBIDDEN, "cross-site request refused")
        for referer in headers.get_all("Referer") or []:
            try:
                parts = urlsplit(referer.strip())
                origin = f"{parts.scheme}://{parts.netloc}".lower()
            except ValueError:
                origin = ""
            if origin != own:
                raise Refused(HTTPStatus.FORBIDDEN, "cross-origin referer refused")
        ctypes = headers.get_all("Content-Type") or []
        media = ctypes[0].split(";", 1)[0].strip().lower() if len(ctypes) == 1 else ""
        if media != "application/json":
            # Browsers send JSON cross-origin only after a preflight, which this server refuses.
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json")

    def check_control(self, headers: Message) -> None:
        """`/__…` endpoints: the per-server token, which only the harness process knows."""
        given = headers.get_all(CONTROL_HEADER) or []
        if len(given) != 1 or not hmac.compare_digest(given[0].strip().encode("latin-1", "replace"),
                                                      self.token.encode()):
            raise Refused(HTTPStatus.FORBIDDEN, f"control endpoints need the {CONTROL_HEADER} header")


def body_length(headers: Message) -> int:
    """The declared body size: one plain decimal Content-Length, at most MAX_BODY."""
    values = headers.get_all("Content-Length") or []
    if not values:
        raise Refused(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
    if len(values) > 1 or not _LENGTH.fullmatch(values[0].strip()):
        raise Refused(HTTPStatus.BAD_REQUEST, "bad Content-Length")
    length = int(values[0])
    if length > MAX_BODY:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
    return length


def request_path(target: str) -> str:
    """The path part of an origin-form target, percent-decoded; control characters refused."""
    path = unquote(target.split("?", 1)[0].split("#", 1)[0], errors="replace")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise Refused(HTTPStatus.BAD_REQUEST, "control character in path")
    return path


class DeadlineReader(io.RawIOBase):
    """Socket reads that fail once the current request's deadline has passed.

    A per-read socket timeout alone lets a client send one byte just inside it, forever.
    """

    def __init__(self, sock: socket.socket, idle: float) -> None:
        self._sock = sock
        self._idle = idle
        self.deadline = time.monotonic() + idle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request deadline passed")
        self._sock.settimeout(min(self._idle, remaining))
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._idle)  # writes keep the plain per-operation timeout


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading server that serves at most MAX_CONNECTIONS connections at once."""

    daemon_threads = True
    request_queue_size = 128  # listen backlog; the default 5 drops a burst of connects for 1 s

    def __init__(self, address: tuple[str, int], handler: type, *, ipv6: bool,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self._slots = threading.BoundedSemaphore(max_connections)
        self._max_connections = max_connections
        self._refusing = False  # warn once per burst, not once per refused connection
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            if not self._refusing:
                log.warning("eval sites: %d connections open, refusing more",
                            self._max_connections)
                self._refusing = True
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._refusing = False
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is routine; anything else is our bug, logged with a trace."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("eval sites: client %s: %r", client_address, exc)
        else:
            log.exception("eval sites: connection from %s failed", client_address)
