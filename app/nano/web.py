"""Synthetic web pages for Deskhand Nano: generated HTML, drawn by Chromium in a browser window.

Why: Nano trained on Qt windows and drawn buttons clicks nothing right on a web page (MiniWoB++
0/30, held-out sites 0/25: README "Deskhand Nano"); a page in a browser, with its tab strip and
address bar, text, links, fields and the browser's own controls, is a screen family it has
never seen. These pages are made here (never MiniWoB++'s or the offline sites' HTML, which
are the test): a heading, paragraphs, links, a form of labelled fields, check boxes and
drop-downs, and one to four buttons with different labels, all styled alike: the task names
one (the target), so from two buttons on the page is read by its label (MiniWoB++'s
click-button, most web tasks) rather than found as the only button. Plain or styled themes,
base font sizes from small to large (a page at browser zoom or on a scaled screen), filling
the page or in a narrow card anywhere on it. Whole screens are the desktop kind's real sizes.

Chromium draws them: a browser window on a private Xvfb, the page served on loopback under a
fixed name (http://nano.test/<words>.html, whatever the port), the screen captured as the agent
captures it once it is still (agent.screen), the button's box read from the page. The step
after the click is the same document with its form replaced by a confirmation (same address,
same scroll), so nothing but the page's content tells the two apart. That takes ~1 s a
screen, so each is drawn once and cached per VERSION (app.nano.web_cache). A screen's page and
layout are a pure function of (split, index); its pixels nearly so on one machine (a drawing
again may differ by a level on a few pixels), and Chromium's version and fonts may change them
elsewhere. Needs Chromium, Xvfb and the eval extra (websockets), as the evaluation harness does.
"""

from __future__ import annotations

import atexit
import html
import json
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from agent.geometry import Monitor, Size
from agent.screen import Screen as Capture
from app.nano.desktop import (
    DONE_SHARE,
    FILLER,
    SCREEN_SIZES,
    WORDINGS,
)
from app.nano.screens import HELD_OUT_WORDS, TRAIN_WORDS, WORDS, Box, Screen
from app.nano.web_cache import are_labelled_boxes, cache_folder, cached, is_box, screen_of, write_entry

# Bump when a change to the pages changes what a (split, index) draws: the cache is per version.
VERSION = "v3"
SCREEN = Size(1920, 1080)  # the private display: the largest screen size; smaller ones are its top-left
FONTS = ("DejaVu Sans", "DejaVu Serif", "Liberation Sans", "Liberation Serif", "sans-serif")
FONT_PX = (11, 12, 13, 14, 16, 18, 20, 24, 28)  # base font sizes: small pages to zoomed ones
TARGET = "dh-target"  # the named button's id (its box is read from the page)
OTHER = "dh-other-{}"  # the other buttons' ids (their boxes too: reading targets, hit diagnostics)
FIELD = "dh-field-{}"  # a form page's labelled text fields (app.nano.webforms)
BUTTON_COUNTS, BUTTON_WEIGHTS = (1, 2, 3, 4), (4, 2, 2, 2)  # buttons on a page, and how often
REAP_VAR = "DESKHAND_REAP_NANO_WEB"  # agent.eval.reaper's mark on the renderer's processes
HOST = "nano.test"  # the pages' address: resolved by the browser alone to the loopback server
PATH_WORDS = tuple(w.lower() for w in FILLER if w.isascii())  # the address shows them as typed
ATTEMPTS = 4  # layouts tried for a screen whose button would not be on it (none seen so far)


def make_web(split: str, index: int) -> Screen:
    """Web screen number `index` of `split`, at model size (drawn by Chromium once, then read from
    the cache); `previous` set on the step after the click."""
    meta, captured, after = cached(cache_folder(VERSION), split, index, _draw, _buttons_meta)
    return screen_of(captured, after, [(meta["word"], meta["box"]), *meta["others"]], 0,
                     wording=meta["wording"])


