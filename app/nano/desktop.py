"""Synthetic desktop screens for Deskhand Nano: real Qt windows on a desktop at real screen sizes.

A screen is what the agent loop would give the model: a whole screen (1024x768 .. 1920x1080;
640x400 .. 960x600 for the "ladder" kind's nearer rungs; 640x400 parts around the button, as
the second look shows them, for the "look" kind)
with a window drawn by Qt itself (the Fusion style any PySide6 app gets on Linux, with varied
fonts, sizes, palettes and contents: a text label, maybe a text field, a check box, a drop-down)
holding one push button, sometimes under a drawn title bar, sometimes next to a window without
buttons, on a solid, gradient or black (bare Xvfb) background; then resized to the model image
exactly as the loop does (`agent.prompts` family size within `MAX_PIXELS`, bicubic).

Two kinds of example come from the same screens: the click on the named button, and the step
after it (the screenshot of the click in the history, the window usually gone) whose answer is
terminate(success), so a one-click task also ends.

Every screen is a pure function of (split, index, near) on one machine; Qt's font rendering may
differ between machines (fonts installed, FreeType version), so the pixels, not the layouts,
can differ elsewhere.
"""

from __future__ import annotations

import os
import random
import sys
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from agent.geometry import Size, box_around
from app.nano.screens import FONT_DIR, HELD_OUT_WORDS, SPLITS, TRAIN_WORDS, Box, Button, Screen

# The model image's pixel budget: 1280x800 becomes 512x320 (16x10 image tokens for Qwen3.5).
# Declared by the shipped folder's processor config (agent.prompts.declared_max_pixels).
MAX_PIXELS = 512 * 320
SCREEN_SIZES = ((1024, 768), (1280, 800), (1280, 1024), (1366, 768), (1440, 900), (1600, 900),
                (1920, 1080))
# Smaller screens, seen nearly as drawn (a 640x400 screen at 0.8 of its size, 960x600 at 0.53,
# against 0.27..0.44 for the real sizes): the rungs of the "ladder" kind between the drawn
# buttons (seen 1:1) and whole screens, cut from a real one around its window (a Qt layout
# squeezed into a small screen overlaps its widgets). Never held out: evaluation is on
# SCREEN_SIZES.
NEAR_SIZES = ((640, 400), (800, 500), (960, 600))
NEAR_SHARE = 0.5  # of ladder desktop screens
# The "look" kind's crops: what Nano's second look shows it (agent.second_look; the region its
# folder declares, app.nano.model.SECOND_LOOK), a 640x400 part of a whole screen centred near
# the button but rarely on it (its first point's misses, ~100 pixels, and the vote's regions
# shifted 160x100 from that point), the window often cut by the region's edge.
LOOK_SIZE = (640, 400)
LOOK_SHARE = 0.5  # of "look" desktop screens; the rest as the ladder's
# The region's centre, at most this far from the button's: sideways the misses and the shift
# (100 + 160); up and down less than their sum (200), which would put a button at the
# region's very edge (half its height), where the loop's regions seldom have it.
LOOK_OFFSET = (260, 160)
DONE_SHARE = 0.2  # share of examples that are the step after the click (twice the tokens)
# Words of labels and fields: none is a button word, so the only button is the one to click.
FILLER = ("please", "the", "file", "was", "changed", "your", "document", "has", "been", "saved",
          "do", "you", "want", "to", "continue", "this", "will", "take", "a", "moment", "name",
          "email", "address", "password", "remember", "me", "printer", "ready", "network",
          "connected", "update", "available", "version", "disk", "space", "low", "welcome",
          "Bitte", "warten", "Datei", "gespeichert", "fichier", "enregistré", "archivo",
          "guardado", "Oslo", "Berlin", "today", "tomorrow", "report", "invoice", "photo",
          "music", "notes", "account", "settings", "changes", "were", "made")
FONT_FAMILIES = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono")
# How people type the task: capitalised or not, with or without "button", a full stop, "press".
WORDINGS = ("Click the {} button.", "click the {} button", "Click {}.", "click {}",
            "Press the {} button.", "press {}", "Click on {}", "Please click the {} button.")


def nano_model_size(screen: Size) -> Size:
    """The model image size Nano sees for a screen (Qwen3.5's grid within MAX_PIXELS)."""
    from agent.prompts import get_family

    return get_family("fara15", max_pixels=MAX_PIXELS).model_size(screen)


