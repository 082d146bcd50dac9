"""Nano's web screens: generated pages drawn by a real Chromium in a browser window on a private
Xvfb, the button's box read from the page, each screen drawn once and then read from the cache."""

from __future__ import annotations

import random
import shutil

import pytest
from PIL import ImageStat

from agent.actions import Terminate
from agent.geometry import Size
from agent.prompts import get_family
from app.nano import evaluate, web
from app.nano.desktop import SCREEN_SIZES, nano_model_size
from app.nano.examples import answer, is_hit
from app.nano.screens import HELD_OUT_WORDS, TRAIN_WORDS, make_any

NANO = get_family("fara15", system="You are Deskhand Nano.")
needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("Xvfb") is None,
                                    reason="no chromium or Xvfb (scripts/setup.sh dev)")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DESKHAND_NANO_WEB", str(tmp_path))
    yield tmp_path / web.VERSION
    web._close_renderer()


def test_a_page_has_one_button_its_label_escaped_and_none_once_clicked() -> None:
    for i in range(40):
        markup = web.page(random.Random(i), "Save")
        assert markup.count(f"id='{web.TARGET}'") == 1
        assert markup.count("<button") + markup.count("type='submit'") == 1
        after = web.page(random.Random(i), "Save", after=True)
        assert f"id='{web.TARGET}'" not in after and "<button" not in after
    hostile = web.page(random.Random(0), "<script>alert(1)</script>")
    assert "<script>" not in hostile and "&lt;script&gt;" in hostile


@needs_chromium
def test_web_screens_are_drawn_once_at_real_sizes_with_the_button_in_its_box(cache, monkeypatch) -> None:
    sizes = {nano_model_size(Size(w, h)) for w, h in SCREEN_SIZES}
    screens = [make_any("web", "train", i) for i in range(6)]
    for s in screens:
        assert Size(*s.image.size) in sizes and s.target_button.label in TRAIN_WORDS
        shown = s.image if s.previous is None else s.previous
        box = s.target_button.box
        assert 0 <= box.left < box.right <= shown.width and 0 <= box.top < box.bottom <= shown.height
        # A button is drawn there: its box is not one flat colour (a label, a border, a fill).
        assert max(ImageStat.Stat(shown.crop((box.left, box.top, box.right, box.bottom))).stddev) > 5
        if s.previous is None:
            assert s.captured is not None and nano_model_size(Size(*s.captured.size)) == Size(*s.image.size)
            assert is_hit(NANO.parse(answer(NANO, s), Size(*s.image.size)).action, s)
        else:  # the step after the click: the button is gone, the answer ends the task
            assert NANO.parse(answer(NANO, s), Size(*s.image.size)).action == Terminate("success")
    # Drawn once: the cache answers the same screens without a browser.
    monkeypatch.setattr(web, "WebRenderer", lambda: pytest.fail("drew a cached screen again"))
    web._close_renderer()
    again = [make_any("web", "train", i) for i in range(6)]
    assert [a.image.tobytes() for a in again] == [s.image.tobytes() for s in screens]
    assert [a.task for a in again] == [s.task for s in screens]


@needs_chromium
def test_held_out_words_are_held_out_and_an_unfinished_entry_is_drawn_again(cache) -> None:
    assert all(make_any("web", "heldout_words", i).target_button.label in HELD_OUT_WORDS
               for i in range(3))
    first = make_any("web", "heldout", 0)
    (cache / "heldout-0.json").unlink()  # as if the drawing had stopped before its metadata
    assert make_any("web", "heldout", 0).image.tobytes() == first.image.tobytes()


@needs_chromium
def test_webladder_takes_turns_and_is_scored_with_web_pages_apart(cache, monkeypatch, qapp) -> None:
    assert make_any("webladder", "train", 0).task == make_any("ladder", "train", 0).task  # desktop
    assert make_any("webladder", "train", 1).image.size == make_any("buttons", "train", 1).image.size
    assert make_any("webladder", "train", 2).task == make_any("web", "train", 2).task

    class Family:  # the right reply to every screen, read by the real family's parser
        prompts = None

        @staticmethod
        def terminates(reply, size):
            return NANO.parse(reply, size).action == Terminate("success")

        @staticmethod
        def action(reply, size):
            return NANO.parse(reply, size).action

    monkeypatch.setattr(evaluate, "reply_of", lambda _m, _e, screen: answer(NANO, screen))

    class Model:
        training = False

        def eval(self):
            return self

        def train(self, mode=True):
            return self

    rates = evaluate.hit_rates(Model(), Family(), 3, None, "webladder")
    assert rates["web_heldout"] == rates["heldout"] == rates["buttons_heldout"] == 1.0
    assert "web_heldout_words" in rates


def test_a_browser_that_dies_is_started_again_and_a_cut_button_keeps_its_visible_part(
        cache, monkeypatch) -> None:
    from PIL import Image

    from app.nano.screens import Box

    started: list[object] = []

    class Renderer:  # the first browser dies on its first page; the next one draws
        def __init__(self) -> None:
            started.append(self)

        def draw(self, markup, size, name):
            if len(started) == 1:
                raise RuntimeError("DevTools connection lost")
            return Image.new("RGB", (size.width, size.height), "white"), Box(-5, 10, 40, 30)

        def close(self) -> None:
            pass

    monkeypatch.setattr(web, "WebRenderer", Renderer)
    screen = make_any("web", "train", 4)
    assert len(started) == 2
    shown = screen.image if screen.previous is None else screen.previous
    assert screen.target_button.box.left == 0 and screen.target_button.box.right > 0
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == []  # no temporaries left
    assert Size(*shown.size) in {nano_model_size(Size(w, h)) for w, h in SCREEN_SIZES}


def _marked_processes() -> set[int]:
    """Processes carrying the renderer's reaper mark (any run's)."""
    from pathlib import Path

    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if web.REAP_VAR.encode() + b"=" in (entry / "environ").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


@needs_chromium
def test_a_killed_training_process_leaves_no_browser_or_display_behind(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    before = _marked_processes()
    folders = set(Path(tempfile.gettempdir()).glob("deskhand-nano-web-*"))
    child = subprocess.Popen(
        [sys.executable, "-c", "from app.nano.web import make_web; make_web('train', 1); "
         "print('drawn', flush=True); import time; time.sleep(120)"],
        env={**os.environ, "DESKHAND_NANO_WEB": str(tmp_path)}, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "drawn"
        theirs = _marked_processes() - before
        assert theirs, "the renderer's Xvfb and Chromium carry the mark"
    finally:
        child.send_signal(signal.SIGKILL)  # no exit handlers run
        child.wait()
    deadline = time.monotonic() + 20
    while theirs & _marked_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not theirs & _marked_processes()
    while set(Path(tempfile.gettempdir()).glob("deskhand-nano-web-*")) - folders \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(Path(tempfile.gettempdir()).glob("deskhand-nano-web-*")) - folders  # pages gone


@needs_chromium
def test_a_damaged_cache_entry_is_drawn_again(cache) -> None:
    first = make_any("web", "heldout", 1)
    (cache / "heldout-1.png").write_bytes(b"\x89PNG not really")
    assert make_any("web", "heldout", 1).image.tobytes() == first.image.tobytes()
    (cache / "heldout-1.json").write_text('{"word": 3}')
    assert make_any("web", "heldout", 1).task == first.task
