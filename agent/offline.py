"""Verified offline mode: refuse non-loopback network connections at the socket layer.

While active, `socket.socket.connect`/`connect_ex`/`sendto` and name resolution refuse any
non-loopback destination, record the attempt and raise `OfflineViolation` (an `OSError`, so
libraries treat it like an unreachable network). Limits: code that opens sockets from C without
Python's socket module (native libraries) is not covered; Deskhand's own code and the Python
libraries it uses (urllib, huggingface_hub, http.client) are.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any


class OfflineViolation(ConnectionRefusedError):
    """A non-loopback connection attempted while offline mode was on."""


@dataclass(frozen=True)
class Attempt:
    when: float
    operation: str
    destination: str


def is_loopback_host(host: str) -> bool:
    """True for localhost names and loopback IP addresses (no DNS lookup)."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain", "ip6-localhost", ""):
        return host != ""
    if host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class OfflineGuard:
    """Context manager that installs the socket-layer refusal; re-entrant, process-wide.

    `allow_hosts` names extra hosts (exact names or addresses) the user explicitly allowed,
    such as a LAN model server given with --allow-lan.
    """

    _lock = threading.Lock()
    _depth = 0
    _saved: dict[str, Any] = {}
    _allowed: dict[str, int] = {}
    attempts: list[Attempt] = []

    def __init__(self, allow_hosts: tuple[str, ...] = ()) -> None:
        self.allow_hosts = tuple(h.strip("[]").lower() for h in allow_hosts if h)

    def __enter__(self) -> OfflineGuard:
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                cls._install()
            cls._depth += 1
            for host in self.allow_hosts:
                cls._allowed[host] = cls._allowed.get(host, 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        cls = type(self)
        with cls._lock:
            for host in self.allow_hosts:
                cls._allowed[host] -= 1
                if cls._allowed[host] <= 0:
                    del cls._allowed[host]
            cls._depth -= 1
            if cls._depth == 0:
                cls._uninstall()

    @classmethod
    def _host_allowed(cls, host: str) -> bool:
        return is_loopback_host(host) or host.strip("[]").lower() in cls._allowed

    @classmethod
    def _destination(cls, address: Any) -> tuple[str, bool]:
        """A printable destination and whether it is allowed (loopback, allowed, or a local path)."""
        if isinstance(address, (str, bytes)):  # AF_UNIX path: never leaves the machine
            return str(address), True
        if isinstance(address, tuple) and address:
            host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
            port = address[1] if len(address) > 1 else ""
            return f"{host}:{port}", cls._host_allowed(host)
        return repr(address), False

    @classmethod
    def active(cls) -> bool:
        return cls._depth > 0

    @classmethod
    def _record(cls, operation: str, destination: str) -> None:
        cls.attempts.append(Attempt(time.time(), operation, destination))
        del cls.attempts[:-1000]  # bounded memory for a misbehaving library

    @classmethod
    def _install(cls) -> None:
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_sendto = socket.socket.sendto
        real_getaddrinfo = socket.getaddrinfo
        cls._saved = {"connect": real_connect, "connect_ex": real_connect_ex,
                      "sendto": real_sendto, "getaddrinfo": real_getaddrinfo}

        def check(operation: str, address: Any) -> None:
            where, allowed = cls._destination(address)
            if not allowed:
                cls._record(operation, where)
                raise OfflineViolation(f"offline mode: refused {operation} to {where}")

        def connect(sock: socket.socket, address: Any) -> None:
            check("connect", address)
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            check("connect", address)
            return real_connect_ex(sock, address)

        def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
            check("sendto", args[-1])
            return real_sendto(sock, data, *args)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host or "")
            if host is not None and not cls._host_allowed(name):
                cls._record("resolve", name)
                raise OfflineViolation(f"offline mode: refused to resolve {name}")
            return real_getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.socket.sendto = sendto  # type: ignore[method-assign]
        socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]

    @classmethod
    def _uninstall(cls) -> None:
        saved = cls._saved
        socket.socket.connect = saved["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = saved["connect_ex"]  # type: ignore[method-assign]
        socket.socket.sendto = saved["sendto"]  # type: ignore[method-assign]
        socket.getaddrinfo = saved["getaddrinfo"]  # type: ignore[assignment]
        cls._saved = {}
