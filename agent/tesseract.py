"""libtesseract through its C API (ctypes): one engine per instance, a real deadline inside it.

Why this engine (and not the CLI or an ONNX OCR): see `agent.screen_label_ocr`, which finds the
label around a point and asks this module for the words of a crop. Nothing is downloaded: the
language data is the packaged one (or $TESSDATA_PREFIX).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
import threading
import time
import weakref
from dataclasses import dataclass

from PIL import Image

# German first: its model reads umlauts that English-first misreads ("Löschen" as "Léschen");
# measured with scripts/bench_label_reader.py --languages (README, Safety).
DEFAULT_LANGUAGES = "deu+spa+fra+eng"


class OcrUnavailable(RuntimeError):
    """The OCR engine cannot be loaded (library or language data missing)."""


@dataclass(frozen=True)
class Word:
    """One recognised word and its box, in the pixels of the image read."""

    text: str
    left: float
    top: float
    right: float
    bottom: float

    def distance(self, x: float, y: float) -> float:
        """How far the point is from the word's box (0 inside it)."""
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
    0.38; tests/agent/test_screen_label.py checks this). `omp_set_num_threads` changes only the
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
    """The words of tesseract's TSV output (level-5 rows), punctuation-only tokens dropped."""
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
