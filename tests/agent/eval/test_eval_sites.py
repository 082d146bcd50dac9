"""The offline sites: every page and linked resource loads, nothing points off the machine,
and the stateful endpoints behave (including reset)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from agent.eval.server import SITES_ROOT, SiteServer

SITES = ["recipes", "shop", "dictionary", "news", "flights", "code", "archive", "hotels",
         "sports", "courses"]
_URL = re.compile(r"""https?://[^\s"'<>)`]+""")
_LINK = re.compile(r"""(?:href|src|action)\s*=\s*["']([^"'#]+)["']""")
_JS_PATH = re.compile(r"""["'`](/[\w-]+(?:/[\w.-]*)*\.(?:html|json|js|css))(?=["'`?])""")


@pytest.fixture(scope="module")
def server() -> Iterator[SiteServer]:
    with SiteServer() as srv:
        yield srv


def get(srv: SiteServer, path: str) -> tuple[int, bytes, str]:
    try:
        req = urllib.request.Request(srv.base_url + path, headers=srv.control_headers())
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), ""


def post(srv: SiteServer, path: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(srv.base_url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", **srv.control_headers()},
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_no_external_urls_anywhere() -> None:
    for f in SITES_ROOT.rglob("*"):
        if f.suffix not in (".html", ".js", ".css", ".json", ".svg") or "_build" in f.parts:
            continue
        for u in _URL.findall(f.read_text(encoding="utf-8")):
            host = urlsplit(u).hostname or ""
            assert host in ("127.0.0.1", "localhost"), f"{f}: external URL {u}"


def test_size_budget() -> None:
    total = sum(f.stat().st_size for f in SITES_ROOT.rglob("*") if f.is_file())
    assert total < 3_000_000, total


def test_every_page_and_resource_loads(server: SiteServer) -> None:
    pages = ["/", "/search", "/search?q=soup", "/sites.json"]
    for site in SITES:
        pages += [f"/{site}/", f"/{site}/data.json", f"/{site}/search-index.json"]
        pages += [f"/{site}/{p.name}" for p in sorted((SITES_ROOT / site).glob("*.html"))]
    seen: set[str] = set()
    todo = list(pages)
    while todo:
        path = todo.pop()
        key = urlsplit(path).path
        if key in seen:
            continue
        seen.add(key)
        status, body, _ = get(server, path)
        assert status == 200, f"{path}: HTTP {status}"
        if not any(key.endswith(s) for s in (".html", ".js", ".css", "/")) and key != "/search":
            continue
        text = body.decode("utf-8")
        refs = _LINK.findall(text) + _JS_PATH.findall(text)
        for ref in refs:
            if "${" in ref or ref.startswith(("javascript:", "mailto:")):
                continue
            target = urljoin(path, ref)
            assert "://" not in target or target.startswith(server.base_url), f"{path} -> {ref}"
            todo.append(urlsplit(target).path or "/")
    assert len(seen) > 6 * len(SITES)


def test_hidden_and_missing_paths(server: SiteServer) -> None:
    assert get(server, "/_build/build.py")[0] == 404
    assert get(server, "/../pyproject.toml")[0] == 404
    assert get(server, "/nope/")[0] == 404
    assert get(server, "/shop")[0] == 200  # redirected to /shop/


def test_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SiteServer(host="0.0.0.0")
    SiteServer(host="::1")  # allowed, not started


def test_shop_flow_and_reset(server: SiteServer) -> None:
    server.reset()
    assert post(server, "/shop/api/cart/add", {"sku": "P100", "qty": 2, "color": "Black"})[0] == 200
    assert post(server, "/shop/api/cart/add", {"sku": "NOPE"})[0] == 400
    assert post(server, "/shop/api/order", {})[0] == 400  # no shipping yet
    assert post(server, "/shop/api/checkout", {"name": "A"})[0] == 400
    ship = {"name": "A B", "street": "1 Road", "city": "Town", "zip": "12345"}
    assert post(server, "/shop/api/checkout", ship)[0] == 200
    st = json.loads(get(server, "/__state")[1])
    assert st["shop"]["cart"][0]["qty"] == 2 and st["shop"]["order_placed"] is False
    assert st["shop"]["checkout"]["zip"] == "12345"
    assert post(server, "/shop/api/order", {"card_name": "A B"})[0] == 200
    st = server.state()
    assert st["shop"]["order_placed"] and st["shop"]["binding_done"] and not st["shop"]["cart"]
    assert post(server, "/__reset", {})[0] == 200
    st = server.state()
    assert st["shop"]["orders"] == [] and not st["shop"]["order_placed"]


def test_travel_news_code_endpoints(server: SiteServer) -> None:
    server.reset()
    for site, who in (("flights", "passengers"), ("hotels", "guest")):
        assert post(server, f"/{site}/api/book", {})[0] == 400
        assert post(server, f"/{site}/api/select", {"id": "X1"})[0] == 200
        assert post(server, f"/{site}/api/{who}", {"first": "Ann"})[0] == 200
        assert not server.state()[site]["booking_confirmed"]
        assert post(server, f"/{site}/api/book", {})[0] == 200
        assert server.state()[site]["booking_confirmed"]
    assert post(server, "/news/api/subscribe", {"email": "a@b.c"})[0] == 200
    assert post(server, "/code/api/star", {"repo": "a/b"})[0] == 200
    assert server.state()["code"]["stars"] == ["a/b"]
    assert post(server, "/code/api/issue", {"repo": "a/b", "title": "T"})[0] == 200
    free = {"course": "c101", "name": "A", "email": "a@b.c", "paid": False}
    assert post(server, "/courses/api/enroll", free)[0] == 200
    assert not server.state()["courses"]["binding_done"]
    assert post(server, "/courses/api/enroll", {**free, "paid": True})[0] == 200
    assert server.state()["courses"]["paid_enrollment"]
    assert post(server, "/nope/api/x", {})[0] == 404
    assert json.loads(get(server, "/shop/api/state")[1])["cart"] == []
    server.reset()
    assert not any(s["binding_done"] for s in server.state().values())


def test_sites_listed_on_landing_page(server: SiteServer) -> None:
    html = get(server, "/")[1].decode()
    for site in SITES:
        assert f'href="/{site}/"' in html
    listed = {s["slug"] for s in json.loads(get(server, "/sites.json")[1])}
    assert set(SITES) <= listed
    assert Path(SITES_ROOT / "search" / "index.html").exists()


def test_site_data_matches_generators(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The committed data files are exactly what assets/sites/_build produces (deterministic)."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(SITES_ROOT / "_build"))
    common = importlib.import_module("common")
    monkeypatch.setattr(common, "SITES", tmp_path)
    for site in SITES:
        sys.modules.pop(f"{site}_data", None)
        importlib.import_module(f"{site}_data").build()
        for name in ("data.json", "search-index.json"):
            fresh = (tmp_path / site / name).read_bytes()
            assert fresh == (SITES_ROOT / site / name).read_bytes(), f"{site}/{name} is stale: rerun build.py"
        sys.modules.pop(f"{site}_data", None)
