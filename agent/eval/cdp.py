"""A small Chrome DevTools Protocol client for the harness: URL, page-state JS, element boxes.

Loopback only, and only the harness uses it (judges and scripted solvers' element finding);
the agent under test never sees this channel.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from agent.eval.browser import EnvironmentFailure


class CdpError(RuntimeError):
    """A DevTools call failed (the page threw, the target went away)."""


@dataclass(frozen=True)
class Rect:
    """An element's box in CSS pixels of the viewport."""

    x: float
    y: float
    width: float
    height: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


@dataclass(frozen=True)
class Viewport:
    """Where the page's viewport lies on the screen, from the page's own view."""

    width: float  # CSS px
    height: float
    device_pixel_ratio: float
    screen_x: float  # window position on the screen (CSS px)
    screen_y: float
    chrome_top: float  # CSS px of browser UI above the viewport (0 in kiosk mode)
    chrome_left: float

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        """CSS px in the viewport → physical screen px."""
        dpr = self.device_pixel_ratio
        return ((self.screen_x + self.chrome_left + x) * dpr,
                (self.screen_y + self.chrome_top + y) * dpr)


def _import_websockets():
    try:
        from websockets.sync.client import connect
    except ImportError as exc:
        raise EnvironmentFailure("the eval harness needs websockets: "
                                 "pip install 'deskhand[eval]'") from exc
    return connect


def page_targets(port: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The browser's page targets (tabs), from the DevTools HTTP endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as resp:
        targets = json.loads(resp.read().decode())
    return [t for t in targets if t.get("type") == "page"]


class Cdp:
    """A synchronous DevTools session attached to the browser's page (the tab the agent sees)."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self._ws = None
        self._next_id = 0
        self.target_id = ""

    def connect(self, wait: float = 15.0) -> Cdp:
        """Attach to the first page target, waiting for it to appear."""
        connect = _import_websockets()
        deadline = time.monotonic() + wait
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                pages = page_targets(self.port)
                if pages:
                    self.target_id = pages[0]["id"]
                    conn = connect(pages[0]["webSocketDebuggerUrl"], open_timeout=self.timeout,
                                   max_size=64 * 1024 * 1024)
                    # Entered as a context manager (closed in `close`): newer websockets warn
                    # about connections used without one.
                    self._ws = conn.__enter__()
                    return self
            except Exception as exc:  # the browser is still starting
                last = exc
            time.sleep(0.1)
        raise EnvironmentFailure(f"cannot attach to the browser's DevTools: {last}")

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:
                pass
            self._ws = None

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its result (events arriving meanwhile are dropped)."""
        if self._ws is None:
            raise CdpError("not connected")
        self._next_id += 1
        msg_id = self._next_id
        try:
            self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
            deadline = time.monotonic() + self.timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CdpError(f"{method} timed out")
                reply = json.loads(self._ws.recv(timeout=remaining))
                if reply.get("id") == msg_id:
                    break
        except CdpError:
            raise
        except Exception as exc:  # connection closed: the browser or tab died
            raise EnvironmentFailure(f"DevTools connection lost during {method}: {exc}") from exc
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error'].get('message', reply['error'])}")
        return reply.get("result", {})

    def evaluate(self, expression: str, *, await_promise: bool = True) -> Any:
        """Evaluate JavaScript in the page and return its JSON value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": await_promise})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            raise CdpError(f"page script failed: {text}")
        return result.get("result", {}).get("value")

    def url(self) -> str:
        """The page's current URL."""
        for target in page_targets(self.port):
            if target["id"] == self.target_id:
                return str(target.get("url", ""))
        return str(self.evaluate("location.href") or "")

    def ready(self, timeout: float = 10.0, *, navigated: bool = False) -> bool:
        """Wait for the document to finish loading; False on time-out.

        With `navigated`, the blank page a new tab shows before its first navigation does not
        count as loaded.
        """
        check = "document.readyState === 'complete'"
        if navigated:
            check += " && location.href !== 'about:blank'"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(check) is True:
                    return True
            except CdpError:
                pass  # navigation in progress: the context was replaced
            time.sleep(0.05)
        return False

    def wait_full_screen(self, screen_w: int, screen_h: int, timeout: float = 10.0, *,
                         window: bool = False) -> bool:
        """Wait until the viewport (or with `window`, the window) fills the screen.

        The window reaches its final size a moment after start; until then the viewport's
        offset on the screen is not yet the one the agent will see.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                v = self.viewport()
                w = (v.width + 2 * v.chrome_left) if window else v.width
                h = (v.height + v.chrome_top) if window else v.height
                if w * v.device_pixel_ratio >= screen_w - 2 and \
                        h * v.device_pixel_ratio >= screen_h - 2:
                    return True
            except CdpError:
                pass
            time.sleep(0.1)
        return False

    def viewport(self) -> Viewport:
        """The viewport's size and its offset on the screen."""
        v = self.evaluate("({w: innerWidth, h: innerHeight, dpr: devicePixelRatio, sx: screenX,"
                          " sy: screenY, ow: outerWidth, oh: outerHeight})")
        # Browser UI (tab strip, toolbar) sits above the viewport; kiosk mode has none.
        chrome_top = max(0.0, float(v["oh"]) - float(v["h"]))
        chrome_left = max(0.0, (float(v["ow"]) - float(v["w"])) / 2)
        return Viewport(float(v["w"]), float(v["h"]), float(v["dpr"]), float(v["sx"]),
                        float(v["sy"]), chrome_top, chrome_left)

    def rect(self, selector: str) -> Rect | None:
        """The first visible element matching a CSS selector, as a viewport rectangle; None if absent."""
        found = self.evaluate(
            "(() => { const els = document.querySelectorAll(" + json.dumps(selector) + ");"
            " for (const el of els) { const r = el.getBoundingClientRect();"
            "  if (r.width > 0 && r.height > 0) return [r.x, r.y, r.width, r.height]; }"
            " return els.length ? 'hidden' : null; })()")
        if not isinstance(found, list):
            return None
        return Rect(*map(float, found))

    def hit_point(self, selector: str) -> tuple[float, float] | None:
        """A viewport point where a click lands on the element (not on something covering it).

        Tries the centre first, then a grid over the element's visible part; None when no
        point of the element is both on screen and on top.
        """
        found = self.evaluate(
            "(() => { const el = [...document.querySelectorAll(" + json.dumps(selector) + ")]"
            ".find(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; });"
            " if (!el) return null; const r = el.getBoundingClientRect();"
            " const x0 = Math.max(r.left, 0), x1 = Math.min(r.right, innerWidth),"
            " y0 = Math.max(r.top, 0), y1 = Math.min(r.bottom, innerHeight);"
            " if (x1 <= x0 || y1 <= y0) return null;"
            " const pts = [[(x0 + x1) / 2, (y0 + y1) / 2]];"
            " for (const fy of [0.5, 0.25, 0.75, 0.1, 0.9]) for (const fx of [0.5, 0.25, 0.75, 0.1, 0.9])"
            "  pts.push([x0 + (x1 - x0) * fx, y0 + (y1 - y0) * fy]);"
            " for (const [x, y] of pts) { const top = document.elementFromPoint(x, y);"
            "  if (top && (top === el || el.contains(top) || top.contains(el) && top.tagName === 'LABEL'))"
            "   return [x, y]; }"
            " return null; })()")
        return (float(found[0]), float(found[1])) if isinstance(found, list) else None
