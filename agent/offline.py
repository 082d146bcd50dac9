"""Verified offline mode: refuse every route off the machine at Python's socket layer.

While active, every socket operation that could carry data away is checked, decided by address
(never by name), recorded when refused, and refused with `OfflineViolation` (an `OSError`, so
libraries treat it like an unreachable network):

- connect/connect_ex/sendto/sendmsg to a non-loopback address, on `socket.socket`, its subclasses
  (ssl), the raw `_socket.socket` type and through `super(socket.socket, s)`; send/sendall/
  sendfile on sockets connected *before* the run (keep-alive pools), decided by `getpeername()`;
- bind/listen on anything but loopback (serving data to whoever connects in); raw IP sockets;
  loopback port 53 (a local DNS stub forwards the names it is asked, and data spelled in them);
- name lookups: `getaddrinfo`, `gethostbyname(_ex)`, `gethostbyaddr`, `getnameinfo` in both
  `socket` and `_socket` never reach a resolver: loopback names are answered here (RFC 6761 for
  `localhost`/`*.localhost`, /etc/hosts for the rest) and every answer must be loopback;
- configured proxies: proxy variables are cleared for the run and connects to their (loopback)
  endpoints refused, so a local proxy cannot carry requests out;
- AF_UNIX: only the desktop's own sockets (X11, D-Bus, AT-SPI, Wayland, multiprocessing);
  everything else (docker.sock, ssh-agent, ...) is refused; other families (AF_PACKET, ...) too.

What Python cannot close — ctypes or native libraries making syscalls, `os.write` on a socket's fd,
the C type's methods reached through a reference taken before install — is the OS layer's job
(`agent/sandbox.py`, for the model process) and is listed in the README. Child processes get the
guard from their first import through `agent/offline_boot.py`. The replaced name lookups are
`agent/offline_resolve.py`; the record of refused attempts is `agent/offline_log.py`.
"""

from __future__ import annotations

import _socket
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from agent.netpolicy import (
    _ip,
    is_loopback_host,
    is_loopback_ip,
    local_addresses,
    unix_allowed,
    unix_destination,
)
from agent.offline_log import (
    CHILD_LOGS,
    LOG,
    MAX_CHILD_LOG,
    Attempt,
    _isolation_notes,  # noqa: F401  (tests reset the notes through agent.offline)
    attempt_dicts,
    attempts_since,
    isolation_notes,
    new_child_log,
    note_isolation,
    os_layer_warnings,
)
from agent.offline_log import record as record_attempt
from agent.offline_resolve import guarded_resolver

# Public here: callers decide loopback (`is_loopback_host`, the single check) and read the
# record of refused attempts (`agent.offline_log`) through this module.
__all__ = [
    "DNS_PORT", "MAX_CHILD_LOG", "PROXY_EXEMPT", "Attempt", "OfflineGuard", "OfflineViolation",
    "attempt_dicts", "attempts_since", "is_loopback_host", "is_loopback_ip", "isolation_notes",
    "note_isolation", "os_layer_warnings",
]


class OfflineViolation(ConnectionRefusedError):
    """A connection, lookup or send off the machine attempted while offline mode was on."""


PROXY_EXEMPT = frozenset({"no_proxy"})
DNS_PORT = 53
_ORIGINAL_SOCKET = socket.socket  # the class every Python socket is an instance of
_ORIGINAL_RAW = _socket.socket  # the C type under it
_SOCKET_METHODS = ("connect", "connect_ex", "send", "sendall", "sendto", "sendmsg", "sendfile",
                   "bind", "listen")
_RAW_METHODS = ("connect", "connect_ex", "send", "sendall", "sendto", "sendmsg", "bind", "listen")
_RESOLVERS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")


# --- the guard ---------------------------------------------------------------------------------

