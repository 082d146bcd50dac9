"""One loopback HTTP server for all offline evaluation sites, with a small stateful backend."""

from __future__ import annotations

import copy
import io
import ipaddress
import json
import logging
import mimetypes
import secrets
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from agent.eval.http_guard import (
    CONTROL_HEADER,
    REQUEST_TIMEOUT,
    BoundedHTTPServer,
    DeadlineReader,
    Refused,
    RequestPolicy,
    body_length,
    request_path,
)
from agent.paths import asset

log = logging.getLogger(__name__)

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


def _api_route(path: str) -> tuple[str, str] | None:
    """(site, action) for `/<site>/api/<action…>`, else None."""
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[1] != "api":
        return None
    return parts[0], "/".join(parts[2:])


def _is_control(path: str) -> bool:
    return any(part.startswith("__") for part in path.split("/"))


def _with_banner(data: bytes, height: int) -> bytes:
    """An HTML page with a plain notice banner of `height` pixels pushed in at the top."""
    banner = (f'<div id="__perturb-banner" style="height:{height}px;box-sizing:border-box;'
              'margin:0;padding:8px 16px;background:#fff3c4;color:#5a4500;font:14px sans-serif;'
              'border-bottom:1px solid #e0c060">Scheduled maintenance tonight: some pages may '
              'be slower than usual.</div>').encode()
    lower = data.lower()
    at = lower.find(b"<body")
    end = lower.find(b">", at) if at >= 0 else -1
    return data[: end + 1] + banner + data[end + 1:] if end >= 0 else data


