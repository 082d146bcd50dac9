"""Name lookups while offline: `socket`'s resolvers replaced by answers from local data only.

Installed by `agent.offline.OfflineGuard` in `socket` and `_socket`. A replaced resolver asks the
guard for the addresses of a name (loopback names, /etc/hosts, or a host the user allowed) and
never lets a query reach a DNS server, whose forwarding could carry data out in the name itself.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from agent.netpolicy import is_loopback_ip

if TYPE_CHECKING:
    from agent.offline import OfflineGuard


def guarded_resolver(guard: type[OfflineGuard], name: str, real: Any) -> Any:
    """A name lookup answered from loopback/hosts-file data only (see `local_addresses`)."""

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> Any:
        if host is None:  # the local wildcard or loopback: no lookup
            return real(host, port, family, type, proto, flags)
        results = []
        for address in guard._resolve(host):
            try:
                results += real(address, port, family, type, proto,
                                flags | socket.AI_NUMERICHOST)
            except socket.gaierror:
                continue  # an address of another family than asked for
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return results

    def gethostbyname(host: Any) -> str:
        v4 = [a for a in guard._resolve(host) if ":" not in a]
        if not v4:
            guard._refuse("resolve", str(host))
        return v4[0]

    def gethostbyname_ex(host: Any) -> tuple[str, list[str], list[str]]:
        v4 = [a for a in guard._resolve(host) if ":" not in a]
        if not v4:
            guard._refuse("resolve", str(host))
        return str(host), [], v4

    def gethostbyaddr(host: Any) -> tuple[str, list[str], list[str]]:
        addresses = guard._resolve(host)  # a reverse lookup of a loopback address is answered here
        return ("localhost" if all(is_loopback_ip(a) for a in addresses) else str(host),
                [], addresses)

    def getnameinfo(sockaddr: Any, flags: int) -> Any:
        host = str(sockaddr[0]) if isinstance(sockaddr, tuple) and sockaddr else ""
        if not guard._ip_allowed(host):
            guard._refuse("resolve", host)
        return real(sockaddr, flags | socket.NI_NUMERICHOST)  # never a reverse DNS query

    chosen = {"getaddrinfo": getaddrinfo, "gethostbyname": gethostbyname,
              "gethostbyname_ex": gethostbyname_ex, "gethostbyaddr": gethostbyaddr,
              "getnameinfo": getnameinfo}[name]

    def resolver(*args: Any, **kwargs: Any) -> Any:
        if guard._depth == 0:
            return real(*args, **kwargs)
        return chosen(*args, **kwargs)

    resolver.__name__ = name
    return resolver
