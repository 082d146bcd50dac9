"""Recorded screenshots read back, and the one drawing of a click marker on them.

The run export (`agent.trajectory.render_html`) and the eval report (`agent.eval.report`) both
show a step's screenshot with its action target; both draw it here, so the marker looks the
same everywhere. (The app draws its own live overlay in Qt: `app.overlay`.)
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

MAX_PIXELS = 80_000_000  # a screenshot of two 8K monitors is 66 M; a bigger "image" is a bomb
COLOUR = (230, 30, 30)


def open_screenshot(path: str | Path | None) -> Image.Image | None:
    """The image at `path` as RGB, or None when it is missing, unreadable or implausibly big."""
    if not path or not Path(path).is_file():
        return None
    try:
        with Image.open(path) as raw:
            if raw.width * raw.height > MAX_PIXELS:
                return None
            return raw.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def draw_marker(image: Image.Image, point: tuple[float, float]) -> None:
    """Draw a ring and cross-hair centred on `point` (screenshot pixels) into `image`."""
    draw = ImageDraw.Draw(image)
    x, y = point
    r = max(8, image.width // 120)
    draw.ellipse((x - r, y - r, x + r, y + r), outline=COLOUR, width=max(3, r // 3))
    draw.line((x - 2 * r, y, x + 2 * r, y), fill=COLOUR, width=2)
    draw.line((x, y - 2 * r, x, y + 2 * r), fill=COLOUR, width=2)


def marked_screenshot(path: str | Path | None, point: tuple[float, float] | None,
                      max_width: int = 1200) -> Image.Image | None:
    """The screenshot at `path` with the marker at `point` drawn, scaled down to `max_width`."""
    image = open_screenshot(path)
    if image is None:
        return None
    if point:
        draw_marker(image, point)
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)),
                             Image.Resampling.LANCZOS)
    return image
