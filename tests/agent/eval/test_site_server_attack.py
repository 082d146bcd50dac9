"""The offline sites' server under attack: cross-site writes, DNS rebinding, hostile bytes.

Requests are written byte for byte on raw sockets, so each test sends exactly the hostile request
a browser page, a rebinding name or a local process could send.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from agent.eval.browser import Browser
from agent.eval.cdp import Cdp, CdpError
from agent.eval.server import SiteServer

CART_ADD = json.dumps({"sku": "P100", "qty": 1}).encode()


@pytest.fixture()
def srv() -> Iterator[SiteServer]:
    with SiteServer(request_timeout=2.0) as server:
        yield server


def port(srv: SiteServer) -> int:
    return int(srv.base_url.rsplit(":", 1)[1])


def own_host(srv: SiteServer) -> str:
    return f"127.0.0.1:{port(srv)}"


def exchange(srv: SiteServer, data: bytes, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """Send raw bytes, read until the server closes; (status or None if no answer, raw reply)."""
    family = socket.AF_INET6 if srv.base_url.startswith("http://[") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect((srv.host, port(srv)))
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may refuse and close before reading everything
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except TimeoutError:
            pass
        except ConnectionResetError:
            pass
    head = reply.split(b"\r\n", 1)[0].split()
    status = int(head[1]) if len(head) >= 2 and head[1].isdigit() else None
    return status, reply


def request(srv: SiteServer, method: str, path: str, *, headers: dict[str, str] | None = None,
            body: bytes = b"", host: str | None = None, version: str = "HTTP/1.1",
            timeout: float = 5.0) -> tuple[int | None, bytes]:
    """One request with exactly these headers (Host first unless host='' drops it)."""
    lines = [f"{method} {path} {version}"]
    host = own_host(srv) if host is None else host
    if host:
        lines.append(f"Host: {host}")
    hdrs = dict(headers or {})
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in hdrs):
        hdrs["Content-Length"] = str(len(body))
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    return exchange(srv, data, timeout)


def json_post(srv: SiteServer, path: str, body: bytes = CART_ADD, **extra: str) -> int | None:
    headers = {"Content-Type": "application/json", **extra}
    return request(srv, "POST", path, headers=headers, body=body)[0]


def healthy(srv: SiteServer) -> bool:
    """The server still answers a normal page request."""
    status, reply = request(srv, "GET", "/shop/")
    return status == 200 and b"<html" in reply.lower()


# -- finding 1: cross-site writes ---------------------------------------------------------------

def test_cross_site_text_plain_post_places_nothing(srv: SiteServer) -> None:
    # What <form enctype="text/plain"> or fetch(no-cors) on any web page sends: no preflight.
    status, _ = request(srv, "POST", "/shop/api/cart/add", body=CART_ADD, headers={
        "Content-Type": "text/plain", "Origin": "http://evil.example",
        "Sec-Fetch-Site": "cross-site", "Referer": "http://evil.example/page"})
    assert status == 403
    assert srv.state()["shop"]["cart"] == []


@pytest.mark.parametrize("extra", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},  # sandboxed iframes, data: and file: pages
    {"Origin": "http://127.0.0.1:1"},  # another local server
    {"Origin": "http://localhost:{port}"},  # ours, but not the Host this request names
    {"Origin": "http://127.0.0.1:{port}", "Referer": "http://localhost:{port}/shop/"},
    {"Origin": "HTTP://127.0.0.1:{port}/"},
    {"Origin": "https://127.0.0.1:{port}"},
    {"Origin": "http://127.0.0.1:{port}.evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port on 127.0.0.1 is the same site
    {"Referer": "http://evil.example/x"},
    {"Referer": "not a url"},
])
def test_foreign_origin_json_post_refused(srv: SiteServer, extra: dict[str, str]) -> None:
    extra = {k: v.format(port=port(srv)) for k, v in extra.items()}
    assert json_post(srv, "/shop/api/cart/add", **extra) == 403
    assert srv.state()["shop"]["cart"] == []


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "", "application/jsonx"])
def test_non_json_content_type_refused_even_without_origin(srv: SiteServer, ctype: str) -> None:
    headers = {"Content-Type": ctype} if ctype else {}
    status, _ = request(srv, "POST", "/shop/api/cart/add", headers=headers, body=CART_ADD)
    assert status == 415
    assert srv.state()["shop"]["cart"] == []


def test_same_origin_browser_post_still_works(srv: SiteServer) -> None:
    # Exactly what Chromium sends for DH.post() from a site page.
    origin = f"http://{own_host(srv)}"
    assert json_post(srv, "/shop/api/cart/add", Origin=origin, **{
        "Sec-Fetch-Site": "same-origin", "Referer": origin + "/shop/product.html?sku=P100",
        "Content-Type": "application/json; charset=UTF-8"}) == 200
    lh = f"localhost:{port(srv)}"
    status, _ = request(srv, "POST", "/shop/api/cart/add", host=lh, body=CART_ADD, headers={
        "Content-Type": "application/json", "Origin": f"http://{lh}"})
    assert status == 200
    assert srv.state()["shop"]["cart"][0]["qty"] == 2


def test_get_never_changes_state(srv: SiteServer) -> None:
    # An <img src=…/shop/api/order> on any page sends a GET with no Origin and no body.
    srv.site_state.call("shop", "cart/add", {"sku": "P100"})
    srv.site_state.call("shop", "checkout", {"name": "A", "street": "S", "city": "C", "zip": "1"})
    status, _ = request(srv, "GET", "/shop/api/order")
    assert status == 405
    assert srv.state()["shop"]["order_placed"] is False
    assert request(srv, "GET", "/shop/api/state")[0] == 200


def test_control_endpoints_need_the_server_token(srv: SiteServer) -> None:
    srv.site_state.call("shop", "cart/add", {"sku": "P100"})
    assert json_post(srv, "/__reset", b"{}") == 403
    assert json_post(srv, "/__reset", b"{}", **{"X-Deskhand-Token": "guess"}) == 403
    assert srv.state()["shop"]["cart"]
    assert request(srv, "GET", "/__state")[0] == 403
    assert request(srv, "GET", "/%5F%5Fstate")[0] == 403
    assert request(srv, "GET", "/shop/api/../../__state")[0] == 403
    status, reply = request(srv, "GET", "/__state", headers=srv.control_headers())
    assert status == 200 and json.loads(reply.split(b"\r\n\r\n", 1)[1])["shop"]["cart"]
    assert json_post(srv, "/__reset", b"{}", **srv.control_headers()) == 200
    assert srv.state()["shop"]["cart"] == []
    assert SiteServer().token != SiteServer().token


# -- finding 2: Host (DNS rebinding) ------------------------------------------------------------

@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:{port}", "rebind.evil.example:{port}", "127.0.0.1",
    "127.0.0.1:1", "localhost", "localhost.:{port}", "LOCALHOST.:{port}",
    "anything.localhost:{port}", "127.1:{port}", "2130706433:{port}", "[::1]:{port}",
    "[::ffff:127.0.0.1]:{port}", "127.0.0.1:{port}@evil.example", "127.0.0.1:0{port}",
    "127.0.0.1:{port}:80", " ", "127.0.0.1:{port}/x",
])
def test_foreign_host_refused(srv: SiteServer, host: str) -> None:
    host = host.format(port=port(srv))
    for path in ("/__state", "/shop/api/state", "/"):
        status, reply = request(srv, "GET", path, host=host, headers=srv.control_headers())
        assert status in (400, 421), (host, path, status)
        assert b"cart" not in reply


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LocalHost:{port}"])
def test_own_host_accepted(srv: SiteServer, host: str) -> None:
    assert request(srv, "GET", "/shop/", host=host.format(port=port(srv)))[0] == 200


def test_missing_or_duplicated_host_refused(srv: SiteServer) -> None:
    assert request(srv, "GET", "/shop/", host="", version="HTTP/1.0")[0] == 400
    own = own_host(srv)
    for second in ("evil.example", own):
        status, _ = exchange(srv, f"GET /__state HTTP/1.1\r\nHost: {own}\r\nHost: {second}\r\n"
                                  f"X-Deskhand-Token: {srv.token}\r\n\r\n".encode())
        assert status == 400


@pytest.mark.parametrize("target", ["http://evil.example/__state", "http://{own}/__state",
                                    "//evil.example/__state", "*", "__state"])
def test_absolute_and_odd_request_targets_refused(srv: SiteServer, target: str) -> None:
    target = target.format(own=own_host(srv))
    status, reply = request(srv, "GET", target, headers=srv.control_headers())
    # Python itself folds a leading "//" to "/", so that one is an unknown path here.
    assert status == (404 if target.startswith("//") else 400), status
    assert b"cart" not in reply


def test_ipv6_loopback_server_checks_host_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = SiteServer(host="::1", request_timeout=2.0)
        server.start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    with server:
        p = port(server)
        assert server.base_url == f"http://[::1]:{p}"
        assert request(server, "GET", "/shop/", host=f"[::1]:{p}")[0] == 200
        assert request(server, "GET", "/shop/", host=f"127.0.0.1:{p}")[0] == 421
        assert request(server, "GET", "/shop/", host=f"[0:0:0:0:0:0:0:1]:{p}")[0] == 421
        status, _ = request(server, "POST", "/shop/api/cart/add", host=f"[::1]:{p}",
                            body=CART_ADD, headers={"Content-Type": "application/json",
                                                    "Origin": f"http://[::1]:{p}"})
        assert status == 200


# -- finding 3: hostile bytes -------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/shop/%00", "/%00/../__state", "/shop/index.html%00.js",
                                  "/shop/%0d%0aSet-Cookie:x", "/" + "a" * 5000,
                                  "/shop/%c0%ae%c0%ae/", "/shop/api/state%00"])
def test_nul_and_odd_paths_answered_not_dropped(srv: SiteServer, path: str) -> None:
    status, reply = request(srv, "GET", path)
    assert status in (400, 404), (path, reply[:200])
    assert b"Set-Cookie" not in reply.split(b"\r\n\r\n", 1)[0]
    assert healthy(srv)


@pytest.mark.parametrize("length,expected", [
    ("-1", 400), ("-100", 400), ("abc", 400), ("+5", 400), ("1_0", 400), ("0x10", 400),
    ("5, 5", 400), ("99999999999999999999", 400), ("1000000000", 413), (str((1 << 20) + 1), 413),
])
def test_bad_content_length_answered_at_once(srv: SiteServer, length: str, expected: int) -> None:
    t0 = time.monotonic()
    status, _ = request(srv, "POST", "/shop/api/cart/add", body=CART_ADD, headers={
        "Content-Type": "application/json", "Content-Length": length}, timeout=10)
    assert status == expected
    assert time.monotonic() - t0 < srv.request_timeout  # answered, not timed out
    assert srv.state()["shop"]["cart"] == []
    assert healthy(srv)


def test_duplicated_content_length_refused(srv: SiteServer) -> None:
    own = own_host(srv)
    data = (f"POST /shop/api/cart/add HTTP/1.1\r\nHost: {own}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(CART_ADD)}\r\nContent-Length: 0\r\n\r\n").encode() + CART_ADD
    assert exchange(srv, data)[0] == 400


def test_chunked_body_refused_and_not_smuggled(srv: SiteServer) -> None:
    own = own_host(srv)
    smuggled = f"GET /shop/api/state HTTP/1.1\r\nHost: {own}\r\n\r\n".encode()
    chunk = CART_ADD
    data = (f"POST /shop/api/cart/add HTTP/1.1\r\nHost: {own}\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n{len(chunk):x}\r\n").encode() + chunk + \
        b"\r\n0\r\n\r\n" + smuggled
    status, reply = exchange(srv, data)
    assert status == 501
    assert reply.count(b"HTTP/1.") == 1  # one answer: the smuggled request was never parsed
    assert srv.state()["shop"]["cart"] == []


def test_huge_body_refused_without_reading_it(srv: SiteServer) -> None:
    body = b"{" + b" " * (2 << 20) + b"}"
    status, _ = request(srv, "POST", "/shop/api/cart/add", body=body,
                        headers={"Content-Type": "application/json"})
    assert status == 413
    assert healthy(srv)


@pytest.mark.parametrize("body", [b'{"sku": "P100", "qty": 1e999}', b"[" * 200_000,
                                  b'{"sku": "P100", "qty": "NaN"}', b"\xff\xfe{}",
                                  b'{"sku": {"a": 1}, "qty": [1]}'])
def test_hostile_json_is_a_400_not_a_crash(srv: SiteServer, body: bytes,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert json_post(srv, "/shop/api/cart/add", body) == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert healthy(srv)


def test_short_body_times_out_instead_of_holding_a_thread(srv: SiteServer) -> None:
    t0 = time.monotonic()
    status, _ = request(srv, "POST", "/shop/api/cart/add", body=b"{", headers={
        "Content-Type": "application/json", "Content-Length": "100"}, timeout=10)
    assert status == 408 and time.monotonic() - t0 < 4


def test_slow_client_cut_off_at_the_request_deadline(srv: SiteServer) -> None:
    # One byte at a time, each well within any per-read timeout: the deadline still ends it.
    with socket.create_connection((srv.host, port(srv)), timeout=10) as sock:
        t0 = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        closed = False
        while time.monotonic() - t0 < 8:
            try:
                sock.sendall(b"X")
                sock.settimeout(0.3)
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        assert closed and time.monotonic() - t0 < 4.5
    assert healthy(srv)
    assert 0 < SiteServer().request_timeout <= 60


def test_handler_bug_is_a_500_and_the_server_keeps_serving(
        srv: SiteServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import agent.eval.server as server_mod

    def broken(st: dict, body: dict) -> None:
        raise RuntimeError("bug")

    monkeypatch.setitem(server_mod._HANDLERS, ("recipes", "save"), broken)
    with caplog.at_level(logging.ERROR, logger="agent.eval.server"):
        status, reply = request(srv, "POST", "/recipes/api/save", body=b'{"id": "x"}',
                                headers={"Content-Type": "application/json"})
    assert status == 500 and b"internal server error" in reply and b"bug" not in reply
    assert any("failed" in r.getMessage() for r in caplog.records)
    assert healthy(srv)


def test_many_idle_connections_do_not_exhaust_the_server(srv: SiteServer) -> None:
    socks = [socket.create_connection((srv.host, port(srv)), timeout=5) for _ in range(150)]
    try:
        time.sleep(0.3)
        assert threading.active_count() < 100  # bounded: at most MAX_CONNECTIONS handlers
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 5
    while not healthy(srv):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_fuzzed_requests_never_kill_the_server(srv: SiteServer,
                                               caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(10)
    own = own_host(srv).encode()
    pieces = [b"GET", b"POST", b"HEAD", b" ", b"/", b"/__state", b"/shop/api/order", b"%00",
              b"HTTP/1.1", b"HTTP/9.9", b"\r\n", b"\n", b"\r", b":", b"Host: ", own,
              b"Content-Length: ", b"-1", b"99999999", b"Transfer-Encoding: chunked",
              b"Origin: null", b"\x00", b"\xff", b"Expect: 100-continue", b"{", b"}"]
    deadline = time.monotonic() + 20
    sent = 0
    with caplog.at_level(logging.ERROR):
        while sent < 300 and time.monotonic() < deadline:
            if rng.random() < 0.5:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
            else:
                data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
            exchange(srv, data + b"\r\n\r\n", timeout=3)
            sent += 1
    assert sent >= 50
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert healthy(srv)
    assert srv.state()["shop"]["order_placed"] is False


def test_every_well_framed_request_gets_an_answer(srv: SiteServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # Random percent-encoded bytes in path and query, random junk headers: always some status.
    rng = random.Random(11)
    own = own_host(srv)
    hostile = [0x00, 0x0A, 0x0D, 0x2E, 0x2F, 0x5C, 0x5F, 0x7F, 0xC0, 0xFF, rng.randrange(256)]
    deadline = time.monotonic() + 20
    sent = 0
    with caplog.at_level(logging.ERROR):
        while sent < 150 and time.monotonic() < deadline:
            path = "".join(f"%{rng.choice(hostile):02X}" if rng.random() < 0.3 else
                           rng.choice("abc/._-~") for _ in range(rng.randrange(1, 30)))
            query = "".join(f"%{rng.randrange(256):02X}" for _ in range(rng.randrange(0, 8)))
            junk = bytes(rng.choice(b"abcXYZ:;=, \t\x00\x7f\xff") for _ in range(rng.randrange(60)))
            method = rng.choice(["GET", "HEAD", "POST"])
            data = (f"{method} /{path}?{query} HTTP/1.1\r\nHost: {own}\r\n".encode() + b"X-J: " +
                    junk.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n\r\n")
            status, reply = exchange(srv, data, timeout=3)
            assert status is not None and status < 600, (data, reply[:100])
            sent += 1
    assert sent >= 50
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert healthy(srv)


def test_json_answers_are_not_sniffable(srv: SiteServer) -> None:
    _, reply = request(srv, "GET", "/shop/api/state")
    head = reply.split(b"\r\n\r\n", 1)[0].lower()
    assert b"x-content-type-options: nosniff" in head
    assert b"cross-origin-resource-policy: same-origin" in head


# -- the same attacks from a real browser -------------------------------------------------------

def wait_for(cdp: Cdp, check: str, timeout: float = 15.0) -> bool:
    """Poll a page expression until it is true (False on time-out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cdp.evaluate(check) is True:
                return True
        except CdpError:
            pass  # a navigation replaced the context
        time.sleep(0.05)
    return False


@pytest.mark.xvfb
def test_real_chromium_pages_post_but_foreign_pages_cannot(xvfb_display: str) -> None:
    """The sites' own JavaScript still works; another origin's page and an opaque (data:) page
    fail with every request a page can send without the server's help."""
    with SiteServer() as srv, SiteServer() as evil, Browser(xvfb_display) as browser:
        target = srv.base_url
        cdp = Cdp(browser.start(target + "/shop/product.html?sku=P100")).connect()
        try:
            assert wait_for(cdp, "typeof DH !== 'undefined'")
            ok = cdp.evaluate('DH.post("/shop/api/cart/add", {sku: "P100", qty: 1})'
                              '.then(r => r.ok)')
            assert ok is True
            assert srv.state()["shop"]["cart"][0]["qty"] == 1
            attacks = f"""(async () => {{
              const t = {json.dumps(target)}, body = JSON.stringify({{sku: "P100", qty: 5}});
              const out = [];
              const tries = [
                () => fetch(t + "/shop/api/cart/add", {{method: "POST", mode: "no-cors",
                       headers: {{"Content-Type": "text/plain"}}, body}}),
                () => fetch(t + "/shop/api/cart/add", {{method: "POST",
                       headers: {{"Content-Type": "application/json"}}, body}}),
                () => fetch(t + "/__reset", {{method: "POST", mode: "no-cors", body: "{{}}"}}),
                () => fetch(t + "/__state").then(r => r.text()),
                () => fetch(t + "/shop/api/state").then(r => r.text()),
                () => fetch(t + "/shop/api/order", {{mode: "no-cors"}}),
              ];
              for (const f of tries) {{
                try {{ const r = await f(); out.push(typeof r === "string" ? r : "sent"); }}
                catch (e) {{ out.push("error"); }}
              }}
              const form = document.createElement("form");
              form.method = "POST"; form.enctype = "text/plain"; form.target = "sink";
              form.action = t + "/shop/api/cart/add";
              const field = document.createElement("input");
              field.name = '{{"sku":"P100","qty":7,"x":"'; field.value = '"}}';
              form.appendChild(field);
              const sink = document.createElement("iframe"); sink.name = "sink";
              document.body.appendChild(sink); document.body.appendChild(form);
              await new Promise(done => {{ sink.onload = done; form.submit();
                                           setTimeout(done, 3000); }});
              return out;
            }})()"""
            for page in (evil.base_url + "/shop/", "data:text/html,<body>attacker</body>"):
                cdp.call("Page.navigate", {"url": page})
                assert wait_for(cdp, f"location.href.startsWith({json.dumps(page[:12])}) && "
                                     "document.readyState === 'complete'")
                results = cdp.evaluate(attacks)
                assert not any("cart" in r for r in results), results  # nothing was read
                assert srv.state()["shop"]["cart"][0]["qty"] == 1, page  # nothing was written
        finally:
            cdp.close()