def make_desktop(split: str, index: int, near: bool = False, look: bool = False) -> Screen:
    """Desktop screen number `index` of `split`, at model size; `previous` set on the step after
    the click (deterministic). `near`: about half the screens (their own draw, where the window
    fits one of NEAR_SIZES) are that smaller screen cut around the window (the same window,
    seen nearer its size); the rest exactly the screens `near=False` gives. `look`: before
    that, LOOK_SHARE of the screens are a second look's region around the button (look_crop)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    rng = random.Random(f"nano-desktop:{split}:{index}")
    word = rng.choice(HELD_OUT_WORDS if split == "heldout_words" else TRAIN_WORDS)
    width, height = rng.choice(SCREEN_SIZES)
    desktop = _background(rng, width, height)
    window, button = _qt_window(rng, word, max_width=min(900, width - 40),
                                max_height=min(600, height - 80))
    before, (x, y, bar) = place_window(rng, desktop, window)
    left, top, right, bottom = button
    box = Box(x + left, y + bar + top, x + right, y + bar + bottom)
    crop = look_crop(random.Random(f"nano-look:{split}:{index}"), width, height, box) if look else None
    if crop is None and near:
        crop = near_crop(random.Random(f"nano-near:{split}:{index}"), width, height,
                         Box(x, y, x + window.width, y + bar + window.height))
    if crop is not None:  # a smaller screen holding the same window: the part around it
        desktop, before = (im.crop((crop.left, crop.top, crop.right, crop.bottom))
                           for im in (desktop, before))
        box = Box(box.left - crop.left, box.top - crop.top, box.right - crop.left,
                  box.bottom - crop.top)
        width, height = crop.right - crop.left, crop.bottom - crop.top
    size = nano_model_size(Size(width, height))
    shot = to_model(desktop, size)
    target = Button(word, scaled_box(box, width, height, size))
    # Its own generator, so adding wordings left every screen's pixels as they were.
    wording = random.Random(f"nano-wording:{split}:{index}").choice(WORDINGS)
    if rng.random() >= DONE_SHARE:
        return Screen(shot, (target,), 0, wording=wording, captured=desktop)
    # The step after the click: usually the window closed; sometimes nothing visible changed.
    after = to_model(before, size) if rng.random() < 0.7 else shot
    return Screen(after, (target,), 0, previous=shot, wording=wording)


def place_window(rng: random.Random, desktop: Image.Image, window: Image.Image
                 ) -> tuple[Image.Image, tuple[int, int, int]]:
    """Paste `window` at a random place of `desktop` (in place), maybe under a drawn title bar
    and over a second window without buttons; returns the desktop as it was before the window
    (with that second window: what the screen shows once the window closes) and the window's
    (x, y, title bar height)."""
    width, height = desktop.size
    titled = rng.random() < 0.5
    bar = rng.randint(22, 32) if titled else 0
    x = rng.randint(0, width - window.width)
    y = rng.randint(0, height - window.height - bar)
    if rng.random() < 0.4:  # a second window without buttons, behind the first
        other, _ = _qt_window(rng, None, max_width=min(700, width - 40),
                              max_height=min(500, height - 80))
        desktop.paste(other, (rng.randint(0, width - other.width),
                              rng.randint(0, height - other.height)))
    before = desktop.copy()
    if titled:
        _title_bar(ImageDraw.Draw(desktop), rng, x, y, window.width, bar)
    desktop.paste(window, (x, y + bar))
    return before, (x, y, bar)


def near_crop(rng: random.Random, width: int, height: int, window: Box) -> Box | None:
    """The part of a `width` x `height` screen cut as a smaller screen (NEAR_SIZES) around
    `window` (its title bar included), or None: for NEAR_SHARE of the screens, where a rung
    holds the window and fits in the screen."""
    fits = [(w, h) for w, h in NEAR_SIZES
            if window.right - window.left <= w <= width and window.bottom - window.top <= h <= height]
    if not fits or rng.random() >= NEAR_SHARE:
        return None
    w, h = rng.choice(fits)
    left = rng.randint(max(0, window.right - w), min(window.left, width - w))
    top = rng.randint(max(0, window.bottom - h), min(window.top, height - h))
    return Box(left, top, left + w, top + h)


def look_crop(rng: random.Random, width: int, height: int, button: Box) -> Box | None:
    """A LOOK_SIZE part of a `width` x `height` screen centred up to LOOK_OFFSET from `button`'s
    centre, kept on the screen as the loop keeps its regions (agent.geometry.box_around), or
    None: for 1 - LOOK_SHARE of the screens."""
    if rng.random() >= LOOK_SHARE:
        return None
    cx = (button.left + button.right) / 2 + rng.uniform(-LOOK_OFFSET[0], LOOK_OFFSET[0])
    cy = (button.top + button.bottom) / 2 + rng.uniform(-LOOK_OFFSET[1], LOOK_OFFSET[1])
    left, top, size = box_around((cx, cy), Size(*LOOK_SIZE), Size(width, height))
    return Box(left, top, left + size.width, top + size.height)


def to_model(image: Image.Image, size: Size) -> Image.Image:
    """`image` resized to the model size as the agent loop resizes a screenshot."""
    return image.resize((size.width, size.height), Image.Resampling.BICUBIC)  # as agent.loop


def scaled_box(box: Box, width: int, height: int, size: Size) -> Box:
    """`box` on a `width` x `height` screen, on the model image of `size` (outward to whole pixels)."""
    sx, sy = size.width / width, size.height / height
    return Box(int(box.left * sx), int(box.top * sy), -int(-box.right * sx),
               -int(-box.bottom * sy))


def _background(rng: random.Random, width: int, height: int) -> Image.Image:
    kind = rng.random()
    if kind < 0.25:
        return Image.new("RGB", (width, height), (0, 0, 0))  # a bare X server
    top = tuple(rng.randint(0, 255) for _ in range(3))
    if kind < 0.6:
        image = Image.new("RGB", (width, height), top)
    else:  # a vertical gradient
        bottom = tuple(rng.randint(0, 255) for _ in range(3))
        column = Image.new("RGB", (1, height))
        for row in range(height):
            t = row / max(1, height - 1)
            column.putpixel((0, row), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
        image = column.resize((width, height))
    if rng.random() < 0.5:  # a panel with a clock along one edge
        draw = ImageDraw.Draw(image)
        panel = rng.randint(24, 40)
        at_top = rng.random() < 0.5
        y0 = 0 if at_top else height - panel
        shade = rng.randint(20, 80)
        draw.rectangle((0, y0, width, y0 + panel), fill=(shade, shade, shade + 10))
        clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        draw.text((width - 60, y0 + panel // 2 - 7), clock, fill=(235, 235, 235), font=_pil_font(13))
    return image


def _title_bar(draw: ImageDraw.ImageDraw, rng: random.Random, x: int, y: int, width: int,
               bar: int) -> None:
    dark = rng.random() < 0.5
    fill = tuple(rng.randint(30, 90) for _ in range(3)) if dark else \
        tuple(rng.randint(200, 240) for _ in range(3))
    text = (240, 240, 240) if dark else (30, 30, 30)
    draw.rectangle((x, y, x + width - 1, y + bar - 1), fill=fill)
    title = " ".join(rng.sample(FILLER, rng.randint(1, 3))).capitalize()
    draw.text((x + 10, y + bar // 2 - 7), title, fill=text, font=_pil_font(13))
    draw.text((x + width - 20, y + bar // 2 - 7), "x", fill=text, font=_pil_font(13))


@cache
def _pil_font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_DIR + "DejaVuSans.ttf", size)


def _application():
    """The QApplication to render with: the running one, else an offscreen one (training runs
    have no display)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        from PySide6.QtCore import qInstallMessageHandler

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        qInstallMessageHandler(_quiet)
        app = QApplication(["deskhand-nano"])
    _application.keep = app  # type: ignore[attr-defined]
    return app


