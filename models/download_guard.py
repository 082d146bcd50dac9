"""What a model download does not take on trust: listed file names and HTTP redirects.

A listing or a server may be hostile (a mirror given with HF_ENDPOINT, or anyone in the path):
`unsafe_path` says why a listed name may not become a file, `redirect_refusal` why a redirect
may not be followed, and `install_redirect_policy` makes huggingface_hub's HTTP client apply it.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Any

from agent.offline import is_loopback_host
from models.registry import ModelError

PART = ".part"  # the suffix of a file still downloading
MAX_COMPONENT = 255  # bytes: the file name limit of ext4, NTFS (in UTF-16 units) and APFS
MAX_PATH = 1024
# Names Windows maps to devices whatever the extension ("NUL.txt" writes to nowhere).
_DEVICES = re.compile(r"(?i)^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$")


def unsafe_path(rel: str) -> str | None:
    """Why a listed path may not become a file in the staging folder, or None if it may."""
    if not rel:
        return "an empty name"
    if len(rel) > MAX_PATH:
        return f"a path longer than {MAX_PATH} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in rel):
        return "a control character (NUL, newline, ...)"
    if "\\" in rel:
        return "a backslash (a Windows path separator)"
    if ":" in rel:
        return "a colon (a Windows drive letter or stream name)"
    if rel.startswith("/"):
        return "an absolute path"
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return "an empty, '.' or '..' path component"
        if len(part.encode("utf-8")) > MAX_COMPONENT:
            return f"a name longer than {MAX_COMPONENT} bytes"
        if part[-1] in ". ":
            return "a name ending in '.' or ' ' (Windows drops them)"
        if _DEVICES.match(part):
            return "a Windows device name"
        if part.endswith(PART) or part.startswith(".deskhand-"):
            return "the name of a file the download itself writes"
    return None


def redirect_refusal(source: str, target: str) -> str | None:
    """Why a redirect from URL `source` to URL `target` must not be followed, or None.

    The rule is per hop, so a chain can never walk around it: a loopback endpoint (a local
    mirror, chosen so that nothing leaves the machine) may only send us to loopback; any other
    never to this machine (loopback, 0.0.0.0), and a public one never to a private or link-local
    address (a server must not aim our requests at local services); https never drops to http.
    Loopback is decided from the address the name stands for without a DNS query
    (`agent.offline.is_loopback_host`), never by a name that a resolver could answer. A public
    name that resolves to a private address is not caught (that would need the resolver).
    """
    src, dst = urllib.parse.urlsplit(source), urllib.parse.urlsplit(target)
    if dst.scheme not in ("http", "https"):
        return f"{dst.scheme or 'no'} scheme"
    if src.scheme == "https" and dst.scheme == "http":
        return "it drops https for plain http"
    here, there = _place(src.hostname or ""), _place(dst.hostname or "")
    if here == "this machine" and there != "this machine":
        return "a download from this machine may not be sent to another host"
    if there == "this machine" and here != "this machine":
        return "a remote server may not send requests to this machine"
    if there == "local network" and here == "internet":
        return "a server on the internet may not send requests into the local network"
    return None


def _place(host: str) -> str:
    """"this machine", "local network" or "internet" for a URL's host (names: no DNS query)."""
    if is_loopback_host(host):
        return "this machine"
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return "internet"  # a name that only a resolver could place
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified or address.is_loopback:  # 0.0.0.0 reaches this machine on Linux
        return "this machine"
    return "local network" if address.is_private or address.is_link_local else "internet"


def _check_redirect(response: Any) -> None:
    """An httpx response hook: raise ModelError instead of following a refused redirect."""
    if not response.has_redirect_location:
        return
    # The target as the HTTP client itself parses it (the URL it would connect to); a Location
    # that another parser would read differently ("http://a\\@b/") is refused as well.
    url = response.request.url.join(response.headers["Location"])
    target = str(url)
    why = redirect_refusal(str(response.request.url), target)
    if why is None and (urllib.parse.urlsplit(target).hostname or "") != url.host.lower():
        why = "its address reads differently to different URL parsers"
    if why:
        raise ModelError(f"refused a redirect from {response.request.url.host} to "
                         f"{url.host[:100]!r}: {why}")


_policy_installed = False


def install_redirect_policy() -> None:
    """Make every HTTP client huggingface_hub creates in this process check its redirects.

    huggingface_hub shares one client (and recreates it after a connection error), so the hook
    goes into the client factory, once per process.
    """
    global _policy_installed
    if _policy_installed:
        return
    try:
        from huggingface_hub import set_client_factory
        from huggingface_hub.utils._http import default_client_factory
    except ImportError as exc:  # before 1.0, huggingface_hub used requests
        raise ModelError("downloading needs huggingface_hub 1.0 or newer: "
                         "pip install -U 'deskhand[onnx]'") from exc

    def factory() -> Any:  # huggingface_hub's own client, plus the redirect check
        client = default_client_factory()
        hooks = client.event_hooks
        client.event_hooks = {**hooks, "response": [*hooks.get("response", []), _check_redirect]}
        return client

    set_client_factory(factory)
    _policy_installed = True