class OfflineGuard:
    """Context manager that installs the refusal; re-entrant and process-wide.

    `allow_hosts` names extra hosts (names or addresses) the user explicitly allowed, such as a
    LAN model server given with --allow-lan. A strict guard (the model process) refuses loopback
    and AF_UNIX too: that process needs no socket at all.
    """

    _lock = threading.RLock()
    _depth = 0
    _strict = False
    _saved: dict[str, Any] = {}  # originals, restored at uninstall; called for allowed traffic
    _allowed: dict[str, int] = {}
    _allowed_addresses: set[str] = set()
    _proxies: set[tuple[str, int]] = set()
    _saved_env: dict[str, str | None] = {}
    _child_logs: list[Path] = CHILD_LOGS  # the same lists as agent.offline_log's
    log: list[Attempt] = LOG

    def __init__(self, allow_hosts: tuple[str, ...] = (), *, strict: bool = False) -> None:
        self.allow_hosts = tuple(h.strip("[]").lower() for h in allow_hosts if h)
        self.strict = strict
        self._since = 0.0
        self._until: float | None = None

    @property
    def attempts(self) -> list[Attempt]:
        """The attempts refused while this guard was entered, in this process and its children."""
        return [a for a in attempts_since(self._since)
                if self._until is None or a.when <= self._until]

    def __enter__(self) -> OfflineGuard:
        cls = type(self)
        with cls._lock:
            self._since, self._until = time.time(), None
            if cls._depth == 0:
                cls._strict = self.strict
                cls._install()
            cls._strict = cls._strict or self.strict
            cls._depth += 1
            for host in self.allow_hosts:
                cls._allowed[host] = cls._allowed.get(host, 0) + 1
                if _ip(host) is not None:
                    cls._allowed_addresses.add(str(_ip(host)))
        return self

    def __exit__(self, *exc: object) -> None:
        cls = type(self)
        with cls._lock:
            self._until = time.time()
            for host in self.allow_hosts:
                cls._allowed[host] -= 1
                if cls._allowed[host] <= 0:
                    del cls._allowed[host]
            cls._depth -= 1
            if cls._depth == 0:
                cls._uninstall()
                cls._allowed_addresses.clear()
                cls._strict = False

    @classmethod
    def active(cls) -> bool:
        return cls._depth > 0

    record = staticmethod(record_attempt)  # note one refused attempt (see agent.offline_log)
    new_child_log = staticmethod(new_child_log)  # a file a child process reports attempts to

    # -- decisions ----------------------------------------------------------------------------

    @classmethod
    def _ip_allowed(cls, address: str, port: Any = None) -> bool:
        ip = _ip(address)
        if ip is None:
            return False
        key = str(ip) if cls._proxies or cls._allowed_addresses or port == DNS_PORT else ""
        if cls._proxies and ((key, port) in cls._proxies or (address, port) in cls._proxies):
            return False  # a local proxy would carry the request out
        if key in cls._allowed_addresses:
            return True
        if port == DNS_PORT:
            return False  # a local DNS stub (127.0.0.53) forwards the name, and data in it, out
        return ip.is_loopback and not cls._strict

    @classmethod
    def _resolve(cls, host: Any) -> list[str]:
        """Addresses for `host`, all allowed, or OfflineViolation; a resolver is asked only for
        names the user explicitly allowed."""
        name = host.decode() if isinstance(host, bytes) else str(host)
        key = name.strip("[]").lower().rstrip(".")
        addresses = local_addresses(name)
        if addresses is None and key in cls._allowed:
            infos = cls._saved["_socket.getaddrinfo"](key, None)  # the C original
            addresses = [str(info[4][0]) for info in infos]
            cls._allowed_addresses.update(str(_ip(a)) for a in addresses)
        if not addresses or not all(cls._ip_allowed(a) for a in addresses):
            cls._refuse("resolve", name)
        return addresses

    @classmethod
    def _refuse(cls, operation: str, destination: str) -> None:
        cls.record(operation, destination)
        raise OfflineViolation(f"offline mode: refused {operation} to {destination}")

    @classmethod
    def _checked_address(cls, sock: Any, operation: str, address: Any) -> Any:
        """`address` with any name replaced by its checked address, or OfflineViolation."""
        family = getattr(sock, "family", None)
        if family == socket.AF_UNIX or (family is None and isinstance(address, (str, bytes))):
            if operation == "bind":
                return address  # a socket file on this machine
            destination = unix_destination(address)
            if cls._strict or not unix_allowed(destination):
                cls._refuse(operation, "unix:" + destination.replace("\0", "@"))
            return destination if destination and not destination.startswith("\0") else address
        if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) \
                or not address:
            cls._refuse(operation, f"family {family}: {address!r}")
        host = address[0].decode() if isinstance(address[0], bytes) else str(address[0])
        port = address[1] if len(address) > 1 else None
        where = f"{host}:{port}"
        if getattr(sock, "type", None) == socket.SOCK_RAW:
            cls._refuse(operation, f"raw {where}")  # its own IP header may name another host
        if operation == "bind":
            if not cls._ip_allowed(host):  # "" and 0.0.0.0 are every interface
                cls._refuse("bind", where or "all interfaces")
            return address
        if _ip(host) is not None:
            if not cls._ip_allowed(host, port):
                cls._refuse(operation, where)
            return address
        candidates = cls._resolve(host)
        if family == socket.AF_INET6:  # IPv4 answers reach a dual-stack socket as mapped
            candidates = [a if ":" in a else "::ffff:" + a for a in candidates]
        else:
            candidates = [a for a in candidates if ":" not in a]
        if not candidates or not cls._ip_allowed(candidates[0], port):
            cls._refuse(operation, where)
        return (candidates[0], *address[1:])

    @classmethod
    def _check_peer(cls, sock: Any, operation: str) -> None:
        """Refuse sending on a socket connected to a refused peer (e.g. opened before the run)."""
        try:
            peer = _ORIGINAL_RAW.getpeername(sock)
        except (OSError, TypeError):
            return  # not connected: the send fails by itself
        if sock.family == socket.AF_UNIX and peer in ("", b""):
            return  # an unnamed pair (socketpair): both ends are ours
        cls._checked_address(sock, operation, peer)

    @classmethod
    def _check_listen(cls, sock: Any) -> None:
        try:
            name = _ORIGINAL_RAW.getsockname(sock)
        except OSError:
            return
        cls._checked_address(sock, "bind", name)

    # -- install ------------------------------------------------------------------------------

    @classmethod
    def _guarded(cls, name: str, real: Any) -> Any:
        """A method that checks, then calls `real` (only while the guard is installed)."""

        def method(sock: Any, *args: Any, **kwargs: Any) -> Any:
            if cls._depth > 0:
                if name in ("connect", "connect_ex") and args:
                    args = (cls._checked_address(sock, "connect", args[0]), *args[1:])
                elif name == "bind" and args:
                    cls._checked_address(sock, "bind", args[0])
                elif name == "listen":
                    cls._check_listen(sock)
                elif name == "sendto" and args:
                    args = (*args[:-1], cls._checked_address(sock, "sendto", args[-1]))
                elif name == "sendmsg" and len(args) >= 4 and args[3] is not None:
                    args = (*args[:3], cls._checked_address(sock, "sendmsg", args[3]), *args[4:])
                else:  # send, sendall, sendfile, write, and sendmsg on a connected socket
                    cls._check_peer(sock, name)
            return real(sock, *args, **kwargs)

        method.__name__ = name
        method.__qualname__ = f"guarded.{name}"
        return method

    @classmethod
    def _install(cls) -> None:
        saved: dict[str, Any] = {}
        for name in _SOCKET_METHODS:
            saved[f"socket.socket.{name}"] = _ORIGINAL_SOCKET.__dict__.get(name)
            setattr(_ORIGINAL_SOCKET, name, cls._guarded(name, getattr(_ORIGINAL_SOCKET, name)))
        import ssl  # TLS sockets write through OpenSSL, not socket.send

        for name in ("send", "write"):
            saved[f"ssl.SSLSocket.{name}"] = ssl.SSLSocket.__dict__.get(name)
            setattr(ssl.SSLSocket, name, cls._guarded(name, getattr(ssl.SSLSocket, name)))
        for module in (socket, _socket):
            for name in _RESOLVERS:
                real = getattr(module, name)
                saved[f"{module.__name__}.{name}"] = real
                setattr(module, name, guarded_resolver(cls, name, real))
            for name in ("socket", "SocketType"):
                saved[f"{module.__name__}.{name}"] = getattr(module, name)
        # New sockets come from guarded classes, so that `super(socket.socket, s).connect` and
        # `_socket.socket().connect` land on a checked method too.
        socket.socket = _GuardedSocket  # type: ignore[misc]
        socket.SocketType = _GuardedRaw  # type: ignore[misc]
        _socket.socket = _GuardedRaw  # type: ignore[misc]
        _socket.SocketType = _GuardedRaw  # type: ignore[misc]
        cls._saved = saved
        cls._proxies = _clear_proxies(cls._saved_env)
        _set_child_env(cls)

    @classmethod
    def _uninstall(cls) -> None:
        saved = cls._saved
        for key, value in saved.items():
            owner_name, _, name = key.rpartition(".")
            owner: Any = {"socket.socket": _ORIGINAL_SOCKET, "socket": socket, "_socket": _socket,
                          "ssl.SSLSocket": __import__("ssl").SSLSocket}[owner_name]
            if value is None:
                if name in owner.__dict__:
                    delattr(owner, name)  # it was inherited from the C type
            else:
                setattr(owner, name, value)
        for key, value in cls._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cls._saved_env, cls._saved, cls._proxies = {}, {}, set()


