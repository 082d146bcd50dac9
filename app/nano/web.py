"""Synthetic web pages for Deskhand Nano: generated HTML, drawn by Chromium in a browser window.

Why: Nano trained on Qt windows and drawn buttons clicks nothing right on a web page (MiniWoB++
0/30, held-out sites 0/25: README "Deskhand Nano"); a page in a browser, with its tab strip and
address bar, text, links, fields and the browser's own controls, is a screen family it has
never seen. These pages are made here (never MiniWoB++'s or the offline sites' HTML, which
are the test): a heading, paragraphs, links, a form of labelled fields, check boxes and
drop-downs, and one button (the target; like the desktop kind's window, the only button, so
the task names it and nothing else could be meant), in plain or styled themes, at base font
sizes from small to large (a page at browser zoom or on a scaled screen), filling the page or
in a narrow card anywhere on it. Whole screens are the desktop kind's real sizes.

Chromium draws them: a browser window on a private Xvfb, the page loaded from a file, the
screen captured as the agent captures it (mss), the button's box read from the page. That
takes ~0.5 s a screen, so every screen is drawn once and kept in a cache folder
(DESKHAND_NANO_WEB, default ~/.cache/deskhand/nano-web/<version>): the first epoch pays, later
ones and evaluations read PNG files. A screen is a pure function of (split, index) on one
machine; Chromium's version and fonts may change its pixels elsewhere, not its layout.
"""

from __future__ import annotations

import atexit
import html
import json
import os
import random
import tempfile
import threading
import time
import uuid
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from agent.geometry import Size
from app.nano.desktop import (
    DONE_SHARE,
    FILLER,
    SCREEN_SIZES,
    WORDINGS,
    nano_model_size,
    scaled_box,
    to_model,
)
from app.nano.screens import HELD_OUT_WORDS, SPLITS, TRAIN_WORDS, Box, Button, Screen

# Bump when a change to the pages changes what a (split, index) draws: the cache is per version.
VERSION = "v1"
SCREEN = Size(1920, 1080)  # the private display: the largest screen size; smaller ones are its top-left
FONTS = ("DejaVu Sans", "DejaVu Serif", "Liberation Sans", "Liberation Serif", "sans-serif")
FONT_PX = (11, 12, 13, 14, 16, 18, 20, 24, 28)  # base font sizes: small pages to zoomed ones
TARGET = "dh-target"  # the button's id (its box is read from the page)
REAP_VAR = "DESKHAND_REAP_NANO_WEB"  # agent.eval.reaper's mark on the renderer's processes
PORTS = (47311, 47312, 47313, 47314)  # the pages' loopback server: the first free one


