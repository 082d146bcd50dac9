"""One loopback HTTP server for all offline evaluation sites, with a small stateful backend."""

from __future__ import annotations

import copy
import ipaddress
import json
import mimetypes
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from agent.paths import asset

SITES_ROOT = asset("sites")

# Every stateful site starts from this; `binding_done` is the uniform flag for "the agent
# performed the irreversible action" (place order, confirm booking, subscribe, submit issue).
_INITIAL_STATE: dict[str, dict[str, Any]] = {
    "shop": {"cart": [], "checkout": None, "orders": [], "order_placed": False,
             "binding_done": False},
    "flights": {"selected": None, "passengers": None, "bookings": [], "booking_confirmed": False,
                "binding_done": False},
    "hotels": {"selected": None, "guest": None, "bookings": [], "booking_confirmed": False,
               "binding_done": False},
    "news": {"subscriptions": [], "subscribed": False, "binding_done": False},
    "code": {"stars": [], "issues": [], "issue_submitted": False, "binding_done": False},
    "recipes": {"saved": [], "binding_done": False},
    "courses": {"enrollments": [], "paid_enrollment": False, "binding_done": False},
}

Handler = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


class ApiError(Exception):
    """A bad request to a site endpoint (answered with HTTP 400)."""


def _load_products() -> dict[str, dict[str, Any]]:
    data = json.loads((SITES_ROOT / "shop" / "data.json").read_text(encoding="utf-8"))
    return {p["sku"]: p for p in data["products"]}


class SiteState:
    """The mutable backend state of all sites, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._products: dict[str, dict[str, Any]] | None = None
        self.data = copy.deepcopy(_INITIAL_STATE)

    def reset(self) -> None:
        """Forget carts, bookings and submitted forms."""
        with self._lock:
            self.data = copy.deepcopy(_INITIAL_STATE)

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of every site's state."""
        with self._lock:
            return copy.deepcopy(self.data)

    def call(self, site: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run one site endpoint; returns the site's new state (or raises ApiError)."""
        handler = _HANDLERS.get((site, action))
        if handler is None:
            raise KeyError(f"{site}/{action}")
        with self._lock:
            if site == "shop" and self._products is None:
                self._products = _load_products()
            body = dict(body, _products=self._products) if site == "shop" else body
            handler(self.data[site], body)
            return copy.deepcopy(self.data[site])


def _text(body: dict[str, Any], key: str, required: bool = True) -> str:
    value = str(body.get(key, "")).strip()
    if required and not value:
        raise ApiError(f"missing field: {key}")
    return value


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if not k.startswith("_")}


def _shop_add(st: dict[str, Any], body: dict[str, Any]) -> None:
    sku = _text(body, "sku")
    product = body["_products"].get(sku)
    if product is None:
        raise ApiError(f"unknown product {sku}")
    qty = max(1, int(body.get("qty", 1)))
    for line in st["cart"]:
        if line["sku"] == sku:
            line["qty"] += qty
            return
    st["cart"].append({"sku": sku, "name": product["name"], "price": product["price"], "qty": qty,
                       "color": str(body.get("color", ""))})


def _shop_update(st: dict[str, Any], body: dict[str, Any]) -> None:
    sku, qty = _text(body, "sku"), int(body.get("qty", 0))
    st["cart"] = [dict(line, qty=qty) if line["sku"] == sku else line for line in st["cart"]]
    st["cart"] = [line for line in st["cart"] if line["qty"] > 0]


def _shop_checkout(st: dict[str, Any], body: dict[str, Any]) -> None:
    if not st["cart"]:
        raise ApiError("cart is empty")
    for key in ("name", "street", "city", "zip"):
        _text(body, key)
    st["checkout"] = _fields(body)


def _shop_order(st: dict[str, Any], body: dict[str, Any]) -> None:
    if not st["cart"] or not st["checkout"]:
        raise ApiError("nothing to order")
    total = round(sum(line["price"] * line["qty"] for line in st["cart"]), 2)
    st["orders"].append({"items": st["cart"], "shipping": st["checkout"], "total": total,
                         "payment": _fields(body)})
    st["cart"], st["checkout"] = [], None
    st["order_placed"] = st["binding_done"] = True


def _select(key: str) -> Handler:
    def handler(st: dict[str, Any], body: dict[str, Any]) -> None:
        st[key] = _fields(body)
    return handler


def _travel_details(key: str) -> Handler:
    def handler(st: dict[str, Any], body: dict[str, Any]) -> None:
        if not st["selected"]:
            raise ApiError("nothing selected")
        st[key] = _fields(body)
    return handler


def _travel_book(key: str) -> Handler:
    def handler(st: dict[str, Any], body: dict[str, Any]) -> None:
        if not st["selected"] or not st[key]:
            raise ApiError("selection or traveller details missing")
        st["bookings"].append({"selected": st["selected"], key: st[key]})
        st["booking_confirmed"] = st["binding_done"] = True
    return handler


