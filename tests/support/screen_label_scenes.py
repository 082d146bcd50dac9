"""Real-looking 1920x1080 app screens with labelled buttons, for the screen-label reader's tests.

Each scene is a window in one theme (light, dark, a yellow call-to-action, a green shop) with a
menu bar, a sidebar, body text, form fields and rows of adjacent buttons, so that the reader
has to pick the target's label out of neighbours a few pixels away. Fonts are the DejaVu faces
that fonts-dejavu-core installs (scripts/setup.sh).
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
SIZE = (1920, 1080)

# Rows of buttons that sit next to each other in real dialogs: (secondary, primary, ...).
BUTTON_ROWS = (
    ("Cancel", "Place order"),
    ("Abbrechen", "Jetzt kaufen"),
    ("Annuler", "Payer"),
    ("Cancelar", "Comprar"),
    ("Back", "Continue", "Delete account"),
    ("Add to cart", "Buy now"),
    ("Keep subscription", "Unsubscribe"),
    ("Not now", "Donate"),
    ("Zurück", "Bestellen"),
    ("Save draft", "Submit"),
    ("Seguir comprando", "Añadir al carrito"),
    ("Abbrechen", "Löschen", "Bestätigen"),
    ("Retour", "Supprimer", "Télécharger"),
)
WORDS = ("order", "summary", "shipping", "address", "delivery", "total", "item", "price", "account",
         "settings", "profile", "invoice", "payment", "method", "card", "billing", "review", "terms",
         "privacy", "help", "contact")


@dataclass(frozen=True)
class Theme:
    name: str
    background: tuple[int, int, int]
    text: tuple[int, int, int]
    panel: tuple[int, int, int]
    button: tuple[int, int, int]
    button_text: tuple[int, int, int]
    primary: tuple[int, int, int]
    primary_text: tuple[int, int, int]
    border: tuple[int, int, int]


THEMES = (
    Theme("light", (255, 255, 255), (32, 33, 36), (242, 243, 245), (235, 236, 240), (32, 33, 36),
          (26, 115, 232), (255, 255, 255), (200, 202, 208)),
    Theme("dark", (30, 30, 30), (220, 220, 220), (37, 37, 38), (60, 60, 64), (235, 235, 235),
          (14, 99, 156), (255, 255, 255), (80, 80, 84)),
    Theme("yellow", (250, 250, 247), (15, 17, 17), (234, 237, 237), (255, 255, 255), (15, 17, 17),
          (255, 216, 20), (15, 17, 17), (213, 217, 217)),
    Theme("green", (246, 248, 250), (36, 41, 47), (255, 255, 255), (246, 248, 250), (36, 41, 47),
          (31, 136, 61), (255, 255, 255), (208, 215, 222)),
)


@dataclass(frozen=True)
class Button:
    label: str
    box: tuple[int, int, int, int]  # left, top, right, bottom in screenshot pixels

    @property
    def center(self) -> tuple[int, int]:
        return ((self.box[0] + self.box[2]) // 2, (self.box[1] + self.box[3]) // 2)


@dataclass(frozen=True)
class Scene:
    image: Image.Image
    buttons: tuple[Button, ...]
    theme: str
    font: str
    size: int


@cache
def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, face: ImageFont.FreeTypeFont,
          fill: tuple[int, int, int]) -> None:
    draw.text(xy, text, font=face, fill=fill)


def _button(draw: ImageDraw.ImageDraw, left: int, top: int, label: str, face: ImageFont.FreeTypeFont,
            theme: Theme, primary: bool, pad: int) -> Button:
    text_left, _, text_right, _ = draw.textbbox((0, 0), label, font=face)
    ascent, descent = face.getmetrics()
    width, height = text_right - text_left + 2 * pad, int((ascent + descent) * 1.8)
    box = (left, top, left + width, top + height)
    fill = theme.primary if primary else theme.button
    draw.rounded_rectangle(box, radius=6, fill=fill, outline=theme.border if not primary else fill)
    _text(draw, (left + pad - text_left, top + (height - ascent - descent) // 2), label, face,
          theme.primary_text if primary else theme.button_text)
    return Button(label, box)


def render(seed: int, *, rows: tuple[tuple[str, ...], ...] | None = None) -> Scene:
    """One screen: theme, font and size drawn from `seed`; three button rows with tight gaps."""
    rng = random.Random(seed)
    theme = THEMES[seed % len(THEMES)]
    face_name = FONTS[(seed // len(THEMES)) % len(FONTS)]
    size = rng.choice((13, 14, 15, 16, 18, 20))
    face, small = font(face_name, size), font("DejaVuSans.ttf", max(12, size - 2))
    img = Image.new("RGB", SIZE, theme.background)
    draw = ImageDraw.Draw(img)
    # Menu bar and sidebar: words near the edges that must never be taken for the target's label.
    draw.rectangle((0, 0, SIZE[0], 34), fill=theme.panel)
    for i, word in enumerate(("File", "Edit", "View", "Orders", "Help")):
        _text(draw, (16 + i * 80, 8), word, small, theme.text)
    draw.rectangle((0, 35, 260, SIZE[1]), fill=theme.panel)
    for i in range(14):
        _text(draw, (24, 70 + i * 36), rng.choice(WORDS).capitalize(), small, theme.text)
    _text(draw, (320, 70), "Review your " + rng.choice(WORDS), font(face_name, size + 10), theme.text)
    for i in range(8):
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
        _text(draw, (320, 130 + i * (size + 10)), line.capitalize() + ".", small, theme.text)
    for i in range(3):  # form fields with labels left of them
        y = 360 + i * 56
        _text(draw, (320, y + 8), rng.choice(WORDS).capitalize() + ":", small, theme.text)
        draw.rectangle((480, y, 900, y + 34), fill=theme.background, outline=theme.border)
        _text(draw, (490, y + 8), rng.choice(WORDS), small, theme.text)
    chosen = rows or tuple(rng.sample(BUTTON_ROWS, 3))
    buttons: list[Button] = []
    anchors = ((rng.randint(320, 700), 600), (rng.randint(1000, 1300), 760), (rng.randint(320, 900), 930))
    for (start, top), row in zip(anchors, chosen, strict=False):
        left = start
        gap, pad = rng.choice((8, 12, 16, 24)), rng.choice((12, 16, 24))
        for i, label in enumerate(row):
            btn = _button(draw, left, top, label, face, theme, i == len(row) - 1, pad)
            buttons.append(btn)
            left = btn.box[2] + gap
        # A caption under the row: text close below the buttons.
        _text(draw, (start, buttons[-1].box[3] + 10), " ".join(rng.choice(WORDS) for _ in range(6)), small,
              theme.text)
    return Scene(img, tuple(buttons), theme.name, face_name, size)


def same_label(read: str, expected: str) -> bool:
    """Whether OCR'd text is the expected label, ignoring case, spacing and punctuation."""
    def key(s: str) -> str:
        return "".join(c for c in s.casefold() if c.isalnum())
    return key(read) == key(expected)


def similarity(read: str, expected: str) -> float:
    """0..1 over letters and digits, case ignored ("Save drat" vs "Save draft": 0.94)."""
    def key(s: str) -> str:
        return "".join(c for c in s.casefold() if c.isalnum())
    return difflib.SequenceMatcher(None, key(read), key(expected)).ratio()


def close_label(read: str, expected: str) -> bool:
    """Within about one OCR slip of the expected label."""
    return similarity(read, expected) >= 0.85
