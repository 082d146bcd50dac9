"""The real loop on a real X display: capture -> model image -> model coordinates -> input.

A scripted "model" finds each target by colour in the very image the model receives (model
size) and answers in Fara's format with model-space coordinates; the executor sends real input
to a Qt test window running in its own process (tests/support/apps/form_app.py), which reports its
state as JSON. Any scaling or monitor-origin error makes a click miss and a state check fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.actions import (
    Action,
    HistoryBack,
    KeyPress,
    LeftClick,
    Scroll,
    Terminate,
    TypeText,
    VisitUrl,
    Wait,
    WebSearch,
    format_call,
)
from agent.desktop import focused_window_title
from agent.executor import Executor, XTestTyper
from agent.geometry import Monitor, ScreenMapping, Size, model_size_for
from agent.inference.base import ScriptedBackend
from agent.loop import RunConfig, RunStatus, run_task
from agent.safety import Gate, StopFlag
from agent.screen import Screen
from tests.support.apps.form_app import COLOURS, COMBO_ENTRIES, TARGET_ENTRY, TARGET_ITEM

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xvfb


def find(image: Image.Image, name: str, tolerance: int = 12, min_pixels: int = 40) -> tuple[int, int] | None:
    """Centre (model pixels) of the pixels of one widget colour, or None when it is not visible."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    mask = (np.abs(pixels - np.array(COLOURS[name], dtype=np.int16)) <= tolerance).all(axis=2)
    ys, xs = np.nonzero(mask)
    if len(xs) < min_pixels:
        return None
    return round(float(np.median(xs))), round(float(np.median(ys)))


class FormApp:
    """The test window in a subprocess on `display`, placed at (x, y)."""

    def __init__(self, display: str, x: int, y: int, state: Path) -> None:
        self.state_path = state
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        env.pop("WAYLAND_DISPLAY", None)
        command = [sys.executable, "-m", "tests.support.apps.form_app", str(state), str(x), str(y)]
        # A file, not a pipe: a chatty Qt must never block on a full pipe mid-test.
        self.log_path = state.with_suffix(".log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not self.state().get("ready"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                log = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the test window did not start: {log}")
            time.sleep(0.05)

    def state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Script:
    """The scripted model: one stage per action, each finding its target in the image shown.

    When a target is not on screen yet (a slow pop-up on a loaded machine) it waits and looks
    again, as a real model would, a few times before giving up.
    """

    STAGES: tuple[tuple[str | None, Callable[[tuple[int, int] | None], Action]], ...] = (
        ("apply", lambda p: LeftClick(p)),
        ("field", lambda p: TypeText("Zürich ✓", p, press_enter=True, delete_existing_text=True)),
        ("list", lambda p: Scroll(-600, p)),
        ("target_item", lambda p: LeftClick(p)),
        ("combo", lambda p: LeftClick(p)),
        ("target_entry", lambda p: LeftClick(p)),
        (None, lambda p: KeyPress(("ctrl", "shift", "k"))),
        (None, lambda p: Terminate("success")),
    )

    def __init__(self, retries: int = 5) -> None:
        self.stage = 0
        self.misses = 0
        self.retries = retries
        self.seen: list[Size] = []

    def __call__(self, messages: list, images: list) -> str:
        image = images[-1]  # what the model sees: already resized to model size
        self.seen.append(Size(*image.size))
        target, make = self.STAGES[min(self.stage, len(self.STAGES) - 1)]
        point = find(image, target) if target else None
        if target and point is None:
            self.misses += 1
            if self.misses > self.retries:
                return format_call(f"I cannot see the {target}.", Terminate("failure"))
            return format_call(f"Waiting for the {target} to appear.", Wait(0.2))
        self.stage += 1
        return format_call(f"Acting on {target or 'the window'}.", make(point))


