"""Verified offline mode, tested without sending any packet.

The real connect underneath is replaced by a recorder before the guard is installed, so a
non-loopback attempt can be shown never to reach it. No test points at a real outside address.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from agent.offline import OfflineGuard, OfflineViolation, is_loopback_host


class Recorder:
    def __init__(self) -> None:
        self.calls: list[object] = []

    def __call__(self, sock, address):  # stands in for the real socket.connect
        self.calls.append(address)
        return None


@pytest.fixture
def underneath(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(socket.socket, "connect", recorder)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda s, a: recorder(s, a) or 0)
    return recorder


@pytest.mark.parametrize("address", [("10.1.2.3", 80), ("192.0.2.7", 443), ("2001:db8::1", 443, 0, 0)])
def test_non_loopback_connect_never_reaches_the_real_connect(underneath: Recorder, address) -> None:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with OfflineGuard() as guard, socket.socket(family, socket.SOCK_STREAM) as s:
        with pytest.raises(OfflineViolation):
            s.connect(address)
        with pytest.raises(OfflineViolation):
            s.connect_ex(address)
    assert underneath.calls == []
    assert any(a.destination.startswith(address[0]) for a in guard.attempts)


def test_loopback_and_unix_sockets_pass_through(underneath: Recorder) -> None:
    with OfflineGuard(), socket.socket() as s:
        s.connect(("127.0.0.1", 9))
        s.connect(("localhost", 9))
    # Names are resolved by the guard (never by a resolver) and the address is what connects.
    assert underneath.calls == [("127.0.0.1", 9), ("127.0.0.1", 9)]


def test_name_resolution_of_outside_hosts_is_refused(underneath: Recorder) -> None:
    with OfflineGuard(), pytest.raises(OfflineViolation):
        socket.getaddrinfo("example.invalid", 443)
    with OfflineGuard():
        assert socket.getaddrinfo("127.0.0.1", 80)


def test_urllib_fails_cleanly_and_guard_uninstalls(underneath: Recorder) -> None:
    patched = socket.socket.connect
    with OfflineGuard(), pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen("http://10.9.8.7:81/", timeout=1)
    assert underneath.calls == []
    assert socket.socket.connect is patched  # restored to what was there before


def test_nesting_is_reentrant(underneath: Recorder) -> None:
    with OfflineGuard():
        with OfflineGuard():
            assert OfflineGuard.active()
        assert OfflineGuard.active()
    assert not OfflineGuard.active()


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("10.0.0.1", False), ("example.com", False), ("", False), ("0.0.0.0", False),
])
def test_is_loopback_host(host: str, expected: bool) -> None:
    assert is_loopback_host(host) is expected


def test_explicitly_allowed_lan_host_passes_others_do_not(underneath: Recorder) -> None:
    with OfflineGuard(allow_hosts=("10.1.2.3",)), socket.socket() as s:
        s.connect(("10.1.2.3", 8080))
        with pytest.raises(OfflineViolation):
            s.connect(("10.1.2.4", 8080))
    assert underneath.calls == [("10.1.2.3", 8080)]
    with OfflineGuard(), socket.socket() as s, pytest.raises(OfflineViolation):
        s.connect(("10.1.2.3", 8080))  # the allowance ended with its guard