def make_web(split: str, index: int) -> Screen:
    """Web screen number `index` of `split`, at model size (drawn by Chromium once, then read from
    the cache); `previous` set on the step after the click."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    folder = cache_folder()
    if not (folder / f"{split}-{index}.json").is_file():
        _draw(split, index, folder)
    try:
        meta, captured, after = _read(folder, split, index)
    except (OSError, ValueError, KeyError, TypeError):  # a damaged entry (a disk, an editor): again
        _draw(split, index, folder)
        meta, captured, after = _read(folder, split, index)
    width, height = captured.size
    size = nano_model_size(Size(width, height))
    shot = to_model(captured, size)
    target = Button(meta["word"], scaled_box(Box(*meta["box"]), width, height, size))
    if after is None:
        return Screen(shot, (target,), 0, wording=meta["wording"], captured=captured)
    return Screen(to_model(after, size), (target,), 0, previous=shot, wording=meta["wording"])


def _read(folder: Path, split: str, index: int) -> tuple[dict, Image.Image, Image.Image | None]:
    """A cached screen: its metadata, its screenshot and the one after the click (if any)."""
    meta = json.loads((folder / f"{split}-{index}.json").read_text(encoding="utf-8"))
    captured = Image.open(folder / meta["image"]).convert("RGB")
    after = None if meta["after"] is None else Image.open(folder / meta["after"]).convert("RGB")
    if not (isinstance(meta["word"], str) and isinstance(meta["wording"], str)
            and len(meta["box"]) == 4 and all(isinstance(v, int) for v in meta["box"])):
        raise ValueError(f"damaged web screen {split} {index}")
    return meta, captured, after


def cache_folder() -> Path:
    """Where drawn screens are kept (created on first use)."""
    root = os.environ.get("DESKHAND_NANO_WEB")
    folder = Path(root) if root else Path.home() / ".cache" / "deskhand" / "nano-web"
    folder = folder / VERSION
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def page(rng: random.Random, word: str, after: bool = False) -> str:
    """A page whose only button is labelled `word`; `after`: the same page once the button was
    clicked (the form replaced by a confirmation), the screen whose answer is terminate."""
    def words(lo: int, hi: int) -> str:
        return " ".join(rng.choice(FILLER) for _ in range(rng.randint(lo, hi)))

    font, px = rng.choice(FONTS), rng.choice(FONT_PX)
    styled = rng.random() < 0.5
    fg, bg = ("#222", rng.choice(("#fff", "#fafafa", "#f4f6f8", "#fffbe6"))) if styled else ("#000", "#fff")
    button_css = ""
    if styled:
        colour = rng.choice(("#1a73e8", "#188038", "#d93025", "#5f6368", "#e8eaed", "#6200ee"))
        text = "#202124" if colour == "#e8eaed" else "#fff"
        button_css = (f"#{TARGET}{{background:{colour};color:{text};border:0;"
                      f"border-radius:{rng.choice((0, 3, 6, 16))}px;"
                      f"padding:{rng.randint(4, 10)}px {rng.randint(10, 24)}px}}")
    level = rng.randint(1, 3)
    blocks: list[str] = [f"<h{level}>{html.escape(words(1, 4))}</h{level}>"]
    for _ in range(rng.randint(0, 2)):
        blocks.append(f"<p>{html.escape(words(4, 24))}</p>")
    if rng.random() < 0.6:
        links = " ".join(f'<a href="#">{html.escape(words(1, 2))}</a>' for _ in range(rng.randint(1, 5)))
        blocks.append(f"<p>{links}</p>")
    form: list[str] = []
    for _ in range(rng.randint(0, 4)):
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
    tag = (f"<button id='{TARGET}'>{html.escape(word)}</button>" if rng.random() < 0.7
           else f"<input type='submit' id='{TARGET}' value='{html.escape(word)}'>")
    form.insert(rng.randint(0, len(form)), f"<div>{tag}</div>")
    if after:  # the form is gone, a confirmation in its place (the rest drawn as before)
        form = [f"<p><b>{html.escape(words(2, 5))}</b></p>"]
    blocks.append("<form onsubmit='return false'>" + "".join(form) + "</form>")
    body = "".join(blocks)
    if rng.random() < 0.4:  # a card: narrow, anywhere on the page
        body = (f"<div style='position:absolute;left:{rng.randint(0, 600)}px;top:{rng.randint(0, 300)}px;"
                f"width:{rng.randint(160, 420)}px;border:1px solid #bbb;padding:4px;"
                f"background:{rng.choice(('#fff', '#ffffe0', '#eef'))}'>{body}</div>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(words(1, 3))}"
            f"</title><style>body{{font-family:'{font}';font-size:{px}px;color:{fg};background:{bg}}}"
            f"button,input,select,textarea{{font-size:inherit;font-family:inherit}}"
            f"a{{color:{rng.choice(('#1a0dab', '#0645ad', '#06c'))}}}{button_css}</style></head>"
            f"<body>{body}</body></html>")


class WebRenderer:
    """One Chromium window on a private Xvfb that draws pages at a screen size."""

    def __init__(self) -> None:
        from agent.eval.browser import Browser, BrowserOptions, XvfbDisplay
        from agent.eval.cdp import Cdp
        from agent.eval.reaper import start_reaper

        self._pages = Path(tempfile.mkdtemp(prefix="deskhand-nano-web-"))
        # Xvfb and Chromium run in sessions of their own: a training run killed without its
        # exit handlers would leave them behind (holding the port in the address bar). They
        # carry a mark a reaper looks for once this process has exited, however it ended.
        token = uuid.uuid4().hex
        self._reaper = start_reaper(REAP_VAR, token, remove=self._pages)
        self._display = XvfbDisplay(SCREEN)
        self._browser: Browser | None = None
        self._server: ThreadingHTTPServer | None = None
        self._cdp: Cdp | None = None
        earlier = os.environ.get(REAP_VAR)
        os.environ[REAP_VAR] = token  # inherited by the two processes started now, and theirs
        try:
            display = self._display.start()
            self._server = _serve(self._pages)
            self._browser = Browser(display, BrowserOptions(size=Size(1280, 800), offline=True))
            self._cdp = Cdp(self._browser.start("about:blank")).connect()
            self._cdp.ready()
            self._window = self._cdp.call("Browser.getWindowForTarget")["windowId"]
            self._size: Size | None = None
        except Exception:
            self.close()
            raise
        finally:
            if earlier is None:
                os.environ.pop(REAP_VAR, None)
            else:
                os.environ[REAP_VAR] = earlier

    def draw(self, markup: str, size: Size, name: str) -> tuple[Image.Image, Box | None]:
        """The screen of `size` showing `markup` in the browser window (its address bar showing
        `name`), and the target's box in screen pixels (None when the page has no target)."""
        import mss

        if size != self._size:  # a resize re-lays out the browser's own bars: only when needed
            self._cdp.call("Browser.setWindowBounds", {"windowId": self._window, "bounds": {
                "left": 0, "top": 0, "width": size.width, "height": size.height}})
            self._size = size
        path = self._pages / f"{name}.html"
        path.write_text(markup, encoding="utf-8")
        url = f"http://127.0.0.1:{self._server.server_address[1]}/{path.name}"
        # A page-made navigation (a file: URL is refused there): the address bar stays
        # unfocused, as after a click on a link.
        self._cdp.evaluate(f"location.href = {json.dumps(url)}; true")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._cdp.ready(2, navigated=True) and self._cdp.evaluate("location.href") == url:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"Chromium did not load {path}")
        # A click on the page's bare bottom-left corner: the address bar (focused, its text
        # selected, in a window that was never clicked) shows as on a page in use.
        height = self._cdp.viewport().height
        for kind in ("mousePressed", "mouseReleased"):
            self._cdp.call("Input.dispatchMouseEvent", {"type": kind, "x": 1, "y": height - 2,
                                                        "button": "left", "clickCount": 1})
        box = None
        if self._cdp.evaluate(f"!!document.getElementById('{TARGET}')"):
            self._cdp.evaluate(f"document.getElementById('{TARGET}')"
                               ".scrollIntoView({block: 'nearest'}); true")
            rect, view = self._cdp.rect(f"#{TARGET}"), self._cdp.viewport()
            if rect is not None:
                left, top = view.to_screen(rect.x, rect.y)
                right, bottom = view.to_screen(rect.x + rect.width, rect.y + rect.height)
                box = Box(int(left), int(top), -int(-right), -int(-bottom))
        # Two frames: what the page laid out is on the screen before it is captured.
        self._cdp.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        time.sleep(0.05)
        with mss.MSS(display=self._display.display) as grabber:
            shot = grabber.grab({"left": 0, "top": 0, "width": size.width, "height": size.height})
        return Image.frombytes("RGB", shot.size, shot.rgb), box

    def close(self) -> None:
        from agent.eval.reaper import stop_reaper

        if self._cdp is not None:
            self._cdp.close()
        if self._browser is not None:
            self._browser.close()
        self._display.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        stop_reaper(self._reaper)  # its round now: anything left, and the pages' folder