CASES = {
    # name: (screen size, monitor overrides or None, monitor index, window position)
    "1440x900": ((1440, 900), None, 1, (100, 60)),
    "1920x1080": ((1920, 1080), None, 1, (700, 240)),
    # One X screen split into two monitors; the window is on the right one (origin 1440, 0).
    "right-monitor": ((2880, 900), [Monitor(1, 0, 0, 1440, 900), Monitor(2, 1440, 0, 1440, 900)], 2,
                      (1440 + 420, 70)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_loop_drives_a_real_window(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   xvfb_factory) -> None:
    (width, height), monitors, index, (x, y) = CASES[case]
    with xvfb_factory(width, height) as display:
        monkeypatch.setenv("DISPLAY", display)
        app = FormApp(display, x, y, tmp_path / "state.json")
        screen = Screen(display, monitors=monitors)
        try:
            with Executor(display=display) as executor:
                script = Script()
                steps = []
                result = run_task("Fill in the test form.",
                                  backend=ScriptedBackend([script], repeat_last=True),
                                  screen=screen, executor=executor, gate=Gate("never"),
                                  config=RunConfig(monitor=index, offline=True, settle_timeout=1.5),
                                  on_step=steps.append)
            state = app.state()
            title = focused_window_title(display)
        finally:
            screen.close()
            app.close()
    assert result.status is RunStatus.SUCCESS, (result, [s.summary for s in steps], state)
    target = monitors[index - 1] if monitors else Monitor(1, 0, 0, width, height)
    assert set(script.seen) == {model_size_for(target.size)}  # every image at model size
    assert (steps[0].screenshot.monitor.left, steps[0].screenshot.size) == (target.left, target.size)
    assert state["clicked"] == ["apply"]
    assert state["text"] == "Zürich ✓"
    assert state["submitted"] == "Zürich ✓"
    assert state["selected"] == f"Item {TARGET_ITEM:02d}"
    assert state["combo"] == COMBO_ENTRIES[TARGET_ENTRY]
    assert state["chords"] == 1
    assert title == "Deskhand test form"


def test_screen_monitor_override(xvfb_factory) -> None:
    with xvfb_factory(1200, 400) as display:
        screen = Screen(display, monitors=[Monitor(1, 0, 0, 600, 400), Monitor(7, 600, 0, 600, 400)])
        try:
            assert [(m.index, m.left, m.width) for m in screen.monitors()] == [(1, 0, 600), (2, 600, 600),
                                                                               (0, 0, 1200)]
            shot = screen.capture(2)
            assert shot.size == Size(600, 400)
            assert (shot.monitor.left, shot.monitor.top) == (600, 0)
            with pytest.raises(Exception, match="monitor 3 is not connected"):
                screen.capture(3)
        finally:
            screen.close()
    with pytest.raises(ValueError):
        Screen(monitors=[])


class _Site:
    """A loopback web site that records the paths it is asked for (decoded)."""

    PAGE = ("<html><head><title>{title}</title></head><body style='margin:0'>"
            "<input style='position:absolute;left:120px;top:120px;width:420px;height:70px;"
            "font-size:30px;border:none;background:rgb(32,192,64)' "
            "oninput=\"fetch('/typed?' + encodeURIComponent(this.value))\"></body></html>")

    def __init__(self) -> None:
        import http.server
        import threading
        import urllib.parse

        self.paths: list[str] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.paths.append(urllib.parse.unquote_plus(self.path))
                body = site.PAGE.format(title=self.path.strip("/").split("?")[0] or "home").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, path: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while path not in self.paths:
            if time.monotonic() > deadline:
                raise AssertionError(f"the browser never asked for {path!r}; it asked for {self.paths}")
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_title(display: str, prefix: str, timeout: float = 15.0) -> bool:
    """Wait until the focused window's title starts with `prefix`."""
    deadline = time.monotonic() + timeout
    while not focused_window_title(display).startswith(prefix):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium (scripts/setup.sh dev)")
def test_browser_actions_in_chromium(tmp_path: Path, xvfb_factory) -> None:
    """type (non-ASCII), visit_url, web_search and history_back with real keys in a real browser."""
    site = _Site()
    with xvfb_factory(1280, 800) as display:
        args = ["chromium", "--no-first-run", "--no-default-browser-check", "--disable-gpu",
                f"--user-data-dir={tmp_path / 'profile'}", "--window-position=0,0", "--window-size=1280,800",
                "--disable-features=Translate", f"{site.url}/start"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        env = dict(os.environ, DISPLAY=display)
        with open(tmp_path / "chromium.log", "wb") as log:
            browser = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        screen = Screen(display)
        try:
            site.wait_for("/start")
            with Executor(display=display, search_url=f"{site.url}/search?q={{query}}") as executor:
                field = None
                for _ in range(50):  # the page may paint a moment after it was requested
                    shot = screen.capture(1)
                    size = model_size_for(shot.size)
                    image = shot.image.resize((size.width, size.height), Image.Resampling.BICUBIC)
                    field = find(image, "field")
                    if field:
                        break
                    time.sleep(0.1)
                assert field is not None, "the page's input never appeared"
                mapping = ScreenMapping(shot.monitor, shot.size, size)
                executor.perform(TypeText("Zürich ✓", field, press_enter=False), mapping)
                site.wait_for("/typed?Zürich ✓")
                # As the loop does: the next action comes once the page has loaded and the
                # screen has settled (a page that finishes loading takes the focus back).
                screen.wait_settled(1)
                executor.perform(VisitUrl(f"{site.url.removeprefix('http://')}/second"), mapping)
                site.wait_for("/second")
                assert wait_title(display, "second")
                screen.wait_settled(1)
                executor.perform(WebSearch("café ✓"), mapping)
                site.wait_for("/search?q=café ✓")
                assert wait_title(display, "search")
                screen.wait_settled(1)
                # Back may come from the page cache without a request: watch the window title.
                executor.perform(HistoryBack(), mapping)
                assert wait_title(display, "second"), focused_window_title(display)
        finally:
            screen.close()
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait(5)
            site.close()


class _StopAfter(StopFlag):
    """A stop flag that the user 'presses' after it has been looked at `checks` times."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        if self.checks < 0:
            self.set("stopped by the user")
        return super().is_set()


def test_stop_interrupts_long_typing(tmp_path: Path, xvfb_factory) -> None:
    with xvfb_factory(1440, 900) as display:
        app = FormApp(display, 0, 0, tmp_path / "state.json")
        screen = Screen(display)
        try:
            shot = screen.capture(1)
            mapping = ScreenMapping(shot.monitor, shot.size, shot.size)  # model == screen here
            field = find(shot.image, "field")
            assert field is not None
            chunk = XTestTyper.CHUNK
            with Executor(display=display, stop=_StopAfter(3)) as executor:
                note = executor.perform(TypeText("é" * 50 * chunk, field, delete_existing_text=True), mapping)
                assert "interrupted" in note
                deadline = time.monotonic() + 10
                while app.state().get("text") != "é" * 3 * chunk and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert app.state()["text"] == "é" * 3 * chunk  # three chunks, then the stop
            assert app.state()["submitted"] is None  # no Enter after a stop
        finally:
            screen.close()
            app.close()


def test_typing_more_new_characters_than_spare_keycodes(tmp_path: Path, xvfb_factory) -> None:
    """Spare keycodes get reused (least recently used first) without garbling earlier text."""
    text = "αβγδεζηθικλμνξοπρστυφχψω ÀÉÎÕÜ ✓✗→←€ 日本語"  # ~40 characters no US layout has
    with xvfb_factory(1440, 900) as display:
        app = FormApp(display, 0, 0, tmp_path / "state.json")
        screen = Screen(display)
        try:
            shot = screen.capture(1)
            mapping = ScreenMapping(shot.monitor, shot.size, shot.size)
            field = find(shot.image, "field")
            assert field is not None
            with Executor(display=display) as executor:
                executor.perform(TypeText(text, field, press_enter=True, delete_existing_text=True), mapping)
                deadline = time.monotonic() + 10
                while app.state().get("submitted") is None and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert app.state()["submitted"] == text
        finally:
            screen.close()
            app.close()


def test_gate_denies_input_to_a_window_on_the_deny_list(tmp_path: Path, xvfb_factory) -> None:
    """focused_window_title feeds the gate: an action aimed at a denied window never happens."""
    with xvfb_factory(1440, 900) as display:
        app = FormApp(display, 0, 0, tmp_path / "state.json")
        screen = Screen(display)
        try:
            gate = Gate("risky", deny_titles=["test form"],
                        window_title=lambda: focused_window_title(display))
            with Executor(display=display) as executor:
                result = run_task("Press Apply.", backend=ScriptedBackend([Script()]), screen=screen,
                                  executor=executor, gate=gate, config=RunConfig(offline=True))
            time.sleep(0.3)  # a click, had one been sent, would have reached the window by now
            state = app.state()
        finally:
            screen.close()
            app.close()
    assert result.status is RunStatus.DENIED
    assert "Deskhand test form" in result.reason
    assert state["clicked"] == []
