"""Web form screens for Deskhand Nano: type a value into a named text field of a web page.

The forms kind (app.nano.forms) on the web kind's pages (app.nano.web): a generated page in a
browser window whose form is one to three labelled text fields — some empty with a placeholder,
some holding text — and its buttons; the task names one field and a value, worded as the forms
kind words it; the answer is Fara's `type` action at the field's centre with that text (Enter
only when the task says so, replacing the field's text when it holds some). The step after it
is the same page with the value in the focused field, answered terminate(success). What it
teaches beyond the desktop's forms: a page's fields (MiniWoB++'s enter-text and focus-text ask
for this), drawn by Chromium at the desktop kind's screen sizes.

Held out as the forms kind: "heldout" screens are new layouts; "heldout_words" screens name a
field label never used in training and type a value never typed in training. Cached as the
web kind's screens are, in their own folder (FORMS_VERSION).
"""

from __future__ import annotations

import random
from pathlib import Path

from agent.geometry import Size
from app.nano.desktop import DONE_SHARE, FILLER, SCREEN_SIZES
from app.nano.forms import BUTTON_WORDS, form_task
from app.nano.screens import Screen
from app.nano.web import ATTEMPTS, FIELD, VERSION, address, drawn, page
from app.nano.web_cache import are_labelled_boxes, cache_folder, cached, screen_of, write_entry

# The form pages are web.page()'s: a change there bumps web.VERSION, and with it this; bump the
# last part for a change here that changes what a (split, index) draws.
FORMS_VERSION = f"forms-{VERSION}.1"


def make_webform(split: str, index: int) -> Screen:
    """Web form screen number `index` of `split`, at model size (drawn once, then read from the
    cache); `previous` set on the step after the typing."""
    meta, captured, after = cached(cache_folder(FORMS_VERSION), split, index, _draw, _whole)
    return screen_of(captured, after, meta["fields"], meta["target"], wording=meta["wording"],
                     typed=meta["value"], press_enter=meta["enter"], clear=meta["clear"])


def _whole(meta: dict) -> bool:
    return (are_labelled_boxes(meta["fields"])
            and isinstance(meta["target"], int) and 0 <= meta["target"] < len(meta["fields"])
            and all(isinstance(meta[k], str) for k in ("wording", "value"))
            and all(isinstance(meta[k], bool) for k in ("enter", "clear")))


def _draw(split: str, index: int, folder: Path) -> None:
    """Draw form screen (split, index) and write it to `folder`."""
    rng = random.Random(f"nano-webform:{split}:{index}")
    labels, target, value, wording, enter = form_task(rng, split)
    count = len(labels)
    fields = tuple((label, " ".join(rng.sample(FILLER, 2)) if rng.random() < 0.5 else None,
                    rng.choice(FILLER) if rng.random() < 0.3 else None) for label in labels)
    held = fields[target][2]
    buttons = rng.sample(BUTTON_WORDS, rng.randint(1, 2))
    size = Size(*rng.choice(SCREEN_SIZES))
    done_step = rng.random() < DONE_SHARE
    # The answer replaces what the field holds (`clear`): the step after shows the value alone.
    ids = (FIELD.format(target), *(FIELD.format(i) for i in range(count) if i != target))
    for attempt in range(ATTEMPTS):  # another layout when the field would be off the screen
        layout = random.Random(f"nano-webform-layout:{split}:{index}:{attempt}")
        markup = page(layout, buttons[0], tuple(buttons[1:]), fields)
        image, boxes, after = drawn(markup, ids, size, address(layout),
                                    (lambda r: r.type_into(ids[0], value, size)) if done_step else None)
        if boxes[0] is not None:
            break
    else:
        raise RuntimeError(f"web form screen {split} {index}: the field is never on the screen")
    # Fields in page order, as the task's target index counts them; one off the screen is left out.
    by_id = dict(zip(ids, boxes, strict=True))
    shown_fields = [(i, labels[i], by_id[FIELD.format(i)]) for i in range(count)
                    if by_id[FIELD.format(i)] is not None]
    write_entry(folder, split, index, {
        "fields": [[label, [b.left, b.top, b.right, b.bottom]] for _, label, b in shown_fields],
        "target": [i for i, _, _ in shown_fields].index(target),
        "wording": wording.replace("{value}", value), "value": value, "enter": enter,
        "clear": held is not None}, image, after)
