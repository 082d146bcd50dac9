"""Form screens for Deskhand Nano: type a value into a named text field.

A whole screen (app.nano.desktop's sizes, backgrounds, title bars and second windows) holds a
Qt window with 1-3 labelled text fields ("Destination: [        ]"), some empty with a
placeholder, some already holding text, maybe a sentence above them and a row of buttons. The
task names one field and a value, worded as people type it ("Type Oslo into the Destination
field and press Enter.", "type Oslo in Destination", "Fill in Destination with Oslo"); the
answer is Fara's `type` action at the field's centre with that text, pressing Enter only when
the task says so and replacing the field's text when it holds some. The step after it (the
field now showing the value, the typing in the history) is answered terminate(success).

Held out as for the buttons: "heldout" screens are new layouts; "heldout_words" screens name a
field label never used in training and type a value never typed in training.
"""

from __future__ import annotations

import random

from agent.geometry import Size
from app.nano.desktop import (
    DONE_SHARE,
    FILLER,
    SCREEN_SIZES,
    _background,
    grab_window,
    nano_model_size,
    place_window,
    scaled_box,
    styled_window,
    to_model,
)
from app.nano.screens import SPLITS, TRAIN_WORDS, Box, Button, Screen

FIELDS = ("Destination", "Name", "Email", "City", "Search", "Subject", "Phone", "Address",
          "Username", "Title", "Country", "Message", "Departure", "Company", "Street",
          "Comment", "First name", "Last name", "Keywords", "Date")
VALUES = ("Oslo", "Berlin", "Paris", "Lisbon", "Tokyo", "hello", "Anna", "report", "42",
          "coffee", "blue shoes", "Elm Road 5", "bob@example.com", "2026-12-24", "Madrid",
          "green tea", "Rome", "invoice 17", "Lena", "weather")
# Every fifth label and value is never shown on a training screen.
HELD_OUT_FIELDS, HELD_OUT_VALUES = FIELDS[4::5], VALUES[4::5]
TRAIN_FIELDS = tuple(f for f in FIELDS if f not in HELD_OUT_FIELDS)
TRAIN_VALUES = tuple(v for v in VALUES if v not in HELD_OUT_VALUES)
# Words of the button row: no field label (a "Search" button beside a "Search" field would
# show a held-out label on training screens).
BUTTON_WORDS = tuple(w for w in TRAIN_WORDS if w not in FIELDS)
# (wording, presses Enter): "{value}" is the text, "{}" the field's label.
WORDINGS = (("Type {value} into the {} field and press Enter.", True),
            ("type {value} in {}", False),
            ("Enter {value} in the {} field.", False),
            ("Fill in {} with {value}", False),
            ("Write {value} in the {} box and press Enter", True),
            ("Type {value} into {} and hit Enter.", True))


def form_task(rng: random.Random, split: str) -> tuple[list[str], int, str, str, bool]:
    """A form's task (shared by the web form pages, app.nano.webforms): its 1-3 field labels,
    the named one's index, the value, the wording and whether it presses Enter. On
    "heldout_words" the named label and the value are held-out ones."""
    new = split == "heldout_words"
    count = rng.randint(1, 3)
    target = rng.randrange(count)
    labels = rng.sample(TRAIN_FIELDS, count)
    if new:
        labels[target] = rng.choice(HELD_OUT_FIELDS)
    value = rng.choice(HELD_OUT_VALUES if new else TRAIN_VALUES)
    wording, enter = rng.choice(WORDINGS)
    return labels, target, value, wording, enter


def make_form(split: str, index: int) -> Screen:
    """Form screen number `index` of `split`, at model size (deterministic); `previous` set on
    the step after the typing."""
    from PySide6.QtWidgets import (
        QGridLayout,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QPushButton,
        QVBoxLayout,
    )

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    rng = random.Random(f"nano-form:{split}:{index}")
    labels, target, value, wording, enter = form_task(rng, split)
    width, height = rng.choice(SCREEN_SIZES)
    desktop = _background(rng, width, height)

    window = styled_window(rng)
    layout = QVBoxLayout(window)
    layout.setContentsMargins(*(rng.randint(8, 24) for _ in range(4)))
    layout.setSpacing(rng.randint(6, 16))
    if rng.random() < 0.6:
        sentence = " ".join(rng.choice(FILLER) for _ in range(rng.randint(3, 10)))
        intro = QLabel(sentence[0].upper() + sentence[1:] + rng.choice((".", ":", "")))
        intro.setWordWrap(True)
        layout.addWidget(intro)
    grid = QGridLayout()
    fields: list[QLineEdit] = []
    held = []
    for row, label in enumerate(labels):
        grid.addWidget(QLabel(label + rng.choice((":", "", " :"))), row, 0)
        field = QLineEdit()
        if rng.random() < 0.5:
            field.setPlaceholderText(" ".join(rng.sample(FILLER, 2)))
        holds = rng.random() < 0.3
        if holds:
            field.setText(rng.choice(FILLER))
        held.append(holds)
        grid.addWidget(field, row, 1)
        fields.append(field)
    layout.addLayout(grid)
    if rng.random() < 0.6:  # a row of buttons, never the target
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for word in rng.sample(BUTTON_WORDS, rng.randint(1, 2)):
            buttons.addWidget(QPushButton(word))
        layout.addLayout(buttons)
    if rng.random() < 0.5:
        layout.addStretch(1)

    def typed() -> None:  # what the screen shows after the typing
        fields[target].setText(value if held[target] else fields[target].text() + value)

    window_image, rects, after_window = grab_window(
        rng, window, layout, fields, max_width=min(900, width - 40),
        max_height=min(600, height - 80), change=typed)
    _, (x, y, bar) = place_window(rng, desktop, window_image)
    after_desktop = desktop.copy()  # the same screen, with the value in the field
    after_desktop.paste(after_window, (x, y + bar))
    size = nano_model_size(Size(width, height))
    shown = [Button(label, scaled_box(Box(x + r[0], y + bar + r[1], x + r[2], y + bar + r[3]),
                                   width, height, size))
             for label, r in zip(labels, rects, strict=True)]
    task = wording.replace("{value}", value)
    screen = Screen(to_model(desktop, size), tuple(shown), target, wording=task, typed=value,
                    press_enter=enter, clear=held[target], captured=desktop)
    if rng.random() >= DONE_SHARE:
        return screen
    return Screen(to_model(after_desktop, size), tuple(shown), target, previous=screen.image,
                  wording=task, typed=value, press_enter=enter, clear=held[target])