def _buttons_meta(meta: dict) -> bool:
    """A button page's metadata is whole: its word, wording and boxes."""
    return (isinstance(meta["word"], str) and isinstance(meta["wording"], str)
            and is_box(meta["box"]) and are_labelled_boxes(meta["others"]))


def page(rng: random.Random, word: str, others: tuple[str, ...] = (),
         fields: tuple[tuple[str, str | None, str | None], ...] | None = None) -> str:
    """A page whose button labelled `word` (its id TARGET) is inside the page's one form (the
    step after the click replaces the form: WebRenderer.confirm); `others` are buttons with ids
    OTHER.format(i), in the form beside or among its fields, or in a bar above the heading.
    `fields` (label, placeholder, text it holds) make a form page instead (app.nano.webforms):
    the form is those labelled text fields, ids FIELD.format(i), then its buttons."""
    def words(lo: int, hi: int) -> str:
        return " ".join(rng.choice(FILLER) for _ in range(rng.randint(lo, hi)))

    def button(label: str, element: str) -> str:
        if rng.random() < 0.7:
            return f"<button id='{element}' class='dh'>{html.escape(label)}</button>"
        return f"<input type='submit' id='{element}' class='dh' value='{html.escape(label)}'>"

    font, px = rng.choice(FONTS), rng.choice(FONT_PX)
    styled = rng.random() < 0.5
    fg, bg = ("#222", rng.choice(("#fff", "#fafafa", "#f4f6f8", "#fffbe6"))) if styled else ("#000", "#fff")
    button_css = ""
    if styled:
        colour = rng.choice(("#1a73e8", "#188038", "#d93025", "#5f6368", "#e8eaed", "#6200ee"))
        text = "#202124" if colour == "#e8eaed" else "#fff"
        button_css = (f".dh{{background:{colour};color:{text};border:0;"
                      f"border-radius:{rng.choice((0, 3, 6, 16))}px;"
                      f"padding:{rng.randint(4, 10)}px {rng.randint(10, 24)}px}}")
    level = rng.randint(1, 3)
    in_bar = [rng.random() < 0.25 for _ in others]
    bar = [button(label, OTHER.format(i)) for i, label in enumerate(others) if in_bar[i]]
    blocks: list[str] = [f"<div>{' '.join(bar)}</div>"] if bar else []
    blocks.append(f"<h{level}>{html.escape(words(1, 4))}</h{level}>")
    for _ in range(rng.randint(0, 2)):
        blocks.append(f"<p>{html.escape(words(4, 24))}</p>")
    if rng.random() < 0.6:
        links = " ".join(f'<a href="#">{html.escape(words(1, 2))}</a>' for _ in range(rng.randint(1, 5)))
        blocks.append(f"<p>{links}</p>")
    form: list[str] = []
    for _ in range(rng.randint(0, 4) if fields is None else 0):
        field = rng.random()
        label = html.escape(words(1, 2))
        if field < 0.5:
            form.append(f"<div>{label}: <input type='text' size='{rng.randint(8, 30)}'></div>")
        elif field < 0.7:
            form.append(f"<div><input type='checkbox'{' checked' if rng.random() < 0.3 else ''}>"
                        f" {label}</div>")
        elif field < 0.85:
            options = "".join(f"<option>{html.escape(words(1, 2))}</option>" for _ in range(3))
            form.append(f"<div>{label} <select>{options}</select></div>")
        else:
            form.append(f"<div>{label}<br><textarea rows='2' cols='{rng.randint(12, 30)}'></textarea></div>")
    if fields is not None:
        form = [_field_row(rng, i, *field) for i, field in enumerate(fields)]
    # The named button and the others not in the bar: a row of their own or side by side
    # (after a form page's fields: its submit row).
    row = [button(word, TARGET)] + [button(label, OTHER.format(i))
                                     for i, label in enumerate(others) if not in_bar[i]]
    rng.shuffle(row)
    while row:
        take = rng.randint(1, len(row))
        at = len(form) if fields is not None else rng.randint(0, len(form))
        form.insert(at, f"<div>{' '.join(row[:take])}</div>")
        row = row[take:]
    blocks.append("<form onsubmit='return false'>" + "".join(form) + "</form>")
    body = "".join(blocks)
    if rng.random() < 0.4:  # a card: narrow, somewhere in the page's top-left 600x300
        body = (f"<div style='position:absolute;left:{rng.randint(0, 600)}px;top:{rng.randint(0, 300)}px;"
                f"width:{rng.randint(160, 420)}px;border:1px solid #bbb;padding:4px;"
                f"background:{rng.choice(('#fff', '#ffffe0', '#eef'))}'>{body}</div>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(words(1, 3))}"
            f"</title><style>body{{font-family:'{font}';font-size:{px}px;color:{fg};background:{bg}}}"
            f"button,input,select,textarea{{font-size:inherit;font-family:inherit}}"
            f"a{{color:{rng.choice(('#1a0dab', '#0645ad', '#06c'))}}}{button_css}</style></head>"
            f"<body>{body}</body></html>")