def _serve(folder: Path) -> ThreadingHTTPServer:
    """A loopback HTTP server for the pages in `folder` (its own thread, no log)."""
    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args) -> None:
            pass

    # The port is in the address bar: the same one each time (the first free of a few), so a
    # screen drawn again is the same pixels.
    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), Quiet)
            break
        except OSError:
            continue
    else:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


_renderer: WebRenderer | None = None


def _draw(split: str, index: int, folder: Path) -> None:
    """Draw screen (split, index) with the shared renderer and write it to `folder`."""
    rng = random.Random(f"nano-web:{split}:{index}")
    word = rng.choice(HELD_OUT_WORDS if split == "heldout_words" else TRAIN_WORDS)
    size = Size(*rng.choice(SCREEN_SIZES))
    layout_seed = rng.random()
    wording = random.Random(f"nano-wording:{split}:{index}").choice(WORDINGS)
    done_step = rng.random() < DONE_SHARE
    image, box = _drawn(page(random.Random(layout_seed), word), size, f"{split}-{index}")
    # The part of the button on the screen (a card near the edge may cut it); none: a bug here.
    if box is not None:
        box = Box(max(box.left, 0), max(box.top, 0), min(box.right, size.width),
                  min(box.bottom, size.height))
    if box is None or box.left >= box.right or box.top >= box.bottom:
        raise RuntimeError(f"web screen {split} {index}: the button is not on the screen")
    meta = {"word": word, "wording": wording, "box": [box.left, box.top, box.right, box.bottom],
            "image": f"{split}-{index}.png", "after": None}
    if done_step:
        after, _ = _drawn(page(random.Random(layout_seed), word, after=True), size,
                          f"{split}-{index}-done")
        meta["after"] = f"{split}-{index}-after.png"
        _write(folder / meta["after"], lambda path: after.save(path, compress_level=1))
    _write(folder / meta["image"], lambda path: image.save(path, compress_level=1))
    # The metadata last: a screen is cached only once it is whole (a process drawing the same
    # screen at once writes the same files, each through its own temporary name).
    _write(folder / f"{split}-{index}.json", lambda path: path.write_text(json.dumps(meta)))


def _drawn(markup: str, size: Size, name: str) -> tuple[Image.Image, Box | None]:
    """`markup` drawn by the shared renderer, started on first use and once more if its browser
    died (a long training run outlives a crash)."""
    global _renderer
    for attempt in (1, 2):
        if _renderer is None:
            _renderer = WebRenderer()
            atexit.register(_close_renderer)
        try:
            return _renderer.draw(markup, size, name)
        except Exception:
            _close_renderer()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _write(path: Path, save) -> None:
    """`save(temporary)` then the temporary renamed to `path`: readers see whole files only."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    save(temporary)
    temporary.replace(path)


def _close_renderer() -> None:
    global _renderer
    if _renderer is not None:
        renderer, _renderer = _renderer, None
        try:
            renderer.close()
        except Exception:
            pass  # a browser that died takes its own display down with it