def _make_handler(state: SiteState, root: Path, policy: RequestPolicy, timeout: float,
                  perturbation: dict[str, int] | None = None) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "DeskhandSites/1"

        def setup(self) -> None:
            self.timeout = timeout  # per socket operation; DeadlineReader bounds the request
            super().setup()
            self.rfile.close()  # replaced: release its hold on the socket
            self._reader = DeadlineReader(self.connection, timeout)
            self.rfile = io.BufferedReader(self._reader)
            self._responded = False

        def handle_one_request(self) -> None:
            self._reader.deadline = time.monotonic() + timeout
            self._responded = False
            super().handle_one_request()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("eval sites: " + format, *args)  # keep test and harness output clean

        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            try:
                policy.check_request(self.path, self.headers)
            except Refused as exc:
                self._refuse(exc)
                return False
            return True

        def _send(self, status: int, body: bytes, ctype: str,
                  extra: dict[str, str] | None = None) -> None:
            self._responded = True
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, obj: Any, status: int = 200, extra: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json", extra)

        def _refuse(self, exc: Refused) -> None:
            self.close_connection = True  # an unread body must not become the next request
            self._json({"ok": False, "error": str(exc)}, exc.status)

        def _guarded(self, serve: Callable[[str], None]) -> None:
            """Serve one request; whatever goes wrong is answered, logged, and never kills us."""
            try:
                serve(request_path(self.path))
            except Refused as exc:
                self._refuse(exc)
            except TimeoutError:
                self.close_connection = True
                if not self._responded:
                    self._json({"ok": False, "error": "request timed out"},
                               HTTPStatus.REQUEST_TIMEOUT)
            except ConnectionError as exc:
                self.close_connection = True
                log.debug("eval sites: client went away: %r", exc)
            except Exception:
                log.exception("eval sites: %s %r failed", self.command, self.path[:200])
                self.close_connection = True
                if not self._responded:
                    self._json({"ok": False, "error": "internal server error"},
                               HTTPStatus.INTERNAL_SERVER_ERROR)

        def do_POST(self) -> None:
            self._guarded(self._post)

        def do_GET(self) -> None:
            self._guarded(self._get)

        do_HEAD = do_GET

        def _body(self) -> dict[str, Any]:
            length = body_length(self.headers)
            raw = self.rfile.read(length) if length else b""
            if len(raw) < length:
                raise Refused(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length")
            if not raw:
                return {}
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise ApiError(f"body is not JSON: {str(exc)[:120]}") from exc
            if not isinstance(obj, dict):
                raise ApiError("body must be a JSON object")
            return obj

        def _post(self, path: str) -> None:
            policy.check_write(self.headers)
            if _is_control(path):
                policy.check_control(self.headers)
            route = _api_route(path)
            if path == "/__reset":
                self._body()
                state.reset()
                self._json({"ok": True})
            elif route is None or route not in _HANDLERS:
                self._json({"ok": False, "error": "not found"}, 404)
            else:
                try:
                    self._json({"ok": True, "state": state.call(*route, self._body())})
                except (ApiError, ValueError, TypeError, OverflowError) as exc:
                    self._json({"ok": False, "error": str(exc)[:300]}, 400)

        def _get(self, path: str) -> None:
            if _is_control(path):
                policy.check_control(self.headers)
            route = _api_route(path)
            if path == "/__state":
                self._json(state.snapshot())
            elif path == "/favicon.ico":
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            elif route is None:
                self._static(path)
            elif route[1] == "state" and route[0] in state.data:
                self._json(state.snapshot()[route[0]])
            elif route in _HANDLERS:
                # Changes happen only on POST: a GET is what an <img> on any page can send.
                self._json({"ok": False, "error": "use POST"}, HTTPStatus.METHOD_NOT_ALLOWED,
                           {"Allow": "POST"})
            else:
                self._json({"ok": False, "error": f"no endpoint {path}"}, 404)

        def _static(self, path: str) -> None:
            if path == "/search":
                path = "/search/"
            try:
                target = (root / path.lstrip("/")).resolve()
                inside = root in target.parents or target == root
                if inside and target.is_dir():
                    if not path.endswith("/"):
                        self._responded = True
                        self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                        self.send_header("Location", path + "/")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    target = target / "index.html"
                hidden = inside and any(p.startswith("_") for p in target.relative_to(root).parts)
                found = inside and not hidden and target.suffix != ".py" and target.is_file()
                data = target.read_bytes() if found else b""
            except OSError:  # a name too long, a loop of links: nothing to serve
                found = False
            if not found:
                self._send(404, b"not found", "text/plain")
                return
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
                ctype += "; charset=utf-8"
            if perturbation and perturbation.get("banner") and ctype.startswith("text/html"):
                data = _with_banner(data, perturbation["banner"])
            self._send(200, data, ctype)

    return _Handler


class SiteServer:
    """Serves assets/sites on 127.0.0.1 in a background thread: `with SiteServer() as srv:`.

    It answers only requests whose Host names its own address and port; changes need a
    same-origin JSON POST; `/__…` control endpoints need `control_headers()` (a token made per
    server, known only in this process).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, root: Path | None = None, *,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"refusing to serve the eval sites on non-loopback address {host}")
        if not 0 < request_timeout < float("inf"):
            raise ValueError(f"request_timeout must be a positive number, not {request_timeout}")
        self.host, self.port = host, port
        self.root = (root or SITES_ROOT).resolve()
        self.request_timeout = request_timeout
        self.token = secrets.token_urlsafe(32)
        self.site_state = SiteState()
        # Layout perturbations for replay measurements (`perturb`); read at each request.
        self.perturbation: dict[str, int] = {}
        self._httpd: BoundedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def _ipv6(self) -> bool:
        return self.host != "localhost" and ipaddress.ip_address(self.host).version == 6

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host = f"[{self.host}]" if self._ipv6 else self.host
        return f"http://{host}:{self._httpd.server_address[1]}"

    def control_headers(self) -> dict[str, str]:
        """The header that `GET /__state` and `POST /__reset` need."""
        return {CONTROL_HEADER: self.token}

    def start(self) -> str:
        """Bind (ephemeral port by default) and serve; returns the base URL without a slash."""
        if self._httpd is None:
            # The handler class is made after binding: the policy needs the port it got.
            httpd = BoundedHTTPServer((self.host, self.port), BaseHTTPRequestHandler,
                                      ipv6=self._ipv6)
            policy = RequestPolicy.for_address(self.host, httpd.server_address[1], self.token)
            httpd.RequestHandlerClass = _make_handler(self.site_state, self.root, policy,
                                                      self.request_timeout, self.perturbation)
            self._httpd = httpd
            self._thread = threading.Thread(target=httpd.serve_forever, args=(0.1,),
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

    def perturb(self, *, banner: int = 0) -> None:
        """Shift every page's layout from the next request on: a notice `banner` px high on top."""
        self.perturbation.clear()
        if banner:
            self.perturbation["banner"] = int(banner)

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