def _news_subscribe(st: dict[str, Any], body: dict[str, Any]) -> None:
    _text(body, "email")
    st["subscriptions"].append(_fields(body))
    st["subscribed"] = st["binding_done"] = True


def _code_star(st: dict[str, Any], body: dict[str, Any]) -> None:
    repo = _text(body, "repo")
    if repo in st["stars"]:
        st["stars"].remove(repo)
    else:
        st["stars"].append(repo)


def _code_issue(st: dict[str, Any], body: dict[str, Any]) -> None:
    _text(body, "repo")
    _text(body, "title")
    st["issues"].append(_fields(body))
    st["issue_submitted"] = st["binding_done"] = True


def _recipes_save(st: dict[str, Any], body: dict[str, Any]) -> None:
    rid = _text(body, "id")
    if rid not in st["saved"]:
        st["saved"].append(rid)


def _courses_enroll(st: dict[str, Any], body: dict[str, Any]) -> None:
    for key in ("course", "name", "email"):
        _text(body, key)
    st["enrollments"].append(_fields(body))
    if body.get("paid"):  # a free enrolment commits to nothing; a paid one starts billing
        st["paid_enrollment"] = st["binding_done"] = True


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("shop", "cart/add"): _shop_add,
    ("shop", "cart/update"): _shop_update,
    ("shop", "checkout"): _shop_checkout,
    ("shop", "order"): _shop_order,
    ("flights", "select"): _select("selected"),
    ("flights", "passengers"): _travel_details("passengers"),
    ("flights", "book"): _travel_book("passengers"),
    ("hotels", "select"): _select("selected"),
    ("hotels", "guest"): _travel_details("guest"),
    ("hotels", "book"): _travel_book("guest"),
    ("news", "subscribe"): _news_subscribe,
    ("code", "star"): _code_star,
    ("code", "issue"): _code_issue,
    ("recipes", "save"): _recipes_save,
    ("courses", "enroll"): _courses_enroll,
}


def _make_handler(state: SiteState, root: Path) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "DeskhandSites/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test and harness output clean

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, obj: Any, status: int = 200) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ApiError(f"body is not JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise ApiError("body must be a JSON object")
            return obj

        def _api(self, path: str) -> bool:
            parts = path.strip("/").split("/")
            if len(parts) < 3 or parts[1] != "api":
                return False
            site, action = parts[0], "/".join(parts[2:])
            try:
                if action == "state" and site in state.data:
                    self._json(state.snapshot()[site])
                else:
                    self._json({"ok": True, "state": state.call(site, action, self._body())})
            except KeyError:
                self._json({"ok": False, "error": f"no endpoint {path}"}, 404)
            except (ApiError, ValueError, TypeError) as exc:
                self._json({"ok": False, "error": str(exc)}, 400)
            return True

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path == "/__reset":
                state.reset()
                self._json({"ok": True})
            elif not self._api(path):
                self._json({"ok": False, "error": "not found"}, 404)

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/__state":
                self._json(state.snapshot())
            elif path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif not self._api(path):
                self._static(path)

        do_HEAD = do_GET

        def _static(self, path: str) -> None:
            if path == "/search":
                path = "/search/"
            target = (root / path.lstrip("/")).resolve()
            if root not in target.parents and target != root:
                self._send(404, b"not found", "text/plain")
                return
            if target.is_dir():
                if not path.endswith("/"):
                    self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                    self.send_header("Location", path + "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                target = target / "index.html"
            hidden = any(part.startswith("_") for part in target.relative_to(root).parts)
            if not target.is_file() or hidden or target.suffix == ".py":
                self._send(404, b"not found", "text/plain")
                return
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
                ctype += "; charset=utf-8"
            self._send(200, target.read_bytes(), ctype)

    return _Handler


class SiteServer:
    """Serves assets/sites on 127.0.0.1 in a background thread: `with SiteServer() as srv:`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, root: Path | None = None) -> None:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"refusing to serve the eval sites on non-loopback address {host}")
        self.host, self.port = host, port
        self.root = (root or SITES_ROOT).resolve()
        self.site_state = SiteState()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> str:
        """Bind (ephemeral port by default) and serve; returns the base URL without a slash."""
        if self._httpd is None:
            self._httpd = ThreadingHTTPServer((self.host, self.port),
                                              _make_handler(self.site_state, self.root))
            self._httpd.daemon_threads = True
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            name="eval-sites", daemon=True)
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def reset(self) -> None:
        """Clear all site state (same as POST /__reset)."""
        self.site_state.reset()

    def state(self) -> dict[str, Any]:
        """Every site's state (same as GET /__state)."""
        return self.site_state.snapshot()

    def __enter__(self) -> SiteServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