def _field_row(rng: random.Random, i: int, label: str, placeholder: str | None,
               text: str | None) -> str:
    """A labelled text field: the label beside it or above it."""
    attributes = f"type='text' id='{FIELD.format(i)}' size='{rng.randint(12, 32)}'"
    if placeholder is not None:
        attributes += f" placeholder='{html.escape(placeholder)}'"
    if text is not None:
        attributes += f" value='{html.escape(text)}'"
    shown = html.escape(label) + rng.choice((":", "", " :"))
    between = rng.choice((" ", " ", "<br>"))
    return f"<div style='margin:{rng.randint(2, 8)}px 0'>{shown}{between}<input {attributes}></div>"


def address(rng: random.Random) -> str:
    """The page's path: words, neither the split nor the index (the address bar shows it)."""
    return "-".join(rng.choice(PATH_WORDS) for _ in range(rng.randint(1, 3))) + ".html"


class WebRenderer:
    """One Chromium window on a private Xvfb that draws pages at a screen size."""

    def __init__(self) -> None:
        from agent.eval.browser import Browser, BrowserOptions, XvfbDisplay
        from agent.eval.cdp import Cdp
        from agent.eval.reaper import start_reaper
        from agent.inputs.backend import scoped_environ

        self._pages = Path(tempfile.mkdtemp(prefix="deskhand-nano-web-"))
        # Xvfb and Chromium run in sessions of their own: a training run killed without its
        # exit handlers would leave them behind. They carry a mark a reaper looks for once
        # this process has exited, however it ended.
        token = uuid.uuid4().hex
        self._reaper = start_reaper(REAP_VAR, token, remove=self._pages)
        self._display = XvfbDisplay(SCREEN)
        self._browser: Browser | None = None
        self._server: ThreadingHTTPServer | None = None
        self._cdp: Cdp | None = None
        self._size: Size | None = None
        self._capture: Capture | None = None  # the screen being drawn (its size)
        try:
            with scoped_environ(REAP_VAR, token):  # inherited by the processes started now
                display = self._display.start()
                self._server = _serve(self._pages)
                self._browser = Browser(display, BrowserOptions(
                    size=Size(1280, 800), offline=True,
                    local_hosts=((HOST, self._server.server_address[1]),)))
                self._cdp = Cdp(self._browser.start("about:blank")).connect()
            self._cdp.ready()
            self._window = self._cdp.call("Browser.getWindowForTarget")["windowId"]
        except Exception:
            self.close()
            raise

    def draw(self, markup: str, size: Size, path: str, focus: str = TARGET
             ) -> tuple[Image.Image, Box | None]:
        """The screen of `size` showing `markup` at http://HOST/`path` in the browser window, and
        the box in screen pixels of the element with id `focus` (scrolled into view if need be;
        None when the page has no such element on the screen)."""
        cdp = self._cdp
        if size != self._size:  # a resize re-lays out the browser's own bars: only when needed
            cdp.call("Browser.setWindowBounds", {"windowId": self._window, "bounds": {
                "left": 0, "top": 0, "width": size.width, "height": size.height}})
            deadline = time.monotonic() + 10
            # Xvfb without a window manager may leave a pixel off the asked size: close enough.
            while any(abs(got - want) > 2 for got, want in zip(
                    cdp.evaluate("[outerWidth, outerHeight]"), (size.width, size.height), strict=True)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the browser window did not take the size {size}")
                time.sleep(0.05)
            self._size = size
            if self._capture is not None:
                self._capture.close()
            # agent.screen's capture of the display's top-left `size` (the screen being drawn).
            self._capture = Capture(self._display.display,
                                    monitors=[Monitor(1, 0, 0, size.width, size.height)])
        file = self._pages / path
        file.write_text(markup, encoding="utf-8")
        url = f"http://{HOST}/{path}"
        # A page-made navigation: the address bar stays unfocused, as after a click on a link.
        # The old document is marked first: the same address twice in a row is a reload, where
        # the old document still reads as loaded at that address.
        cdp.evaluate(f"window.deskhandOld = true; location.href = {json.dumps(url)}; true")
        loaded = f"location.href === {json.dumps(url)} && !window.deskhandOld"
        deadline = time.monotonic() + 10
        while not (cdp.ready(2, navigated=True) and cdp.evaluate(loaded) is True):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not load {url}")
            time.sleep(0.05)
        file.unlink()
        # A click on the page's bare bottom-left corner: the address bar (focused, its text
        # selected, in a window that was never clicked) shows as on a page in use.
        height = cdp.viewport().height
        for kind in ("mousePressed", "mouseReleased"):
            cdp.call("Input.dispatchMouseEvent", {"type": kind, "x": 1, "y": height - 2,
                                                  "button": "left", "clickCount": 1})
        if cdp.evaluate(f"!!document.getElementById({json.dumps(focus)})"):
            cdp.evaluate(f"document.getElementById({json.dumps(focus)})"
                         ".scrollIntoView({block: 'nearest'}); true")
        image = self._still(size)
        return image, self.box(focus, size)

    def confirm(self, text: str, size: Size) -> Image.Image:
        """The screen after the click: the page's form replaced by `text`, nothing else changed."""
        self._cdp.evaluate("(() => { const f = document.querySelector('form'), p = "
                           "document.createElement('p'), b = document.createElement('b'); "
                           f"b.textContent = {json.dumps(text)}; p.appendChild(b); "
                           "f.replaceWith(p); return true; })()")
        return self._still(size)

    def type_into(self, element: str, text: str, size: Size) -> Image.Image:
        """The screen after typing: the text field `element` focused, holding `text`, its caret
        at the end (the agent's typing clicks it first), nothing else changed."""
        self._cdp.evaluate(f"(() => {{ const f = document.getElementById({json.dumps(element)}); "
                           f"f.focus({{preventScroll: true}}); f.value = {json.dumps(text)}; "
                           "f.setSelectionRange(f.value.length, f.value.length); return true; })()")
        return self._still(size)

    def _still(self, size: Size) -> Image.Image:
        """The top-left `size` of the display once two captures in a row are the same (the
        page and the browser's own bars painted)."""
        self._cdp.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        return self._capture.wait_settled(1, timeout=3.0, interval=0.05).image

    def box(self, element: str, size: Size) -> Box | None:
        """The box on the screen of the element with id `element` in the page drawn last, cut to
        the screen; None when none of it is there."""
        rect = self._cdp.rect(f"#{element}")
        if rect is None:
            return None
        view = self._cdp.viewport()
        left, top = view.to_screen(rect.x, rect.y)
        right, bottom = view.to_screen(rect.x + rect.width, rect.y + rect.height)
        box = Box(max(int(left), 0), max(int(top), 0), min(-int(-right), size.width),
                  min(-int(-bottom), size.height))
        return box if box.left < box.right and box.top < box.bottom else None

    def close(self) -> None:
        from agent.eval.reaper import stop_reaper

        try:
            if self._capture is not None:
                self._capture.close()
            if self._cdp is not None:
                self._cdp.close()
            if self._browser is not None:
                self._browser.close()
            self._display.stop()
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
        finally:
            stop_reaper(self._reaper)  # its round now: anything left, and the pages' folder


def _serve(folder: Path) -> ThreadingHTTPServer:
    """A loopback HTTP server for the pages in `folder`, asked for as http://HOST/<name>.html
    (other hosts and paths: 404; no listing), on a port of its choosing, in its own thread."""
    class Pages(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            file = folder / name
            ok = (self.headers.get("Host") == HOST and "/" not in name and name.endswith(".html")
                  and file.is_file())
            body = file.read_bytes() if ok else b"not found"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8" if ok else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


_renderer: WebRenderer | None = None
_registered = False


def _draw(split: str, index: int, folder: Path) -> None:
    """Draw screen (split, index) with the shared renderer and write it to `folder`."""
    rng = random.Random(f"nano-web:{split}:{index}")
    word = rng.choice(HELD_OUT_WORDS if split == "heldout_words" else TRAIN_WORDS)
    # Training pages show training words only; held-out words' pages may show any other word.
    pool = [w for w in (WORDS if split == "heldout_words" else TRAIN_WORDS) if w != word]
    others = tuple(rng.sample(pool, rng.choices(BUTTON_COUNTS, BUTTON_WEIGHTS)[0] - 1))
    size = Size(*rng.choice(SCREEN_SIZES))
    wording = random.Random(f"nano-wording:{split}:{index}").choice(WORDINGS)
    done_step = rng.random() < DONE_SHARE
    done = random.Random(f"nano-web-done:{split}:{index}")
    text = " ".join(done.choice(FILLER) for _ in range(done.randint(2, 5)))  # the confirmation
    for attempt in range(ATTEMPTS):  # another layout when the button would be off the screen
        layout = random.Random(f"nano-web-layout:{split}:{index}:{attempt}")
        image, boxes, after = drawn(
            page(layout, word, others), (TARGET, *(OTHER.format(i) for i in range(len(others)))),
            size, address(layout), (lambda r: r.confirm(text, size)) if done_step else None)
        if boxes[0] is not None:
            break
    else:
        raise RuntimeError(f"web screen {split} {index}: the button is never on the screen")
    box, *other_boxes = [None if b is None else [b.left, b.top, b.right, b.bottom] for b in boxes]
    write_entry(folder, split, index, {
        "word": word, "wording": wording, "box": box,
        # The other buttons on the screen (one scrolled off it is not there to be read).
        "others": [[label, b] for label, b in zip(others, other_boxes, strict=True) if b is not None],
    }, image, after)


def drawn(markup: str, ids: tuple[str, ...], size: Size, path: str,
          after: Callable[[WebRenderer], Image.Image] | None
          ) -> tuple[Image.Image, list[Box | None], Image.Image | None]:
    """`markup` drawn by the shared renderer with the boxes of the elements `ids` (the first
    scrolled into view: the target) and, when the target is on the screen, `after`'s screen (the
    step after the action), the renderer started on first use and once more if it fails (a long
    training run outlives a browser crash)."""
    global _renderer, _registered
    for attempt in (1, 2):
        try:
            if _renderer is None:
                _renderer = WebRenderer()
                if not _registered:
                    atexit.register(_close_renderer)
                    _registered = True
            image, box = _renderer.draw(markup, size, path, ids[0])
            boxes = [box, *(_renderer.box(element, size) for element in ids[1:])]
            return image, boxes, None if after is None or box is None else after(_renderer)
        except Exception:
            _close_renderer()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _close_renderer() -> None:
    global _renderer
    if _renderer is not None:
        renderer, _renderer = _renderer, None
        try:
            renderer.close()
        except Exception:
            pass  # at exit or after a crash: the reaper removes whatever is left
