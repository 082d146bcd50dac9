"""What will receive a click or a key: the label at the target, read from the screen.

The confirmation gate asks `reader.read(screenshot_image, x, y)` before a click, a submit key
or `press_enter`, with (x, y) in SCREENSHOT pixels (agent/geometry.py). The accessibility tree
answers first (the element's own name and role: exact, and it knows a password field); where it
has nothing (no bus, a canvas, a browser without accessibility on), OCR reads the pixels around
the point. Where both answer for a control and disagree, the label is "name / drawn text", so
a page cannot hide a drawn "Place order" behind an accessible name of "Cancel".

A check never raises and never takes longer than its time limit: whatever goes wrong, the
answer is an empty label with source "none", and the gate decides on its other evidence.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from agent.geometry import Monitor
from agent.screen_label_a11y import AccessibilityReader, Element
from agent.screen_label_ocr import DEFAULT_LANGUAGES, OcrLabelReader, OcrUnavailable

log = logging.getLogger(__name__)

# A check's hard limit. The median is well below (see README, Safety); the limit bounds a slow
# first load of the OCR models or an accessibility bus that stops answering.
DEFAULT_TIME_LIMIT = 0.5
# Bounds only a runaway name; never short enough to cut off words the gate would scan (it asks by
# itself on text longer than it scans).
_MAX_LABEL = 20_000
# Roles whose pixels show what was typed, not a label: OCR there would read the user's text.
_TYPED_ROLES = {"entry", "text", "password text", "terminal", "editbar", "edit", "document text",
                "spin button", "combo box", "paragraph"}


@dataclass(frozen=True)
class TargetLabel:
    text: str  # label read at the target ("" if nothing)
    role: str = ""  # accessibility role if known, e.g. "push button", "password text", "entry"
    source: str = "none"  # "atspi" | "ocr" | "none"
    seconds: float = 0.0


class LabelReader(Protocol):
    def read(self, image: Image.Image, x: int, y: int) -> TargetLabel:
        """The label at (x, y), in screenshot pixels of `image`."""
        ...


class NullReader:
    """Reads nothing: for policies that never look at the screen, and for tests."""

    def read(self, image: Image.Image, x: int, y: int) -> TargetLabel:
        return TargetLabel("")


def _same_words(a: str, b: str) -> bool:
    def key(s: str) -> str:
        return "".join(c for c in s.casefold() if c.isalnum())
    ka, kb = key(a), key(b)
    return ka in kb or kb in ka


def _clean(text: str) -> str:
    return " ".join(text.split())[:_MAX_LABEL]


class ScreenLabelReader:
    """Accessibility first, OCR where it has nothing; never raises, bounded by `time_limit`."""

    def __init__(self, accessibility: AccessibilityReader | None, ocr: OcrLabelReader | None, *,
                 time_limit: float = DEFAULT_TIME_LIMIT) -> None:
        self.accessibility = accessibility
        self.ocr = ocr
        self.time_limit = time_limit

    def read(self, image: Image.Image, x: int, y: int) -> TargetLabel:
        start = time.monotonic()
        deadline = start + self.time_limit
        try:
            x, y = int(x), int(y)
            width, height = image.size
            inside = 0 <= x < width and 0 <= y < height
        except Exception:
            inside = False
        if not inside:
            return TargetLabel("", seconds=time.monotonic() - start)
        element = self._element(image, x, y, deadline)
        text, source = (element.name, element.source) if element.name.strip() else ("", "none")
        if self.ocr is not None and time.monotonic() < deadline:
            if not text:
                text = self._drawn(image, x, y, deadline)
                source = "ocr" if text else "none"
            elif element.role not in _TYPED_ROLES:
                # A page sets its own accessible names (aria-label="Cancel" on a "Place order"
                # button): what is drawn there is read too, and shown when it differs.
                drawn = self._drawn(image, x, y, deadline)
                if drawn and not _same_words(drawn, text):
                    text = f"{text} / {drawn}"
        seconds = time.monotonic() - start
        if seconds > self.time_limit:
            return TargetLabel("", seconds=seconds)  # late answers are dropped: the limit is a promise
        text = _clean(text)
        return TargetLabel(text, element.role, source if text else "none", seconds)

    # A reader must never take the gate down: each source's failure is an empty answer from it.
    def _element(self, image: Image.Image, x: int, y: int, deadline: float) -> Element:
        if self.accessibility is None:
            return Element()
        try:
            found = self.accessibility.element_at(image.size, x, y, deadline) or Element()
            return Element(str(found.name), str(found.role), str(found.source))
        except Exception as exc:
            log.warning("screen label: accessibility: %s: %s", type(exc).__name__, exc)
            return Element()

    def _drawn(self, image: Image.Image, x: int, y: int, deadline: float) -> str:
        try:
            return self.ocr.text_at(image, x, y, deadline) if self.ocr is not None else ""
        except OcrUnavailable:
            return ""  # logged once, when loading failed
        except Exception as exc:
            log.warning("screen label: OCR: %s: %s", type(exc).__name__, exc)
            return ""


def default_reader(monitor: Monitor | None = None, *, time_limit: float = DEFAULT_TIME_LIMIT,
                   languages: str = DEFAULT_LANGUAGES) -> LabelReader:
    """The platform's accessibility reader, then tesseract OCR; never raises.

    `monitor` places the screenshot on the desktop for the accessibility lookup (its origin, and
    its size against the image's size for the scale); without it the screenshot is taken to
    start at desktop (0, 0) with one image pixel per desktop pixel. OCR needs no mapping.
    """
    try:
        accessibility: AccessibilityReader | None = AccessibilityReader(monitor)
    except Exception as exc:
        log.warning("screen label: no accessibility reader: %s", exc)
        accessibility = None
    try:
        ocr: OcrLabelReader | None = OcrLabelReader(languages)
        ocr.warm()
    except Exception as exc:
        log.warning("screen label: no OCR reader: %s", exc)
        ocr = None
    return ScreenLabelReader(accessibility, ocr, time_limit=time_limit)
