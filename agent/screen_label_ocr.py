"""OCR of the label at a point of a screenshot: Debian's tesseract through its C API (ctypes).

Why this engine: libtesseract is a Debian package (scripts/setup.sh installs it with English,
German, French and Spanish models); it loads once in ~0.2 s (one engine per process, shared by
every reader), then reads a button-sized crop in ~5-15 ms on one thread, and its monitor puts a
real deadline inside recognition. The CLI pays a process start and a model load on every check
(~0.3 s before reading anything); the ONNX PP-OCR wheel (rapidocr-onnxruntime) needs OpenCV,
was ~9x slower and drops accents. scripts/bench_label_reader.py and the README (Safety) give
the numbers.

How a label is found: the background colour under the point is sampled; if the point sits in
a closed shape of that colour (a filled or outlined button, a chip, a tab) the shape's rectangle
is cropped and only its text is read, so a neighbouring button a few pixels away never takes
part. Otherwise (text on the page) a band around the point is read and the phrase nearest the
point wins. Both are tried at 1x and then at half size (2x HiDPI screens); last, the nearest
phrase in a larger region.

The engine itself (ctypes bindings, OpenMP cap, deadline monitor) is `agent/tesseract.py`.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import numpy as np
from PIL import Image, ImageOps

from agent.tesseract import DEFAULT_LANGUAGES, OcrUnavailable, TesseractEngine, Word

__all__ = ["DEFAULT_LANGUAGES", "OcrLabelReader", "OcrUnavailable", "TesseractEngine", "shared_engine"]

log = logging.getLogger(__name__)
_PSM_SINGLE_LINE, _PSM_BLOCK, _PSM_SPARSE = 7, 6, 11
# Around the point: where to look for the filled shape, the band, and the fall-back region.
_SHAPE_REACH = (300, 60)
_BAND = (220, 28)
_REGION = (420, 120)
_BAND_MAX_DISTANCE, _REGION_MAX_DISTANCE = 40, 90
_FACTORS = (1, 2)  # screen scales tried: 1x, then halved for 2x (HiDPI) screens
_MARGIN = 8  # white pixels around a cropped shape: tesseract misreads text touching the edge


def _colours_at(rgb: np.ndarray, x: int, y: int) -> list[np.ndarray]:
    """The two most common colours right at the point: the background and, on bold text, the
    text itself (which can outnumber it there); the caller tries both."""
    win = rgb[max(0, y - 8):y + 9, max(0, x - 12):x + 13].reshape(-1, 3)
    q = win // 16
    key = (q[:, 0] << 8) | (q[:, 1] << 4) | q[:, 2]
    values, counts = np.unique(key, return_counts=True)
    order = np.argsort(counts)[::-1][:2]
    return [win[key == values[i]].mean(axis=0) for i in order if counts[i] >= 0.15 * len(key)] or \
        [win.mean(axis=0)]


def _filled_shape(rgb: np.ndarray, x: int, y: int, bg: np.ndarray) -> tuple[int, int, int, int] | None:
    """The rectangle of the shape of colour `bg` around the point, or None if it is open.

    A shape ends at a row that is unbroken non-`bg` next to the point (a border line, or the
    page in another colour) and then at a column that is non-`bg` down its whole height.
    Text rows never stop the walk: letters leave gaps of background between them.
    """
    other = np.abs(rgb - bg).sum(axis=2) >= 40
    # Spans left of, around and right of the point: near a button's edge the centred one reaches
    # out onto the page, which may have the button's colour.
    closed_rows = np.zeros(other.shape[0], dtype=bool)
    for span in (slice(max(0, x - 32), x + 1), slice(max(0, x - 16), x + 17), slice(x, x + 33)):
        closed_rows |= other[:, span].all(axis=1)
    run = _open_run(closed_rows, y)
    if run is None or run[1] - run[0] < 10:
        return None
    top, bottom = run
    # A border column: unbroken in the middle rows (rounded corners bend away from the top and
    # bottom ones) and most of the full height (a letter's stem spans only the text's height).
    inset = (bottom - top) // 5
    closed_cols = ((other[top + inset:bottom + 1 - inset].mean(axis=0) >= 0.95)
                   & (other[top:bottom + 1].mean(axis=0) >= 0.6))
    run = _open_run(closed_cols, x)
    if run is None or run[1] - run[0] < 12:
        return None
    left, right = run
    return left, top, right + 1, bottom + 1


def _open_run(closed: np.ndarray, at: int) -> tuple[int, int] | None:
    """The first and last index of the run of open cells around `at` between closed cells;
    None when the run reaches either end (no border on that side)."""
    low = high = at
    while low > 0 and not closed[low - 1]:
        low -= 1
    while high < len(closed) - 1 and not closed[high + 1]:
        high += 1
    return None if low == 0 or high == len(closed) - 1 else (low, high)


def _area(box: tuple[int, int, int, int]) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def _shape_image(rgb: np.ndarray, box: tuple[int, int, int, int], bg: np.ndarray) -> Image.Image:
    """Dark text on white whatever the theme: distance from the shape's colour, corners cleared."""
    left, top, right, bottom = box
    dist = np.abs(rgb[top:bottom, left:right] - bg).sum(axis=2).astype(np.float32)
    scale = max(float(np.percentile(dist, 98)), 60.0)
    gray = (255 * (1 - np.clip(dist / scale, 0, 1))).astype(np.uint8)
    r = min(8, gray.shape[0] // 4, gray.shape[1] // 4)  # rounded corners would read as "j" or ";"
    for rows in (slice(0, r), slice(-r, None)):
        for cols in (slice(0, r), slice(-r, None)):
            gray[rows, cols] = 255
    return ImageOps.expand(Image.fromarray(gray), _MARGIN, fill=255)


def _phrases(words: list[Word], max_gap: float = 1.5) -> list[list[Word]]:
    """Words grouped by position (tesseract's sparse mode gives each word its own block):
    overlapping vertically, and apart by less than `max_gap` average letter widths (a space is
    about one; the gap between two buttons is several). Letter widths, not heights: a word box
    in a band can take in a button's outline and grow tall."""
    phrases: list[list[Word]] = []
    for w in sorted(words, key=lambda w: w.left):
        for phrase in phrases:
            last = phrase[-1]
            overlap = min(last.bottom, w.bottom) - max(last.top, w.top)
            small = min(last.bottom - last.top, w.bottom - w.top)
            letter = (last.right - last.left + w.right - w.left) / max(1, len(last.text) + len(w.text))
            if overlap >= 0.5 * small and -2 <= w.left - last.right <= max_gap * letter:
                phrase.append(w)
                break
        else:
            phrases.append([w])
    return phrases


def _nearest_phrase(words: list[Word], x: float, y: float, max_distance: float) -> str:
    best, best_d = None, max_distance
    for phrase in _phrases(words):
        d = min(w.distance(x, y) for w in phrase)
        if d <= best_d:
            best, best_d = phrase, d
    return " ".join(w.text for w in best) if best else ""


def _window(image_size: tuple[int, int], x: int, y: int, reach: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = image_size
    return max(0, x - reach[0]), max(0, y - reach[1]), min(w, x + reach[0] + 1), min(h, y + reach[1] + 1)


def _around(image: Image.Image, x: int, y: int, reach: tuple[int, int],
            factor: int) -> tuple[np.ndarray, int, int]:
    """RGB pixels within `reach` (at 1x) of the point, shrunk by `factor`; and the point in them."""
    box = _window(image.size, x, y, (reach[0] * factor, reach[1] * factor))
    crop = image.crop(box).convert("RGB")  # crop first: only the region around the point is read
    if factor != 1:
        crop = crop.resize((max(1, crop.width // factor), max(1, crop.height // factor)),
                           Image.Resampling.BOX)
    px = min((x - box[0]) // factor, crop.width - 1)
    py = min((y - box[1]) // factor, crop.height - 1)
    return np.asarray(crop).astype(np.int32), px, py


def _shape_at(rgb: np.ndarray, x: int, y: int) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The background colour at the point and the shape it fills: of the candidate colours, the
    one filling the larger shape (text strokes make only letter-sized ones)."""
    colours = _colours_at(rgb, x, y)
    bg, shape = colours[0], None
    for colour in colours:
        found = _filled_shape(rgb, x, y, colour)
        if found and (shape is None or _area(found) > _area(shape)):
            bg, shape = colour, found
    return bg, shape


_engines: dict[str, TesseractEngine] = {}
_engines_lock = threading.Lock()


def shared_engine(languages: str) -> TesseractEngine:
    """One engine per language set for the whole process (a reader per monitor shares it)."""
    with _engines_lock:
        if languages not in _engines:
            _engines[languages] = TesseractEngine(languages)
        return _engines[languages]


class OcrLabelReader:
    """Reads the text at a point of a screenshot with an OCR engine (lazily loaded)."""

    def __init__(self, languages: str = DEFAULT_LANGUAGES) -> None:
        self._languages = languages
        self._engine: TesseractEngine | None = None
        self._failed: str | None = None
        self._init_lock = threading.Lock()

    def engine(self, timeout: float | None = None) -> TesseractEngine | None:
        """The engine, loaded on first use (None if still loading after `timeout` seconds);
        raises OcrUnavailable, remembered, if it cannot be loaded."""
        if not self._init_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            return None
        try:
            if self._engine is None:
                if self._failed:
                    raise OcrUnavailable(self._failed)
                try:
                    self._engine = shared_engine(self._languages)
                except (OcrUnavailable, OSError, AttributeError) as exc:
                    self._failed = str(exc) or type(exc).__name__
                    log.warning("screen label: no OCR, labels come from accessibility only: %s",
                                self._failed)
                    raise OcrUnavailable(self._failed) from exc
            return self._engine
        finally:
            self._init_lock.release()

    def warm(self) -> None:
        """Load the engine now, on a background thread, so the first check does not pay for it."""
        def load() -> None:
            try:
                self.engine()
            except OcrUnavailable:
                pass  # logged where it failed; each check then reads nothing by OCR

        threading.Thread(target=load, name="screen-label-ocr-load", daemon=True).start()

    def text_at(self, image: Image.Image, x: int, y: int, deadline: float) -> str:
        """The label at (x, y) in screenshot pixels; "" when none is found before the deadline."""
        engine = self.engine(timeout=deadline - time.monotonic())
        if engine is None:
            return ""
        # At 1x, then halved: on a 2x (HiDPI) screen a button outgrows the 1x reach, and halving
        # brings its text to the size tesseract reads best. At each: the shape under the point,
        # else (text on the page, an outlined button on the page's colour) the nearest phrase in
        # a band; last, the nearest phrase in a larger region.
        for factor in _FACTORS:
            rgb, px, py = _around(image, x, y, _SHAPE_REACH, factor)
            bg, shape = _shape_at(rgb, px, py)
            if shape is not None:
                text = _read_shape(engine, rgb, px, py, shape, bg, deadline)
                if text is None:
                    return ""
                if text:
                    return text
            text = _read_nearest(engine, image, x, y, _BAND, factor, bg, deadline)
            if text is None:
                return ""
            if text:
                return text
        return _read_nearest(engine, image, x, y, _REGION, 1, bg, deadline) or ""


def _read_shape(engine: TesseractEngine, rgb: np.ndarray, px: int, py: int,
                shape: tuple[int, int, int, int], bg: np.ndarray, deadline: float) -> str | None:
    """The text of a shape: all of it for a control, the phrase at the point for a panel."""
    control = shape[3] - shape[1] < 64  # a button's height; taller is a panel or a card
    words = engine.words(_shape_image(rgb, shape, bg), _PSM_SINGLE_LINE if control else _PSM_BLOCK,
                         deadline)
    if words is None:
        return None
    if control:
        lines = sorted(_phrases(words, math.inf), key=lambda line: min(w.top for w in line))
        return " ".join(w.text for line in lines for w in line)
    return _nearest_phrase(words, px - shape[0] + _MARGIN, py - shape[1] + _MARGIN, _BAND_MAX_DISTANCE)


def _read_nearest(engine: TesseractEngine, image: Image.Image, x: int, y: int, reach: tuple[int, int],
                  factor: int, bg: np.ndarray, deadline: float) -> str | None:
    """The phrase nearest the point within `reach`; None when the deadline passed."""
    rgb, px, py = _around(image, x, y, reach, factor)
    gray = Image.fromarray(rgb.mean(axis=2).astype(np.uint8))
    if float(bg.mean()) < 128:  # light text on a dark background: tesseract wants dark on light
        gray = ImageOps.invert(gray)
    words = engine.words(gray, _PSM_SPARSE, deadline)
    if words is None:
        return None
    return _nearest_phrase(words, px, py, _BAND_MAX_DISTANCE if reach is _BAND else _REGION_MAX_DISTANCE)
