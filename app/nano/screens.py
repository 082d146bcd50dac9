"""Synthetic single-step grounding screens for Deskhand Nano: buttons on a plain window.

Every screen is a pure function of (split, index): `random.Random` seeded with a string is
deterministic across runs and machines (CPython hashes str seeds with SHA-512), so a training
step's batch and the held-out sets can be rebuilt exactly on resume.

Size 448x224: the smallest useful size whose sides are multiples of both families' token size
(Qwen2.5-VL patch 14 x merge 2 = 28 px; Qwen3.5 patch 16 x merge 2 = 32 px; lcm = 224), so both
see the very same pixels: 16x8 = 128 image tokens for Qwen2.5-VL, 14x7 = 98 for Qwen3.5. The
next common size, 672x448, would cost 3x the image tokens on a CPU budget. Both families' own
resize rules keep 448x224 as it is (model pixels = screen pixels).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 448, 224
MIN_BUTTONS, MAX_BUTTONS = 3, 8
FONT_SIZES = (12, 13, 14, 15, 16)
# fonts-dejavu-core only (scripts/setup.sh installs it; the condensed faces are in -extra).
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf")
FONT_DIR = "/usr/share/fonts/truetype/dejavu/"

WORDS = (
    "OK", "Cancel", "Save", "Open", "Close", "Delete", "Send", "Next", "Back", "Submit",
    "Search", "Print", "Apply", "Reset", "Edit", "Copy", "Paste", "Undo", "Redo", "Help",
    "Login", "Logout", "Share", "Export", "Import", "Refresh", "Upload", "Download", "Start",
    "Stop", "Pause", "Play", "Add", "Remove", "Confirm", "Continue", "Finish", "Skip", "Retry",
    "Accept", "Decline", "Yes", "No", "Settings", "Profile", "Home", "Menu", "Filter", "Sort",
    "View", "Update", "Install", "Connect", "Browse", "Select", "Clear", "Find", "Replace",
    "Rename", "Move",
)
# Every fifth word is never a training target nor drawn on a training screen.
HELD_OUT_WORDS = WORDS[4::5]
TRAIN_WORDS = tuple(w for w in WORDS if w not in HELD_OUT_WORDS)

# Splits: "train" screens use training words only; "heldout" screens are new layouts (their own
# seeds) with training words; "heldout_words" are new layouts whose target is a held-out word.
SPLITS = ("train", "heldout", "heldout_words")

_GAP = 6      # minimum free pixels between two buttons, and to the window edge
_TRIES = 200  # placement attempts per button before the screen takes fewer buttons


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int   # exclusive
    bottom: int  # exclusive

    def contains(self, x: float, y: float) -> bool:
        return self.left <= x < self.right and self.top <= y < self.bottom

    @property
    def centre(self) -> tuple[int, int]:
        return (self.left + self.right) // 2, (self.top + self.bottom) // 2

    def overlaps(self, other: Box, gap: int = 0) -> bool:
        return not (self.right + gap <= other.left or other.right + gap <= self.left
                    or self.bottom + gap <= other.top or other.bottom + gap <= self.top)


@dataclass(frozen=True)
class Button:
    label: str
    box: Box


@dataclass(frozen=True)
class Screen:
    image: Image.Image  # at model size (what the model sees)
    buttons: tuple[Button, ...]
    target: int  # index into buttons
    # The model image of the step before, where the target was clicked; set on the step after
    # the click, whose answer is terminate(success) (app.nano.desktop).
    previous: Image.Image | None = None
    # How the task names the button ("{}" is its label); desktop screens vary it.
    wording: str = "Click the {} button."
    # Form screens (app.nano.forms): the target is a text field, the answer types `typed` into
    # it (pressing Enter after it, replacing the text it holds, as the task asks); None: a click.
    typed: str | None = None
    press_enter: bool = False
    clear: bool = False
    # The whole screen at its own size before it was resized to `image` (desktop and form
    # screens awaiting their action): what a second look (agent.second_look) cuts its region
    # from. None for drawn screens (seen 1:1) and the steps after an action.
    captured: Image.Image | None = None

    @property
    def target_button(self) -> Button:
        return self.buttons[self.target]

    @property
    def task(self) -> str:
        return self.wording.format(self.target_button.label)


# Screen kinds: "buttons" (448x224 drawn buttons, `make_screen`), "desktop" (Qt windows on
# whole screens with the click's next step, app.nano.desktop) and "mixed" (desktop screens at
# even indices, drawn buttons at odd ones). Measured: training on desktop screens alone took a
# model that clicked 76 % of drawn buttons down to 2.5 % there, and to one constant click on
# whole screens (the copy of a position into the digits was lost); the drawn half keeps it.
# "ladder" is "mixed" whose training desktop screens are half of them smaller screens
# (app.nano.desktop.NEAR_SIZES: seen at 0.53..0.8 of their size, nearer the drawn buttons' 1:1);
# its held-out screens are the real sizes, as "mixed"'s.
# "look" is "ladder" whose training desktop screens are half of them what the second look
# shows (app.nano.desktop.look_crop: 640x400 around the button, the window often cut).
# "forms" (app.nano.forms): whole screens whose task types a value into a named text field.
# "web" (app.nano.web): generated pages drawn by Chromium in a browser window on whole screens;
# "webforms" (app.nano.webforms): such pages whose task types a value into a named text field;
# "webladder" is "ladder" with a third of its screens web pages (desktop, drawn, web in turn).
KINDS = ("buttons", "desktop", "mixed", "ladder", "look", "forms", "web", "webforms", "webladder")
# The parts of each combined kind, in turn by index (scored apart: the first under the plain
# keys, the others under "<part>_" keys).
PARTS = {"mixed": ("desktop", "buttons"), "ladder": ("desktop", "buttons"),
         "look": ("desktop", "buttons"), "webladder": ("desktop", "buttons", "web")}
COMBINED = tuple(PARTS)


def make_any(kind: str, split: str, index: int, buttons: tuple[int, int] | None = None) -> Screen:
    """Screen `index` of `split` of the given kind (`buttons` applies to the "buttons" kind)."""
    near = kind in ("ladder", "look", "webladder") and split == "train"
    look = kind == "look" and split == "train"
    if kind in PARTS:
        kind = PARTS[kind][index % len(PARTS[kind])]
    if kind == "desktop":
        from app.nano.desktop import make_desktop  # Qt: only when asked for

        return make_desktop(split, index, near=near, look=look)
    if kind == "forms":
        from app.nano.forms import make_form

        return make_form(split, index)
    if kind == "web":
        from app.nano.web import make_web  # Chromium: only when asked for

        return make_web(split, index)
    if kind == "webforms":
        from app.nano.webforms import make_webform

        return make_webform(split, index)
    if kind != "buttons":
        raise ValueError(f"unknown screen kind {kind!r}; known: {', '.join(KINDS)}")
    return make_screen(split, index, buttons)


def button_range(text: str) -> tuple[int, int]:
    """"LO-HI" (or "N") as the `buttons` argument of `make_screen`; ValueError otherwise (an
    argparse `type`: it turns that into a usage error)."""
    low, _, high = text.partition("-")
    try:
        pair = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"expected LO-HI such as 1-3, not {text!r}") from None
    if not 1 <= pair[0] <= pair[1]:
        raise ValueError(f"expected 1 <= LO <= HI, not {text!r}")
    return pair


def make_screen(split: str, index: int, buttons: tuple[int, int] | None = None) -> Screen:
    """The screen number `index` of `split` (deterministic), with a number of buttons drawn from
    `buttons` (lowest, highest; default MIN_BUTTONS..MAX_BUTTONS: a curriculum starts lower)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    low, high = buttons or (MIN_BUTTONS, MAX_BUTTONS)
    if not 1 <= low <= high:
        raise ValueError(f"buttons must be 1 <= lowest <= highest, not {low}..{high}")
    rng = random.Random(f"nano-screen:{split}:{index}")
    count = rng.randint(low, high)
    if split == "heldout_words":
        target_word = rng.choice(HELD_OUT_WORDS)
        others = rng.sample([w for w in WORDS if w != target_word], count - 1)
        labels = [target_word, *others]
    else:
        labels = rng.sample(TRAIN_WORDS, count)
    background = _light(rng)
    image = Image.new("RGB", (WIDTH, HEIGHT), background)
    draw = ImageDraw.Draw(image)
    _title_bar(draw, rng)
    buttons: list[Button] = []
    for label in labels:
        button = _place(draw, rng, label, [b.box for b in buttons])
        if button is not None:
            buttons.append(button)
        elif label == labels[0] and split == "heldout_words":
            raise RuntimeError("the held-out target could not be placed")  # never at these sizes
    target = 0 if split == "heldout_words" else rng.randrange(len(buttons))
    return Screen(image, tuple(buttons), target)


