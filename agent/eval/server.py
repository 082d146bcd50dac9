"""One loopback HTTP server for all offline evaluation sites: routing, static files, control.

The sites' state and endpoints are `agent.eval.site_api`; request hygiene (Host, origin, control
token, deadlines, connection limits) is `agent.eval.http_guard`.
"""

from __future__ import annotations

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
from agent.eval.site_api import HANDLERS as _HANDLERS  # one table; tests patch it here too
from agent.eval.site_api import SITES_ROOT, ApiError, SiteState
from agent.offline import is_loopback_host

__all__ = ["SITES_ROOT", "ApiError", "SiteServer", "SiteState"]

log = logging.getLogger(__name__)

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


class _SiteHandler(BaseHTTPRequestHandler):
    """One connection to the sites; `_make_handler` binds it to a server's state and policy."""

    server_version = "DeskhandSites/1"
    site_state: SiteState
    sites_root: Path
    policy: RequestPolicy
    request_timeout: float
    perturbation: dict[str, int] | None = None

    def setup(self) -> None:
        self.timeout = self.request_timeout  # per socket operation; DeadlineReader: the request
        super().setup()
        self.rfile.close()  # replaced: release its hold on the socket
        self._reader = DeadlineReader(self.connection, self.request_timeout)
        self.rfile = io.BufferedReader(self._reader)
        self._responded = False

    def handle_one_request(self) -> None:
        self._reader.deadline = time.monotonic() + self.request_timeout
        self._responded = False
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("eval sites: " + format, *args)  # keep test and harness output clean

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        try:
            self.policy.check_request(self.path, self.headers)
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
        self.policy.check_write(self.headers)
        if _is_control(path):
            self.policy.check_control(self.headers)
        route = _api_route(path)
        if path == "/__reset":
            self._body()
            self.site_state.reset()
            self._json({"ok": True})
        elif route is None or route not in _HANDLERS:
            self._json({"ok": False, "error": "not found"}, 404)
        else:
            try:
                self._json({"ok": True, "state": self.site_state.call(*route, self._body())})
            except (ApiError, ValueError, TypeError, OverflowError) as exc:
                self._json({"ok": False, "error": str(exc)[:300]}, 400)

    def _get(self, path: str) -> None:
        if _is_control(path):
            self.policy.check_control(self.headers)
        route = _api_route(path)
        if path == "/__state":
            self._json(self.site_state.snapshot())
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif route is None:
            self._static(path)
        elif route[1] == "state" and route[0] in self.site_state.data:
            self._json(self.site_state.snapshot()[route[0]])
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
            target = (self.sites_root / path.lstrip("/")).resolve()
            inside = self.sites_root in target.parents or target == self.sites_root
            if inside and target.is_dir():
                if not path.endswith("/"):
                    self._responded = True
                    self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                    self.send_header("Location", path + "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                target = target / "index.html"
            hidden = inside and any(p.startswith("_") for p in target.relative_to(self.sites_root).parts)
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
        if self.perturbation and self.perturbation.get("banner") and ctype.startswith("text/html"):
            data = _with_banner(data, self.perturbation["banner"])
        self._send(200, data, ctype)

def _make_handler(state: SiteState, root: Path, policy: RequestPolicy, timeout: float,
                  perturbation: dict[str, int] | None = None) -> type[BaseHTTPRequestHandler]:
    """The handler class for one server (http.server makes an instance per connection)."""
    return type("_Handler", (_SiteHandler,), {
        "site_state": state, "sites_root": root, "policy": policy, "request_timeout": timeout,
        "perturbation": perturbation})


class SiteServer:
    """Serves assets/sites on 127.0.0.1 in a background thread: `with SiteServer() as srv:`.

    It answers only requests whose Host names its own address and port; changes need a
    same-origin JSON POST; `/__…` control endpoints need `control_headers()` (a token made per
    server, known only in this process).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, root: Path | None = None, *,
                 request_timeout: float = REQUEST_TIMEOUT) -> None:
        if not is_loopback_host(host):  # the one loopback decision (agent.offline)
            raise ValueError(f"refusing to serve the eval sites on non-loopback address {host}")
        # The origin is named by the literal: Host must match it as clients write it (compressed).
        if host != "localhost" and ipaddress.ip_address(host).compressed != host:
            raise ValueError(f"give the eval sites' address as {ipaddress.ip_address(host).compressed}")
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
