"""Where a socket may go while offline mode is on: addresses, local names, AF_UNIX paths.

Pure decisions, no patching (that is `agent/offline.py`): loopback is decided by address, names
are answered without any resolver (RFC 6761 for `localhost`/`*.localhost`, /etc/hosts for the
rest), and AF_UNIX sockets are allowed only where the desktop's own services listen.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tempfile
from pathlib import Path

_HOSTS_FILE = Path("/etc/hosts")


@functools.lru_cache(maxsize=1024)  # every send checks its peer: parse each address once
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address


def is_loopback_ip(text: str) -> bool:
    """True for a loopback address literal (127/8, ::1, and their IPv4-mapped forms)."""
    address = _ip(text)
    return address is not None and address.is_loopback


_hosts_cache: tuple[tuple[float, int], dict[str, list[str]]] | None = None


def _hosts_file() -> dict[str, list[str]]:
    """/etc/hosts as name -> addresses (re-read when it changes); never a network lookup."""
    global _hosts_cache
    try:
        st = _HOSTS_FILE.stat()
        key = (st.st_mtime, st.st_size)
        if _hosts_cache is not None and _hosts_cache[0] == key:
            return _hosts_cache[1]
        table: dict[str, list[str]] = {}
        for line in _HOSTS_FILE.read_text(encoding="utf-8", errors="replace").split("\n"):
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and _ip(fields[0]) is not None:
                for name in fields[1:]:
                    table.setdefault(name.lower().rstrip("."), []).append(fields[0])
    except OSError:
        return {}
    _hosts_cache = (key, table)
    return table


def local_addresses(host: str) -> list[str] | None:
    """The addresses `host` stands for without asking any resolver, or None if that needs DNS.

    An address literal stands for itself; `localhost` and `*.localhost` are loopback by RFC 6761
    (answered here, so no resolver can answer otherwise); other names only from /etc/hosts.
    """
    name = host.strip("[]").lower().rstrip(".")
    if _ip(name) is not None:
        return [name]
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1", "::1"]
    return list(_hosts_file().get(name, [])) or None


def is_loopback_host(host: str) -> bool:
    """True if every address `host` stands for is loopback, decided without a DNS lookup."""
    addresses = local_addresses(host) if host else None
    return bool(addresses) and all(is_loopback_ip(a) for a in addresses)


# --- AF_UNIX: the desktop's own sockets only ---------------------------------------------------

def _bus_path(variable: str) -> str | None:
    """The socket path (or "\\0name" for abstract) in a D-Bus address variable."""
    for part in os.environ.get(variable, "").split(";"):
        for key, prefix in (("path=", ""), ("abstract=", "\0")):
            match = re.search(rf"(?:^|[:,]){key}([^,]+)", part)
            if part.startswith("unix:") and match:
                return prefix + match.group(1)
    return None


def _unix_allowed_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(exact paths, path prefixes) of AF_UNIX sockets the app itself needs.

    X11 (python-xlib: /tmp/.X11-unix/X<n>), the D-Bus session and system buses, the AT-SPI
    accessibility bus (at-spi-bus-launcher puts it in GLib's user runtime dir, which is
    $XDG_RUNTIME_DIR or, without one, the user cache dir), Wayland, multiprocessing's own.
    """
    runtime_dirs = {f"/run/user/{os.getuid()}",
                    os.environ.get("XDG_RUNTIME_DIR") or
                    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")}
    exact = {"/run/dbus/system_bus_socket"} | {f"{d}/bus" for d in runtime_dirs}
    exact.update(p for p in (_bus_path("DBUS_SESSION_BUS_ADDRESS"),
                             _bus_path("AT_SPI_BUS_ADDRESS")) if p)
    prefixes = ("/tmp/.X11-unix/X", "\0/tmp/.X11-unix/X", "\0/tmp/dbus-", "/tmp/dbus-",
                *(f"{d}/at-spi/" for d in runtime_dirs), *(f"{d}/wayland-" for d in runtime_dirs),
                f"{os.path.realpath(tempfile.gettempdir())}/pymp-")
    return (tuple(os.path.realpath(p) if not p.startswith("\0") else p for p in exact),
            tuple(os.path.realpath(p) + ("/" if p.endswith("/") else "")
                  if not p.startswith("\0") else p for p in prefixes))


def unix_destination(address: str | bytes) -> str:
    """The AF_UNIX name a connect would reach: symlinks resolved, abstract names as "\\0name"."""
    path = address.decode("utf-8", "surrogateescape") if isinstance(address, bytes) else address
    if path.startswith("\0") or not path:
        return path
    return os.path.realpath(path)


def unix_allowed(destination: str) -> bool:
    """True for the X server, D-Bus/AT-SPI buses, Wayland and multiprocessing's own sockets."""
    exact, prefixes = _unix_allowed_prefixes()
    return destination in exact or destination.startswith(prefixes)