class _Alias(type):
    """isinstance/issubclass against a guarded class answer as for the class it stands in for."""

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls.__mro__[1])

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls.__mro__[1])


class _GuardedSocket(_ORIGINAL_SOCKET, metaclass=_Alias):
    """`socket.socket` while the guard is on: the original class's (guarded) methods, with the
    original class one step up, so `super(socket.socket, s)` finds a guarded method."""

    __slots__ = ()


class _GuardedRaw(_ORIGINAL_RAW, metaclass=_Alias):
    """`_socket.socket` while the guard is on: the C type with checked methods."""

    __slots__ = ()


for _name in _RAW_METHODS:
    setattr(_GuardedRaw, _name, OfflineGuard._guarded(_name, getattr(_ORIGINAL_RAW, _name)))



def _clear_proxies(saved_env: dict[str, str | None]) -> set[tuple[str, int]]:
    """Remove proxy variables for the run (restored at uninstall); return their endpoints."""
    from urllib.parse import urlsplit

    endpoints: set[tuple[str, int]] = set()
    for key in list(os.environ):
        if key.lower().endswith("_proxy") and key.lower() not in PROXY_EXEMPT:
            value = os.environ.pop(key)
            saved_env.setdefault(key, value)
            try:
                parts = urlsplit(value if "://" in value else "http://" + value)
                default = 1080 if "socks" in parts.scheme else 80
                host, port = parts.hostname, parts.port or default
            except ValueError:
                continue
            if host:
                for address in local_addresses(host) or [host]:
                    endpoints.add((str(_ip(address) or address), port))
    return endpoints


def _set_child_env(cls: type[OfflineGuard]) -> None:
    from agent.offline_boot import child_environment

    for key, value in child_environment(strict=cls._strict, allow=tuple(cls._allowed)).items():
        cls._saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value


