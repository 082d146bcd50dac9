"""Nano's web screens: generated pages drawn by a real Chromium in a browser window on a private
Xvfb, the button's box read from the page, each screen drawn once and then read from the cache."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from agent.actions import Terminate
from agent.geometry import Size
from agent.prompts import get_family
from app.nano import evaluate, web
from app.nano.desktop import SCREEN_SIZES, nano_model_size
from app.nano.examples import answer, is_hit
from app.nano.screens import HELD_OUT_WORDS, TRAIN_WORDS, Box, make_any

NANO = get_family("fara15", system="You are Deskhand Nano.")
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("Xvfb") is None,
                                    reason="no chromium or Xvfb (scripts/setup.sh dev)")
MAGENTA = (255, 0, 255)


def _alike(a: Image.Image, b: Image.Image) -> bool:
    """The same picture drawn twice: Chromium's pixels are not exact from one drawing to the
    next (seen: one pixel of the tab strip one level apart under load), so a few pixels may
    differ by a little; a moved or missing element differs by far more."""
    if a.size != b.size:
        return False
    levels = ImageChops.difference(a.convert("RGB"), b.convert("RGB")).convert("L").histogram()
    off = sum(levels[25:])  # pixels more than 24 levels apart
    return off <= a.width * a.height // 2000 and not any(levels[97:])


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DESKHAND_NANO_WEB", str(tmp_path))
    yield tmp_path / web.VERSION
    web._close_renderer()


@pytest.fixture
def renderer():
    drawer = web.WebRenderer()
    yield drawer
    drawer.close()


def test_a_page_has_its_buttons_alike_with_labels_escaped_and_an_address_without_split_or_index() -> None:
    kinds, bars = set(), 0
    for i in range(40):
        others = ("No", "<i>x</i>", "Cancel")[: i % 4]
        markup = web.page(random.Random(i), "it's <b>", others)
        assert markup.count(f"id='{web.TARGET}'") == 1 and markup.count("<form") == 1
        assert all(markup.count(f"id='{web.OTHER.format(j)}'") == 1 for j in range(len(others)))
        buttons = markup.count("<button") + markup.count("type='submit'")
        assert buttons == 1 + len(others) == markup.count("class='dh'")  # styled alike: read, not seen
        assert "it's <b>" not in markup and ("it&#x27;s &lt;b&gt;" in markup)
        assert "<i>x</i>" not in markup
        kinds.add("<button" in markup.split(f"id='{web.TARGET}'")[0][-12:])
        heading = re.search("<h[1-3]>", markup)
        bars += heading is not None and markup.index("dh-") < heading.start()  # a bar above it
        path = web.address(random.Random(i))
        assert path.endswith(".html") and not any(c.isdigit() for c in path)
        assert "train" not in path and "heldout" not in path
    assert kinds == {True, False}  # both the <button> and the <input type=submit> are checked
    assert bars > 0


def test_the_pages_are_the_version_they_claim() -> None:
    """A change to the pages must bump VERSION (the cache is per version): this digest of a few
    pages moves with them."""
    digest = hashlib.sha256("".join(web.page(random.Random(i), "OK", ("Yes", "No")[: i % 3])
                                    + web.address(random.Random(i))
                                    for i in range(5)).encode()).hexdigest()[:16]
    assert (web.VERSION, digest) == ("v3", PAGES_V3)


PAGES_V3 = "d01f8d5d17034933"


@needs_chromium
def test_the_box_read_from_the_page_is_where_the_button_is_drawn(renderer) -> None:
    def page(top: int) -> str:
        return (f"<html><body style='margin:0'><div style='height:{top}px'></div><form>"
                f"<button id='{web.TARGET}' style='background:#f0f;border:0;width:90px;height:30px;"
                "margin-left:200px'></button></form><button id='" + web.OTHER.format(0) +
                "' style='background:#0ff;border:0;width:40px;height:20px;margin:7px 0 0 20px'>"
                "</button></body></html>")

    # Two sizes one after the other (the window resized between), then a page that scrolls.
    # The same address twice in a row (a reload) shows the new page, not the old one.
    for size, top, name in ((Size(1280, 800), 100, "a.html"), (Size(1024, 768), 300, "b.html"),
                            (Size(1024, 768), 2000, "c.html"), (Size(1024, 768), 50, "c.html")):
        image, box = renderer.draw(page(top), size, name)
        assert image.size == (size.width, size.height) and box is not None
        assert box.right - box.left == 90 and box.bottom - box.top == 30
        inside = [image.getpixel((x, y)) for x in range(box.left + 1, box.right - 1, 7)
                  for y in range(box.top + 1, box.bottom - 1, 5)]
        ring = [(x, y) for x in (box.left - 2, box.right + 1) for y in range(box.top, box.bottom, 5)]
        ring += [(x, y) for y in (box.top - 2, box.bottom + 1) for x in range(box.left, box.right, 7)]
        ring = [image.getpixel(p) for p in ring if 0 <= p[0] < size.width and 0 <= p[1] < size.height]
        assert all(p == MAGENTA for p in inside) and not any(p == MAGENTA for p in ring)
        if top < 500:  # not scrolled: the button sits its offset below the browser's bars (~90 px)
            assert top < box.top < top + 150
        # Another element's box, by its id: the cyan button below the form.
        other = renderer.box(web.OTHER.format(0), size)
        if other is not None:
            assert (other.right - other.left, other.bottom - other.top) == (40, 20)
            assert other.left == 20 and other.top >= box.bottom + 7
            assert image.getpixel(((other.left + other.right) // 2, (other.top + other.bottom) // 2)) \
                == (0, 255, 255)


@needs_chromium
def test_the_step_after_keeps_the_address_and_everything_but_the_form(renderer) -> None:
    markup = ("<html><head><title>Shop</title></head><body><h1>Cart</h1><p>Name <input></p><form>"
              f"<button id='{web.TARGET}'>Pay</button></form><p>footer words</p></body></html>")
    size = Size(1280, 800)
    before, box = renderer.draw(markup, size, "cart.html")
    after = renderer.confirm("Thank you", size)
    bar = (0, 0, size.width, 80)  # tab strip and address bar: same title, same address
    assert _alike(before.crop(bar), after.crop(bar))
    above = (0, 80, size.width, box.top)  # the page above the form
    assert _alike(before.crop(above), after.crop(above))
    assert before.crop((box.left, box.top, box.right, box.bottom)).tobytes() != \
        after.crop((box.left, box.top, box.right, box.bottom)).tobytes()  # the button is gone


@needs_chromium
def test_web_screens_are_drawn_once_at_real_sizes_with_the_button_in_its_box(cache, monkeypatch) -> None:
    sizes = {nano_model_size(Size(w, h)) for w, h in SCREEN_SIZES}
    indices = [*range(4), 16, 28]  # 16 and 28 are steps after the click (v3's generator)
    screens = [make_any("web", "train", i) for i in indices]
    assert any(s.previous is not None for s in screens)  # a step after among them
    for s in screens:
        assert Size(*s.image.size) in sizes and s.target_button.label in TRAIN_WORDS
        shown = s.image if s.previous is None else s.previous
        box = s.target_button.box
        assert 0 <= box.left < box.right <= shown.width and 0 <= box.top < box.bottom <= shown.height
        if s.previous is None:
            assert s.captured is not None and nano_model_size(Size(*s.captured.size)) == Size(*s.image.size)
            assert is_hit(NANO.parse(answer(NANO, s), Size(*s.image.size)).action, s)
        else:  # the step after the click: the answer ends the task
            assert NANO.parse(answer(NANO, s), Size(*s.image.size)).action == Terminate("success")
            assert s.image.tobytes() != s.previous.tobytes()
    # Drawn once: the cache answers the same screens without a browser.
    monkeypatch.setattr(web, "WebRenderer", lambda: pytest.fail("drew a cached screen again"))
    web._close_renderer()
    again = [make_any("web", "train", i) for i in indices]
    assert [a.image.tobytes() for a in again] == [s.image.tobytes() for s in screens]
    assert [a.task for a in again] == [s.task for s in screens]


@needs_chromium
def test_pages_with_several_buttons_name_one_and_know_where_each_is(cache) -> None:
    """The named button is read among others: each button's box holds its own colour of pixels
    (what the screen shows there), the boxes apart, the labels distinct, training pages showing
    training words only."""
    counts = set()
    for i in range(12):
        s = make_any("web", "train", i)
        labels = [b.label for b in s.buttons]
        counts.add(len(labels))
        assert s.target == 0 and len(set(labels)) == len(labels)
        assert all(label in TRAIN_WORDS for label in labels)
        boxes = [b.box for b in s.buttons]
        assert not any(a.overlaps(b) for j, a in enumerate(boxes) for b in boxes[j + 1:])
        shown = s.image if s.previous is None else s.previous
        assert all(0 <= b.left < b.right <= shown.width and 0 <= b.top < b.bottom <= shown.height
                   for b in boxes)
        if s.previous is None:  # the answer clicks the named one, not another
            action = NANO.parse(answer(NANO, s), Size(*s.image.size)).action
            assert is_hit(action, s) and sum(b.contains(*action.coordinate) for b in boxes) == 1
    assert len(counts) > 1 and counts <= {1, 2, 3, 4}
    held = [make_any("web", "heldout_words", i) for i in range(3)]
    assert all(h.target_button.label in HELD_OUT_WORDS for h in held)
    # A click on a random button's hit rate, what a score of these pages is read against.
    clicks = [h for h in held if h.previous is None]
    assert evaluate.chance(3, kind="web")["heldout_words"] == \
        round(sum(1 / len(h.buttons) for h in clicks) / len(clicks), 4) < 1


@needs_chromium
def test_held_out_words_are_held_out_and_an_unfinished_entry_is_drawn_again(cache) -> None:
    assert all(make_any("web", "heldout_words", i).target_button.label in HELD_OUT_WORDS
               for i in range(3))
    first = make_any("web", "heldout", 0)
    (cache / "heldout-0.json").unlink()  # as if the drawing had stopped before its metadata
    assert _alike(make_any("web", "heldout", 0).image, first.image)


@needs_chromium
def test_a_damaged_cache_entry_is_drawn_again(cache) -> None:
    first = make_any("web", "heldout", 1)
    (cache / "heldout-1.png").write_bytes(b"\x89PNG not really")
    assert _alike(make_any("web", "heldout", 1).image, first.image)
    meta = json.loads((cache / "heldout-1.json").read_text())
    # Well-formed but wrong, one field at a time: the check of the entry's own fields finds it.
    for key, bad in (("word", 3), ("box", [1, 2, 3]), ("others", [["OK", [1, 2, 3, "4"]]])):
        (cache / "heldout-1.json").write_text(json.dumps({**meta, key: bad}))
        assert make_any("web", "heldout", 1).task == first.task
        assert json.loads((cache / "heldout-1.json").read_text()) == meta  # drawn again


@needs_chromium
def test_webladder_takes_turns_and_is_scored_with_web_pages_apart(cache, monkeypatch, qapp) -> None:
    assert make_any("webladder", "train", 0).task == make_any("ladder", "train", 0).task  # desktop
    assert make_any("webladder", "train", 1).image.size == make_any("buttons", "train", 1).image.size
    assert make_any("webladder", "train", 2).task == make_any("web", "train", 2).task

    class Family:  # reads the right reply to every screen with the real family's parser
        @staticmethod
        def terminates(reply, size):
            return NANO.parse(reply, size).action == Terminate("success")

        @staticmethod
        def action(reply, size):
            return NANO.parse(reply, size).action

    class Model:
        training = False

        def eval(self):
            return self

        def train(self, mode=True):
            return self

    monkeypatch.setattr(evaluate, "reply_of", lambda _m, _e, screen: answer(NANO, screen))
    rates = evaluate.hit_rates(Model(), Family(), 3, None, "webladder")
    assert rates["web_heldout"] == rates["heldout"] == rates["buttons_heldout"] == 1.0
    assert "web_heldout_words" in rates


class _DyingRenderer(web.WebRenderer):
    """The first browser dies on its first page; the next one draws a button the screen cuts."""

    started: list[object] = []

    def __init__(self) -> None:
        self.started.append(self)

    def draw(self, markup, size, path, focus=web.TARGET):
        if len(self.started) == 1:
            raise RuntimeError("DevTools connection lost")
        return Image.new("RGB", (size.width, size.height), "white"), Box(0, 10, 40, 30)

    def box(self, element, size):
        return None  # the page's other buttons: not on the screen

    def confirm(self, text, size):
        return Image.new("RGB", (size.width, size.height), "white")

    def close(self) -> None:
        pass


def test_a_browser_that_dies_is_started_again(cache, monkeypatch) -> None:
    _DyingRenderer.started = []
    monkeypatch.setattr(web, "WebRenderer", _DyingRenderer)
    screen = make_any("web", "train", 4)
    assert len(_DyingRenderer.started) == 2 and screen.target_button.box.left == 0
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".")]  # no temporaries left


def _processes_drawing_into(folder: Path) -> set[int]:
    """Processes started for a renderer whose cache is `folder` (Xvfb and Chromium inherit it)."""
    mark = f"DESKHAND_NANO_WEB={folder}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if mark in environ and any(e.startswith(web.REAP_VAR.encode()) for e in environ):
                found.add(int(entry.name))
    return found


@needs_chromium
def test_a_killed_training_process_leaves_no_browser_or_display_behind(tmp_path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "from app.nano import web; web.make_web('train', 1); "
         "print(web._renderer._pages, flush=True); import time; time.sleep(120)"],
        env={**os.environ, "DESKHAND_NANO_WEB": str(tmp_path)}, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the child drew nothing in 60 s"
        pages = Path(child.stdout.readline().strip())
        theirs = _processes_drawing_into(tmp_path)
        assert theirs and pages.is_dir(), "the renderer's Xvfb and Chromium carry the mark"
    finally:
        child.send_signal(signal.SIGKILL)  # no exit handlers run
        child.wait()
    deadline = time.monotonic() + 20
    while (_processes_drawing_into(tmp_path) or pages.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_drawing_into(tmp_path) and not pages.exists()
