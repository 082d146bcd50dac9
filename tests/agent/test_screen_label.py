"""The screen-label reader: OCR on rendered 1920x1080 screens, real AT-SPI on Xvfb, and failure."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from agent import screen_label_ocr, tesseract
from agent.geometry import Monitor, Space
from agent.screen_label import NullReader, ScreenLabelReader, TargetLabel, default_reader
from agent.screen_label_a11y import AccessibilityReader, AtspiBackend, Element
from agent.screen_label_ocr import OcrLabelReader
from tests.support.screen_label_scenes import BUTTON_ROWS, close_label, render, same_label, similarity
from tests.support.xvfb import xvfb


def ocr_only(time_limit: float = 5.0) -> ScreenLabelReader:
    return ScreenLabelReader(None, OcrLabelReader(), time_limit=time_limit)


# -- OCR on rendered screens -------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(16))  # 4 themes x 4 fonts, sizes 13-20 px
def test_reads_each_buttons_own_label_not_a_neighbours(seed: int) -> None:
    scene = render(seed)
    reader = ocr_only()
    slips: set[str] = set()
    for button in scene.buttons:
        left, _, right, _ = button.box
        neighbours = [b.label for b in scene.buttons if b.label != button.label]
        # The centre, and off-centre points a model clicks: on the padding left and right of the text.
        for x in (button.center[0], left + 5, right - 6):
            got = reader.read(scene.image, x, button.center[1])
            case = (scene.theme, scene.font, scene.size, button, x, got)
            assert got.source == "ocr", case
            assert close_label(got.text, button.label), case
            mine = similarity(got.text, button.label)
            assert all(similarity(got.text, other) < mine for other in neighbours), case
            if not same_label(got.text, button.label):
                slips.add(f"{button.label} read as {got.text}")
    assert len(slips) <= 1, slips  # a letter misread on one button of a screen at most


@pytest.mark.parametrize("seed", range(4))
def test_hidpi_screens_are_read_at_half_size(seed: int) -> None:
    """A 2x screen: buttons outgrow the 1x reach, the caption under them must not win."""
    scene = render(seed)
    big = scene.image.resize((3840, 2160), Image.Resampling.LANCZOS)
    reader = ocr_only()
    slips = set()
    for button in scene.buttons:
        got = reader.read(big, 2 * button.center[0], 2 * button.center[1])
        mine = similarity(got.text, button.label)
        assert mine >= 0.6 and all(similarity(got.text, b.label) < mine for b in scene.buttons
                                   if b.label != button.label), (button, got)
        if not same_label(got.text, button.label):
            slips.add(got.text)
    assert len(slips) <= 1, slips


_TORCH_AFTER_OCR = """
import sys
from agent import screen_label_ocr
from PIL import Image
engine = screen_label_ocr.TesseractEngine("eng")
import time
engine.words(Image.new("L", (200, 40), 255), 7, time.monotonic() + 5)
import torch
torch.manual_seed(0)
a, w = torch.randn(64, 512), torch.randn(512, 2048)
err = float(((a.bfloat16() @ w.bfloat16()).float() - a @ w).abs().max())
print(err)
sys.exit(0 if err < 2.0 else 1)
"""


def test_loading_the_engine_leaves_other_openmp_users_alone() -> None:
    """torch loaded after libtesseract shares its libgomp: its numbers must stay right.

    A process-wide OMP_THREAD_LIMIT set while libtesseract loaded made torch's bf16 products
    wrong by up to 102 (0.38 is bf16's own error on these shapes).
    """
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k != "OMP_THREAD_LIMIT"}
    done = subprocess.run([sys.executable, "-c", _TORCH_AFTER_OCR], capture_output=True,
                          text=True, timeout=120, env=env, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, (done.stdout, done.stderr[-2000:])
    assert "OMP_THREAD_LIMIT" not in os.environ


def test_every_label_in_the_set_is_read_in_its_row() -> None:
    """Each row of the set (including the German, French and Spanish ones) drawn once and read."""
    reader = ocr_only()
    for i, row in enumerate(BUTTON_ROWS):
        scene = render(100 + i, rows=(row,))
        for button in scene.buttons:
            got = reader.read(scene.image, *button.center)
            assert same_label(got.text, button.label), (row, button.label, got)


def test_blank_page_and_points_outside_the_image_read_nothing() -> None:
    scene = render(3)
    reader = ocr_only()
    got = reader.read(scene.image, 1700, 300)  # empty page, far from any text
    assert (got.text, got.role, got.source) == ("", "", "none")
    for x, y in ((-1, 10), (10, -1), (1920, 10), (10, 1080), (10**9, 10**9)):
        got = reader.read(scene.image, x, y)
        assert (got.text, got.source) == ("", "none")


def test_text_on_the_page_is_read_by_nearest_phrase() -> None:
    """A point on body text (no button under it) gives the phrase there, not the whole band."""
    img = Image.new("RGB", (1920, 1080), "white")
    from PIL import ImageDraw

    from tests.support.screen_label_scenes import font
    draw = ImageDraw.Draw(img)
    face = font("DejaVuSans.ttf", 15)
    draw.text((600, 500), "Terms of service", font=face, fill="black")
    draw.text((600 + 200, 500), "Delete everything", font=face, fill="black")
    reader = ocr_only()
    assert same_label(reader.read(img, 640, 508).text, "Terms of service")
    assert same_label(reader.read(img, 860, 508).text, "Delete everything")


def test_a_point_in_a_card_reads_its_line_not_the_whole_card() -> None:
    img = Image.new("RGB", (1920, 1080), "white")
    from PIL import ImageDraw

    from tests.support.screen_label_scenes import font
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((500, 440, 800, 520), radius=8, fill=(238, 240, 244))  # inside the reach
    face = font("DejaVuSans.ttf", 15)
    draw.text((520, 452), "Shipping address", font=face, fill=(30, 30, 30))
    draw.text((520, 490), "Delete account", font=face, fill=(30, 30, 30))
    got = ocr_only().read(img, 560, 498)
    assert same_label(got.text, "Delete account"), got


# -- timing -------------------------------------------------------------------------------------

def test_median_check_time_on_1920x1080_screens() -> None:
    """Goal 150 ms median (measured ~8 ms here); the CI bound is generous for shared runners."""
    reader = ocr_only(time_limit=2.0)
    reader.ocr.engine()  # the one-off model load is not a check
    times = []
    for seed in range(6):
        scene = render(seed)
        for button in scene.buttons:
            got = reader.read(scene.image, *button.center)
            times.append(got.seconds)
    assert statistics.median(times) < 0.15, sorted(times)


def test_hard_time_limit_returns_nothing_in_time() -> None:
    scene = render(1)
    reader = ocr_only(time_limit=0.005)
    reader.ocr.engine()
    start = time.monotonic()
    got = reader.read(scene.image, *scene.buttons[0].center)
    assert time.monotonic() - start < 0.5
    assert (got.text, got.source) == ("", "none")


def test_a_check_during_the_first_model_load_does_not_wait_past_its_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = screen_label_ocr.shared_engine

    def slow_load(languages: str):
        time.sleep(1.0)
        return real(languages)

    monkeypatch.setattr(screen_label_ocr, "shared_engine", slow_load)
    ocr = OcrLabelReader()
    ocr.warm()
    time.sleep(0.05)  # the load has started
    scene = render(0)
    start = time.monotonic()
    got = ScreenLabelReader(None, ocr, time_limit=0.2).read(scene.image, *scene.buttons[0].center)
    assert time.monotonic() - start < 0.5 and (got.text, got.source) == ("", "none")
    time.sleep(1.2)  # loaded now: the next check reads
    got = ScreenLabelReader(None, ocr, time_limit=2.0).read(scene.image, *scene.buttons[0].center)
    assert same_label(got.text, scene.buttons[0].label)


class HungBackend:
    """An accessibility bus whose application never answers."""

    space = Space.PHYSICAL

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def element_at(self, x: int, y: int, deadline: float) -> Element | None:
        self.calls += 1
        self.release.wait(10)
        return Element("late", "push button", "atspi")


def test_hung_accessibility_cannot_hold_a_check_past_its_limit() -> None:
    scene = render(0)
    backend = HungBackend()
    reader = ScreenLabelReader(AccessibilityReader(backend=backend), OcrLabelReader(), time_limit=0.3)
    reader.ocr.engine()
    try:
        start = time.monotonic()
        first = reader.read(scene.image, *scene.buttons[1].center)
        assert time.monotonic() - start < 0.6
        assert first.source in ("none", "ocr") and first.text != "late"
        # While the first lookup is still stuck, the next check skips accessibility and reads by OCR.
        second = reader.read(scene.image, *scene.buttons[1].center)
        assert backend.calls == 1
        assert second.source == "ocr" and same_label(second.text, scene.buttons[1].label)
    finally:
        backend.release.set()


# -- accessibility first ------------------------------------------------------------------------

class FakeBackend:
    def __init__(self, element: Element | None, space: Space = Space.PHYSICAL) -> None:
        self.element = element
        self.space = space
        self.points: list[tuple[int, int]] = []

    def element_at(self, x: int, y: int, deadline: float) -> Element | None:
        self.points.append((x, y))
        return self.element


class CountingOcr(OcrLabelReader):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def text_at(self, image: Image.Image, x: int, y: int, deadline: float) -> str:
        self.calls += 1
        return super().text_at(image, x, y, deadline)


def _button(scene, label: str):
    return next(b for b in scene.buttons if b.label == label)


def test_accessibility_name_wins_when_the_screen_agrees() -> None:
    scene = render(0, rows=(("Cancel", "Place order"),))
    ocr = CountingOcr()
    backend = FakeBackend(Element("Place order", "push button", "atspi"))
    got = ScreenLabelReader(AccessibilityReader(backend=backend), ocr).read(
        scene.image, *_button(scene, "Place order").center)
    assert (got.text, got.role, got.source) == ("Place order", "push button", "atspi")


def test_a_lying_accessible_name_cannot_hide_the_drawn_label() -> None:
    """aria-label="Cancel" on a button drawn "Place order": both reach the gate."""
    scene = render(0, rows=(("Cancel", "Place order"),))
    backend = FakeBackend(Element("Cancel", "push button", "atspi"))
    got = ScreenLabelReader(AccessibilityReader(backend=backend), OcrLabelReader()).read(
        scene.image, *_button(scene, "Place order").center)
    assert got.text == "Cancel / Place order" and got.source == "atspi"


def test_text_fields_are_not_read_by_ocr_when_they_have_a_name() -> None:
    """In a field the pixels are what the user typed, not a label: not added to the label."""
    scene = render(0)
    ocr = CountingOcr()
    backend = FakeBackend(Element("Search", "entry", "atspi"))
    got = ScreenLabelReader(AccessibilityReader(backend=backend), ocr).read(scene.image, 600, 370)
    assert (got.text, got.role, ocr.calls) == ("Search", "entry", 0)


def test_a_long_accessible_name_is_not_cut_before_its_risky_words() -> None:
    backend = FakeBackend(Element("x" * 5000 + " Place order", "push button", "atspi"))
    got = ScreenLabelReader(AccessibilityReader(backend=backend), None).read(render(0).image, 5, 5)
    assert got.text.endswith("Place order")


def test_unnamed_element_keeps_its_role_and_ocr_reads_the_text() -> None:
    scene = render(2)
    target = scene.buttons[0]
    backend = FakeBackend(Element("", "password text", "atspi"))
    reader = ScreenLabelReader(AccessibilityReader(backend=backend), OcrLabelReader())
    got = reader.read(scene.image, *target.center)
    assert got.role == "password text" and got.source == "ocr" and same_label(got.text, target.label)


def test_screenshot_pixels_map_to_each_backends_desktop_space() -> None:
    """A 4K monitor at scale 2 right of a 1080p one, captured as a 1920x1080 screenshot."""
    monitor = Monitor(2, 1920, 0, 3840, 2160, scale=2.0)
    physical = AccessibilityReader(monitor, backend=FakeBackend(None, Space.PHYSICAL))
    logical = AccessibilityReader(monitor, backend=FakeBackend(None, Space.LOGICAL))
    assert physical.desktop_point((1920, 1080), 100, 50) == (1920 + 201, 101)
    assert logical.desktop_point((1920, 1080), 100, 50) == (960 + 100, 50)
    # Without a monitor: the screenshot is the desktop.
    plain = AccessibilityReader(backend=FakeBackend(None))
    assert plain.desktop_point((1920, 1080), 100, 50) == (100, 50)


# -- failure never raises -----------------------------------------------------------------------

def test_missing_ocr_library_degrades_to_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tesseract, "_library_names", lambda: ["/nonexistent/libtesseract.so.5"])
    monkeypatch.setattr(screen_label_ocr, "_engines", {})
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    scene = render(0)
    reader = default_reader(time_limit=1.0)
    for _ in range(2):  # the failure is remembered, not retried at full cost
        got = reader.read(scene.image, *scene.buttons[0].center)
        assert (got.text, got.source) == ("", "none")


def test_missing_language_data_degrades_to_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(screen_label_ocr, "_engines", {})
    reader = ScreenLabelReader(None, OcrLabelReader("xx_no_such_language"))
    got = reader.read(render(0).image, 500, 500)
    assert (got.text, got.source) == ("", "none")


class BrokenImage:
    size = (1920, 1080)

    def convert(self, mode: str) -> Image.Image:
        raise OSError("image file is truncated")


@pytest.mark.parametrize("image", [BrokenImage(), Image.new("RGB", (0, 0)), Image.new("1", (50, 20)),
                                   Image.new("RGBA", (40, 40)), Image.new("I;16", (300, 80))])
def test_broken_or_odd_images_never_raise(image) -> None:
    reader = ocr_only()
    got = reader.read(image, 10, 10)
    assert got.source in ("none", "ocr") and isinstance(got.text, str)


@pytest.mark.parametrize("point", [(float("nan"), 5), (None, 5), ("12", "x")])
def test_bad_coordinates_never_raise(point) -> None:
    got = ocr_only().read(render(0).image, *point)
    assert (got.text, got.source) == ("", "none")


class ExplodingOcr(OcrLabelReader):
    def text_at(self, image: Image.Image, x: int, y: int, deadline: float) -> str:
        raise RuntimeError("tesseract fell over")


class ExplodingBackend:
    space = Space.PHYSICAL

    def element_at(self, x: int, y: int, deadline: float) -> Element | None:
        raise ValueError("malformed reply from a hostile application")


def test_one_source_failing_keeps_the_others_answer() -> None:
    scene = render(0)
    button = scene.buttons[0]
    named = AccessibilityReader(backend=FakeBackend(Element("Place order", "push button", "atspi")))
    got = ScreenLabelReader(named, ExplodingOcr()).read(scene.image, *button.center)
    assert (got.text, got.source) == ("Place order", "atspi")
    got = ScreenLabelReader(AccessibilityReader(backend=ExplodingBackend()), OcrLabelReader()).read(
        scene.image, *button.center)
    assert got.source == "ocr" and same_label(got.text, button.label)


def test_odd_values_from_the_bus_are_text() -> None:
    backend = FakeBackend(Element(["Place", "order"], ["push button"], "atspi"))  # type: ignore[arg-type]
    got = ScreenLabelReader(AccessibilityReader(backend=backend), None).read(render(0).image, 5, 5)
    assert isinstance(got.text, str) and isinstance(got.role, str) and got.source == "atspi"


def test_other_platforms_backends_refuse_cleanly_here() -> None:
    """Windows' and macOS' back ends are untested here; off their platform they say so, as OSError
    (which default_reader turns into "no accessibility")."""
    from agent.screen_label_a11y import AxBackend, UiaBackend, platform_backend
    for backend in (UiaBackend, AxBackend):
        with pytest.raises(OSError):
            backend()
    assert isinstance(platform_backend(), AtspiBackend)


def test_null_reader_reads_nothing() -> None:
    assert NullReader().read(Image.new("RGB", (10, 10)), 1, 1) == TargetLabel("")


def test_no_accessibility_bus_degrades_to_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    scene = render(4)
    reader = default_reader(time_limit=2.0)
    got = reader.read(scene.image, *scene.buttons[0].center)
    assert got.source == "ocr" and same_label(got.text, scene.buttons[0].label)


# -- real AT-SPI: a GTK and a Qt window under Xvfb on a private D-Bus session ------------------

GTK_APP = """
import json, gi
gi.require_version("Gtk", "3.0")
from gi.repository import Gtk, GLib
win = Gtk.Window(title="Checkout"); win.move(40, 30)
box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=8)
entry = Gtk.Entry(); entry.set_visibility(False); entry.set_text("hunter2")
row = Gtk.Box(spacing=6)
cancel, order = Gtk.Button(label="Cancel"), Gtk.Button(label="Place order")
row.pack_start(cancel, False, False, 0); row.pack_start(order, False, False, 0)
box.pack_start(entry, False, False, 0); box.pack_start(row, False, False, 0)
win.add(box); win.show_all()
def report():
    out = {}
    for name, w in (("Cancel", cancel), ("Place order", order), ("password", entry)):
        ox, oy = w.get_window().get_origin()[1:]
        a = w.get_allocation()
        out[name] = [ox + a.x + a.width // 2, oy + a.y + a.height // 2]
    print(json.dumps(out), flush=True)
GLib.timeout_add(500, report)
Gtk.main()
"""

QT_APP = """
import json
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QHBoxLayout, QPushButton, QWidget
app = QApplication([])
w = QWidget(); w.setWindowTitle("Kasse"); w.move(400, 300)
row = QHBoxLayout(w)
buttons = [QPushButton("Abbrechen"), QPushButton("Jetzt kaufen")]
for b in buttons: row.addWidget(b)
w.show()
QTimer.singleShot(800, lambda: print(json.dumps({b.text(): [b.mapToGlobal(b.rect().center()).x(),
    b.mapToGlobal(b.rect().center()).y()] for b in buttons}), flush=True))
app.exec()
"""


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private D-Bus session (the AT-SPI bus is activated on it on first use)."""
    if shutil.which("dbus-daemon") is None:
        pytest.fail("dbus-daemon is not installed (scripts/setup.sh dev installs dbus and at-spi2-core)")
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    address = proc.stdout.readline().strip()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    try:
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the bus and what it activated (AT-SPI bus, registry)
        proc.wait(5)


def _start_app(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, dict[str, list[int]]]:
    app = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = app.stdout.readline()
    if not line:
        app.kill()
        pytest.fail(f"{cmd[0]} test window did not start")
    return app, json.loads(line)


def _read_until(reader: AccessibilityReader, x: int, y: int, size: tuple[int, int]) -> Element | None:
    """The app registers with the AT-SPI registry a moment after its window shows."""
    element = None
    for _ in range(40):
        element = reader.element_at(size, x, y, time.monotonic() + 2.0)
        if element is not None and element.name:
            return element
        time.sleep(0.1)
    return element


@pytest.mark.xvfb
def test_atspi_reads_gtk_button_names_and_password_role(session_bus: str, tmp_path: Path) -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.fail("the system python3 with python3-gi runs the GTK window (scripts/setup.sh dev)")
    script = tmp_path / "gtk_app.py"
    script.write_text(textwrap.dedent(GTK_APP))
    with xvfb(1280, 800) as display:
        env = {**os.environ, "DISPLAY": display, "NO_AT_BRIDGE": "0", "GTK_A11Y": "atspi"}
        app, points = _start_app(["/usr/bin/python3", str(script)], env)
        try:
            reader = AccessibilityReader(backend=AtspiBackend())
            for label in ("Cancel", "Place order"):
                element = _read_until(reader, *points[label], (1280, 800))
                assert element == Element(label, "push button", "atspi")
            password = reader.element_at((1280, 800), *points["password"], time.monotonic() + 2)
            assert password is not None and password.role == "password text"
            # The whole reader: accessibility answers, through the screenshot -> desktop mapping.
            full = default_reader(Monitor(1, 0, 0, 1280, 800), time_limit=2.0)
            img = Image.new("RGB", (640, 400), "white")  # a half-size screenshot of the display
            x, y = points["Place order"]
            got = full.read(img, x // 2, y // 2)
            assert (got.text, got.role, got.source) == ("Place order", "push button", "atspi")
        finally:
            app.kill()
            app.wait(5)


@pytest.mark.xvfb
@pytest.mark.gui
def test_atspi_reads_qt_button_names(session_bus: str, tmp_path: Path) -> None:
    script = tmp_path / "qt_app.py"
    script.write_text(textwrap.dedent(QT_APP))
    with xvfb(1280, 800) as display:
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
               "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1"}
        app, points = _start_app([sys.executable, str(script)], env)
        try:
            reader = AccessibilityReader(backend=AtspiBackend())
            for label in ("Abbrechen", "Jetzt kaufen"):
                element = _read_until(reader, *points[label], (1280, 800))
                assert element == Element(label, "push button", "atspi")
        finally:
            app.kill()
            app.wait(5)