def _quiet(_kind, _context, message: str) -> None:
    """Qt's messages, less the offscreen platform's line for every window shown."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def _qt_window(rng: random.Random, word: str | None, *, max_width: int,
               max_height: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A Qt window rendered by Qt; with `word`, one push button labelled `word` and its
    (left, top, right, bottom) in the window's pixels."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import (
        QCheckBox,
        QComboBox,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QPushButton,
        QVBoxLayout,
    )

    window = styled_window(rng)
    layout = QVBoxLayout(window)
    layout.setContentsMargins(*(rng.randint(8, 24) for _ in range(4)))
    layout.setSpacing(rng.randint(6, 16))
    sentence = " ".join(rng.choice(FILLER) for _ in range(rng.randint(3, 14)))
    label = QLabel(sentence[0].upper() + sentence[1:] + rng.choice((".", "?", "", ":")))
    label.setWordWrap(True)
    layout.addWidget(label)
    for _ in range(rng.randint(0, 2)):
        kind = rng.random()
        if kind < 0.4:
            field = QLineEdit()
            field.setPlaceholderText(" ".join(rng.sample(FILLER, 2)))
            if rng.random() < 0.5:
                field.setText(rng.choice(FILLER))
            layout.addWidget(field)
        elif kind < 0.7:
            box = QCheckBox(" ".join(rng.sample(FILLER, rng.randint(1, 3))))
            box.setChecked(rng.random() < 0.5)
            layout.addWidget(box)
        else:
            combo = QComboBox()
            combo.addItems(rng.sample(FILLER, 3))
            layout.addWidget(combo)
    if rng.random() < 0.5:
        layout.addStretch(1)
    button = None
    if word is not None:
        row = QHBoxLayout()
        button = QPushButton(word)
        if rng.random() < 0.3:
            button.setMinimumWidth(rng.randint(90, 180))
        if rng.random() < 0.2:  # a web-like coloured button
            colour = QColor(*[rng.randint(20, 220) for _ in range(3)])
            ink = "white" if colour.lightness() < 140 else "black"
            button.setStyleSheet(f"background: {colour.name()}; color: {ink}; "
                                 f"border-radius: {rng.randint(0, 8)}px; "
                                 f"padding: {rng.randint(4, 10)}px {rng.randint(10, 24)}px;")
        place = rng.random()
        if place > 0.33:
            row.addStretch(1)
        row.addWidget(button)
        if place < 0.66:
            row.addStretch(1)
        (layout.insertLayout(0, row) if rng.random() < 0.15 else layout.addLayout(row))
    image, rects, _ = grab_window(rng, window, layout, [button] if button is not None else [],
                               max_width=max_width, max_height=max_height)
    return image, rects[0] if rects else (0, 0, 0, 0)


def styled_window(rng: random.Random):
    """An unshown Qt window with a random font and (sometimes) a themed palette."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QFont, QPalette
    from PySide6.QtWidgets import QWidget

    _application()
    window = QWidget()
    window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
    font = QFont(rng.choice(FONT_FAMILIES))
    font.setPointSize(rng.choice((9, 10, 10, 11, 12, 13, 14, 16)))
    window.setFont(font)
    if rng.random() < 0.35:  # a themed palette (dark or coloured) instead of Fusion's own
        palette = QPalette()
        dark = rng.random() < 0.5
        base = [rng.randint(25, 70) if dark else rng.randint(200, 250) for _ in range(3)]
        ink = QColor(235, 235, 235) if dark else QColor(20, 20, 20)
        palette.setColor(QPalette.ColorRole.Window, QColor(*base))
        palette.setColor(QPalette.ColorRole.WindowText, ink)
        palette.setColor(QPalette.ColorRole.Base, QColor(*[min(255, c + 15) for c in base]))
        palette.setColor(QPalette.ColorRole.Text, ink)
        palette.setColor(QPalette.ColorRole.Button, QColor(*[rng.randint(40, 230) for _ in range(3)]))
        palette.setColor(QPalette.ColorRole.ButtonText, ink)
        window.setPalette(palette)
    return window


