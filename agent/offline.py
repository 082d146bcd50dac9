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


def _destination(address: Any) -> tuple[str, bool]:
    """A printable destination and whether it is allowed (loopback or a local socket path)."""
    if isinstance(address, (str, bytes)):  # AF_UNIX path: never leaves the machine
        return str(address), True
    if isinstance(address, tuple) and address:
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        port = address[1] if len(address) > 1 else ""
        return f"{host}:{port}", is_loopback_host(host)
    return repr(address), False


class OfflineGuard:
    """Context manager that installs the socket-layer refusal; re-entrant, process-wide."""

    _lock = threading.Lock()
    _depth = 0
    _saved: dict[str, Any] = {}
    attempts: list[Attempt] = []

    def __enter__(self) -> OfflineGuard:
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                cls._install()
            cls._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                cls._uninstall()

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
            where, allowed = _destination(address)
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
            if host is not None and not is_loopback_host(name):
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
