"""Finding a recorded target's neighbourhood in the current screen: template matching.

Zero-mean normalised cross-correlation (ZNCC), computed for every position at once with FFTs and
integral images (Lewis, "Fast normalized cross-correlation", 1995), in numpy only. ZNCC ignores
uniform changes of brightness and contrast, so a theme tint or anti-aliasing does not hide a
target, while a different label does. A match is *ambiguous* when a second, separate peak scores
nearly as high as the best (two identical "Add to cart" buttons): replay must not guess then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

ACCEPT = 0.85           # a ZNCC score below this is "not found"
AMBIGUOUS_MARGIN = 0.04  # a separate second peak this close to the best makes the match ambiguous
MIN_STD = 6.0           # grey levels: a flatter patch (blank space) identifies nothing
# Half-widths and half-heights of the neighbourhoods tried, smallest first (model pixels): a small
# one survives layout changes around the target, a larger one tells repeated controls apart.
NEIGHBOURHOODS = ((48, 24), (96, 48), (192, 96))
SCALES = (1.0,)                      # tried first
OTHER_SCALES = (0.8, 0.9, 1.1, 1.25)  # tried only when nothing was found at the first scales


@dataclass(frozen=True)
class Match:
    """Where a template was found: the target point in the searched image, and how sure."""

    found: bool
    ambiguous: bool
    score: float             # best ZNCC score, -1..1
    runner_up: float         # best score of a separate second peak (-1 when none)
    point: tuple[float, float] | None  # the target in the searched image's pixels
    scale: float = 1.0
    patch: tuple[int, int] = (0, 0)  # width, height of the neighbourhood that decided
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return self.found and not self.ambiguous


def grey(image: Image.Image) -> np.ndarray:
    """An image as float32 grey levels (what matching works on)."""
    return np.asarray(image.convert("L"), dtype=np.float32)


def _fast_len(n: int) -> int:
    """The next size >= n with only 2, 3 and 5 as factors (FFTs are fast there)."""
    best = 1 << (n - 1).bit_length()
    f5 = 1
    while f5 < best:
        f35 = f5
        while f35 < best:
            f = f35
            while f < n:
                f *= 2
            best = min(best, f)
            f35 *= 3
        f5 *= 5
    return best


class Searched:
    """An image prepared once for many template searches: its spectrum and integral images."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.shape = (_fast_len(image.shape[0]), _fast_len(image.shape[1]))
        self._spectrum: np.ndarray | None = None
        self._sums: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        s = np.zeros((image.shape[0] + 1, image.shape[1] + 1), dtype=np.float64)
        q = s.copy()
        np.cumsum(np.cumsum(image, axis=0, dtype=np.float64), axis=1, out=s[1:, 1:])
        np.cumsum(np.cumsum(image.astype(np.float64) ** 2, axis=0), axis=1, out=q[1:, 1:])
        self._integral, self._integral_sq = s, q

    @property
    def spectrum(self) -> np.ndarray:
        if self._spectrum is None:
            self._spectrum = np.fft.rfft2(self.image, self.shape)
        return self._spectrum

    def window_sums(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Sum and sum of squares over every h×w window (valid positions only)."""
        def box(s: np.ndarray) -> np.ndarray:
            return s[h:, w:] - s[:-h, w:] - s[h:, :-w] + s[:-h, :-w]

        return box(self._integral), box(self._integral_sq)


def zncc_map(image: np.ndarray | Searched, template: np.ndarray) -> np.ndarray:
    """ZNCC of `template` at every position where it fits inside `image` (top-left anchored)."""
    searched = image if isinstance(image, Searched) else Searched(image)
    H, W = searched.image.shape
    h, w = template.shape
    if h > H or w > W:
        return np.full((0, 0), -1.0, dtype=np.float32)
    t = template.astype(np.float64) - float(template.mean())
    t_norm = float(np.sqrt((t * t).sum()))
    spec = searched.spectrum * np.conj(np.fft.rfft2(t, searched.shape))
    num = np.fft.irfft2(spec, searched.shape)[: H - h + 1, : W - w + 1]
    n = h * w
    sums, sq = searched.window_sums(h, w)
    var = np.maximum(sq - sums * sums / n, 0.0)
    denom = np.sqrt(var) * t_norm
    out = np.full(num.shape, -1.0)
    ok = denom > max(1e-6, t_norm * np.sqrt(n) * 1e-3)  # flat windows cannot match a pattern
    out[ok] = num[ok] / denom[ok]
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _peaks(scores: np.ndarray, h: int, w: int) -> tuple[float, tuple[int, int], float]:
    """Best score, its position, and the best score at least half a patch away from it."""
    y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)
    best = float(scores[y, x])
    masked = scores.copy()
    ry, rx = max(1, h // 2), max(1, w // 2)
    masked[max(0, y - ry): y + ry + 1, max(0, x - rx): x + rx + 1] = -1.0
    return best, (int(x), int(y)), float(masked.max()) if masked.size else -1.0


def neighbourhood(image: np.ndarray, point: tuple[float, float], half: tuple[int, int]
                  ) -> tuple[np.ndarray, tuple[float, float]]:
    """The patch of `image` around `point` (clipped at the edges) and the point inside it."""
    H, W = image.shape
    px, py = point
    x0, x1 = max(0, round(px) - half[0]), min(W, round(px) + half[0])
    y0, y1 = max(0, round(py) - half[1]), min(H, round(py) + half[1])
    return image[y0:y1, x0:x1], (px - x0, py - y0)


def _scaled(patch: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return patch
    h, w = patch.shape
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    return np.asarray(Image.fromarray(patch).resize(size, Image.Resampling.BILINEAR), np.float32)


def locate(recorded: np.ndarray, point: tuple[float, float], current: np.ndarray | Searched, *,
           scales: tuple[float, ...] = SCALES, other_scales: tuple[float, ...] = OTHER_SCALES
           ) -> Match:
    """Find the neighbourhood of `point` in `recorded` within `current`.

    Neighbourhoods grow while the match is ambiguous (repeated controls): the first size that is
    found and unique decides. Only if nothing was found at all are the other scales tried, with
    the smallest neighbourhood that shows anything (a different DPI or zoom).
    """
    start = time.perf_counter()
    if not isinstance(current, Searched):
        current = Searched(current)
    result = _locate(recorded, point, current, scales, NEIGHBOURHOODS)
    if not result.found and other_scales:
        other = _locate(recorded, point, current, other_scales, NEIGHBOURHOODS, first_only=True)
        if other.score > result.score:
            result = other
    return Match(result.found, result.ambiguous, result.score, result.runner_up, result.point,
                 result.scale, result.patch, time.perf_counter() - start)


def _locate(recorded: np.ndarray, point: tuple[float, float], current: Searched,
            scales: tuple[float, ...], sizes: tuple[tuple[int, int], ...], *,
            first_only: bool = False) -> Match:
    best = Match(False, False, -1.0, -1.0, None)
    for half in sizes:
        patch, inner = neighbourhood(recorded, point, half)
        if patch.size == 0 or float(patch.std()) < MIN_STD:
            continue  # blank around the target: a larger neighbourhood may show something
        for scale in scales:
            template = _scaled(patch, scale)
            scores = zncc_map(current, template)
            if scores.size == 0:
                continue
            h, w = template.shape
            score, (x, y), second = _peaks(scores, h, w)
            sy, sx = template.shape[0] / patch.shape[0], template.shape[1] / patch.shape[1]
            found = score >= ACCEPT
            ambiguous = found and second >= max(ACCEPT, score - AMBIGUOUS_MARGIN)
            candidate = Match(found, ambiguous, score, second,
                              (x + inner[0] * sx, y + inner[1] * sy), scale,
                              (patch.shape[1], patch.shape[0]))
            if candidate.verified:
                return candidate
            if _better(candidate, best):
                best = candidate
        if first_only:
            break
    return best


def _better(a: Match, b: Match) -> bool:
    """Which failed match to report: an ambiguous one says more than a missing one."""
    return (a.found, a.score) > (b.found, b.score)


def colour_shift(recorded: Image.Image, point: tuple[float, float], current: Image.Image,
                 found: tuple[float, float], size: tuple[int, int]) -> float:
    """How much more the found neighbourhood's mean colour differs than the screens' do (0..255).

    ZNCC ignores brightness and contrast, so the same words on another element (a link's text
    repeated in the next page's title) match; their surroundings' colour usually gives them away.
    """
    def mean(image: Image.Image, p: tuple[float, float]) -> np.ndarray:
        half_w, half_h = size[0] // 2, size[1] // 2
        box = (max(0, round(p[0]) - half_w), max(0, round(p[1]) - half_h),
               min(image.width, round(p[0]) + half_w), min(image.height, round(p[1]) + half_h))
        if box[2] <= box[0] or box[3] <= box[1]:
            return np.zeros(3)
        return np.asarray(image.crop(box).convert("RGB"), np.float64).reshape(-1, 3).mean(axis=0)

    whole = (np.asarray(current.convert("RGB").resize((64, 40)), np.float64).reshape(-1, 3).mean(0)
             - np.asarray(recorded.convert("RGB").resize((64, 40)), np.float64).reshape(-1, 3).mean(0))
    return float(np.abs(mean(current, found) - mean(recorded, point) - whole).max())


def similarity(recorded: Image.Image, current: Image.Image, width: int = 240,
               margin: float = 0.15) -> float:
    """How alike two whole screens are, allowing the content to have moved (-1..1).

    The middle of the recorded screen (without `margin` of each side) is matched anywhere in the
    current one, on small grey copies: a banner or a shifted layout keeps the score high, another
    page does not.
    """
    def small(image: Image.Image) -> np.ndarray:
        height = max(8, round(width * image.height / max(1, image.width)))
        return np.asarray(image.convert("L").resize((width, height), Image.Resampling.BILINEAR),
                          np.float32)

    a, b = small(recorded), small(current)
    h, w = a.shape
    my, mx = round(h * margin), round(w * margin)
    middle = a[my: h - my, mx: w - mx]
    if float(middle.std()) < 1.0:  # nothing in the middle: compare whole screens, unshifted
        middle = a
        if float(a.std()) < 1.0:  # a blank screen: only another blank one is like it
            return 1.0 if float(b.std()) < 1.0 else 0.0
    if middle.shape[0] > b.shape[0] or middle.shape[1] > b.shape[1]:
        b = np.asarray(Image.fromarray(b).resize((middle.shape[1], middle.shape[0])), np.float32)
    scores = zncc_map(b, middle)
    return float(scores.max()) if scores.size else -1.0