def grab_window(rng: random.Random, window, layout, widgets: list, *, max_width: int,
                max_height: int, change=None
                ) -> tuple[Image.Image, list[tuple[int, int, int, int]], Image.Image | None]:
    """The window sized (randomly, within the limits and its layout's needs), rendered by Qt,
    each of `widgets`' (left, top, right, bottom) in its pixels, and, when `change` (a
    callable, e.g. typing into a field) is given, the window grabbed again after it; the
    window is closed."""
    from PySide6.QtCore import QPoint

    hint = layout.sizeHint()
    width = min(max_width, max(hint.width(), rng.randint(260, 640)))
    height = min(max_height, max(hint.height(), rng.randint(120, 420)))
    window.resize(width, height)
    window.show()  # not on screen (WA_DontShowOnScreen): lays out and polishes the widgets
    layout.activate()
    pixmap = window.grab()
    image = _qimage_to_pil(pixmap.toImage())
    changed = None
    if change is not None:
        change()
        changed = _qimage_to_pil(window.grab().toImage())
    rects = []
    for widget in widgets:
        at = widget.mapTo(window, QPoint(0, 0))
        rects.append((at.x(), at.y(), at.x() + widget.width(), at.y() + widget.height()))
    window.close()  # no parent: deleted with its Python wrapper (no event loop runs here)
    ratio = image.width / max(1, window.width())  # a high-DPI grab: back to logical pixels
    if ratio != 1:
        image, changed = (None if im is None else im.resize(
            (window.width(), window.height()), Image.Resampling.BICUBIC) for im in (image, changed))
    return image, rects, changed


def _qimage_to_pil(qimage) -> Image.Image:
    from PySide6.QtGui import QImage

    converted = qimage.convertToFormat(QImage.Format.Format_RGB888)
    data = bytes(converted.constBits())[: converted.sizeInBytes()]
    return Image.frombytes("RGB", (converted.width(), converted.height()), data, "raw", "RGB",
                           converted.bytesPerLine())
