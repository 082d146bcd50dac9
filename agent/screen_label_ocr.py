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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

# German first: its model reads umlauts that English-first misreads ("Löschen" as "Léschen");
# measured with scripts/bench_label_reader.py --languages (README, Safety).
DEFAULT_LANGUAGES = "deu+spa+fra+eng"
log = logging.getLogger(__name__)
_PSM_SINGLE_LINE, _PSM_BLOCK, _PSM_SPARSE = 7, 6, 11
# Around the point: where to look for the filled shape, the band, and the fall-back region.
_SHAPE_REACH = (300, 60)
_BAND = (220, 28)
_REGION = (420, 120)
_BAND_MAX_DISTANCE, _REGION_MAX_DISTANCE = 40, 90
_FACTORS = (1, 2)  # screen scales tried: 1x, then halved for 2x (HiDPI) screens
_MARGIN = 8  # white pixels around a cropped shape: tesseract misreads text touching the edge


class OcrUnavailable(RuntimeError):
    """The OCR engine cannot be loaded (library or language data missing)."""


@dataclass(frozen=True)
class Word:
    text: str
    left: float
    top: float
    right: float
    bottom: float

    def distance(self, x: float, y: float) -> float:
        dx = max(self.left - x, 0.0, x - self.right)
        dy = max(self.top - y, 0.0, y - self.bottom)
        return math.hypot(dx, dy)


def _library_names() -> list[str]:
    found = ctypes.util.find_library("tesseract")
    names = [found] if found else []
    if sys.platform == "darwin":
        names += ["/opt/homebrew/lib/libtesseract.dylib", "/usr/local/lib/libtesseract.dylib"]
    elif sys.platform == "win32":
        names += ["libtesseract-5.dll", "tesseract55.dll"]
    else:
        names += ["libtesseract.so.5", "libtesseract.so.4"]
    return names


class _OneOpenMPThread:
    """Ask tesseract's OpenMP regions for one thread during a recognition, on this thread only.

    On a crop this small OpenMP's extra threads mostly spin. The cap must not be process-wide:
    an earlier version set OMP_THREAD_LIMIT=1 while libtesseract loaded (checks took 7-9 ms
    median instead of ~25 ms), but torch, loaded later, shares that same libgomp.so.1 with the
    limit baked in, and its bf16 matrix products came out wrong (max error 102 instead of
    0.38; tests/test_screen_label.py checks this). `omp_set_num_threads` changes only the
    calling thread's setting and is restored after; tesseract's regions that name their own
    thread count ignore it, so the gain is partial.
    """

    def __init__(self) -> None:
        try:
            gomp = ctypes.CDLL("libgomp.so.1")  # the runtime libtesseract already loaded
            self._get, self._set = gomp.omp_get_max_threads, gomp.omp_set_num_threads
            self._set.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            self._get = self._set = None  # another OpenMP runtime (or none): just slower

    def __enter__(self) -> None:
        self._saved = self._get() if self._get else 0
        if self._set:
            self._set(1)

    def __exit__(self, *exc: object) -> None:
        if self._set and self._saved > 0:
            self._set(self._saved)


def _load_library() -> ctypes.CDLL:
    for name in _library_names():
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        lib.TessBaseAPICreate.restype = vp
        lib.TessBaseAPIInit3.argtypes = [vp, cp, cp]
        lib.TessBaseAPISetPageSegMode.argtypes = [vp, i]
        lib.TessBaseAPISetImage.argtypes = [vp, cp, i, i, i, i]
        lib.TessBaseAPISetSourceResolution.argtypes = [vp, i]
        lib.TessBaseAPIRecognize.argtypes = [vp, vp]
        lib.TessBaseAPIGetTsvText.argtypes = [vp, i]
        lib.TessBaseAPIGetTsvText.restype = vp
        lib.TessDeleteText.argtypes = [vp]
        lib.TessBaseAPISetVariable.argtypes = [vp, cp, cp]
        lib.TessBaseAPIEnd.argtypes = [vp]
        lib.TessBaseAPIDelete.argtypes = [vp]
        lib.TessMonitorCreate.restype = vp
        lib.TessMonitorSetDeadlineMSecs.argtypes = [vp, i]
        lib.TessMonitorDelete.argtypes = [vp]
        return lib
    raise OcrUnavailable("libtesseract not found (Debian: apt-get install tesseract-ocr)")


def _release(lib: ctypes.CDLL, handle: int) -> None:
    lib.TessBaseAPIEnd(handle)
    lib.TessBaseAPIDelete(handle)


class TesseractEngine:
    """One libtesseract instance; recognitions are serialised (the C API is not re-entrant)."""

    def __init__(self, languages: str = DEFAULT_LANGUAGES) -> None:
        self._lib = _load_library()
        handle = self._lib.TessBaseAPICreate()
        if not handle:
            raise OcrUnavailable("libtesseract could not create an instance")
        # NULL data path: the packaged default (or TESSDATA_PREFIX), never a download.
        if self._lib.TessBaseAPIInit3(handle, None, languages.encode()) != 0:
            self._lib.TessBaseAPIDelete(handle)
            raise OcrUnavailable(f"tesseract language data missing for {languages!r} "
                                 "(Debian: apt-get install tesseract-ocr-eng tesseract-ocr-deu)")
        # Its diagnostics ("guessing pitch as xheight") would land on the user's terminal.
        self._lib.TessBaseAPISetVariable(handle, b"debug_file", os.devnull.encode())
        self._handle = handle
        self._lock = threading.Lock()
        self._one_thread = _OneOpenMPThread()
        # Free the models at exit: tesseract prints "LEAK!" warnings otherwise.
        weakref.finalize(self, _release, self._lib, handle)

    def words(self, gray: Image.Image, psm: int, deadline: float) -> list[Word] | None:
        """The words of a greyscale image, or None when the deadline passed first."""
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return None
        try:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return None
            lib, h = self._lib, self._handle
            data = gray.tobytes()
            lib.TessBaseAPISetPageSegMode(h, psm)
            lib.TessBaseAPISetImage(h, data, gray.width, gray.height, 1, gray.width)
            lib.TessBaseAPISetSourceResolution(h, 96)
            monitor = lib.TessMonitorCreate()
            try:
                lib.TessMonitorSetDeadlineMSecs(monitor, remaining_ms)
                with self._one_thread:
                    lib.TessBaseAPIRecognize(h, monitor)
            finally:
                lib.TessMonitorDelete(monitor)
            if time.monotonic() > deadline:
                return None  # cancelled part-way: a partial label is worse than none
            tsv = lib.TessBaseAPIGetTsvText(h, 0)
            try:
                text = ctypes.string_at(tsv).decode("utf-8", "replace") if tsv else ""
            finally:
                if tsv:
                    lib.TessDeleteText(tsv)
        finally:
            self._lock.release()
        return _parse_tsv(text)


def _parse_tsv(text: str) -> list[Word]:
    words = []
    for row in text.split("\n"):
        f = row.split("\t")
        if len(f) != 12 or f[0] != "5":
            continue
        token = f[11].strip().strip("|;:,.'\"“”‘’`~_=-—()[]{}<>")
        if not any(c.isalnum() for c in token):
            continue
        left, top, width, height = (int(v) for v in f[6:10])
        words.append(Word(token, left, top, left + width, top + height))
    return words


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