def _title_bar(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    """A coloured strip at the top (half the screens): a window-like frame, never clickable."""
    if rng.random() < 0.5:
        draw.rectangle((0, 0, WIDTH, 17), fill=_colour(rng, 60, 200))


def _place(draw: ImageDraw.ImageDraw, rng: random.Random, label: str,
           taken: list[Box]) -> Button | None:
    font = _font(rng.choice(FONT_FILES), rng.choice(FONT_SIZES))
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    pad_x, pad_y = rng.randint(8, 18), rng.randint(5, 9)
    w, h = right - left + 2 * pad_x, bottom - top + 2 * pad_y
    for _ in range(_TRIES):
        x = rng.randint(_GAP, WIDTH - _GAP - w)
        y = rng.randint(20, HEIGHT - _GAP - h)  # below the title strip
        box = Box(x, y, x + w, y + h)
        if not any(box.overlaps(t, _GAP) for t in taken):
            fill = _colour(rng, 40, 230)
            text = (20, 20, 20) if sum(fill) > 400 else (250, 250, 250)
            outline = tuple(max(0, c - 60) for c in fill)
            draw.rounded_rectangle((x, y, x + w - 1, y + h - 1), radius=rng.randint(2, 8),
                                   fill=fill, outline=outline)
            draw.text((x + pad_x - left, y + pad_y - top), label, font=font, fill=text)
            return Button(label, box)
    return None


def _light(rng: random.Random) -> tuple[int, int, int]:
    return _colour(rng, 215, 255)


def _colour(rng: random.Random, low: int, high: int) -> tuple[int, int, int]:
    return rng.randint(low, high), rng.randint(low, high), rng.randint(low, high)


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_DIR + name, size)
