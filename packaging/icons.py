"""The app icon for every installer, rendered from assets/icons/deskhand.svg with Qt.

    python packaging/icons.py OUT_DIR    PNGs at every size, deskhand.ico and deskhand.icns
Run with the build venv's Python (it has PySide6 and Pillow); the spec picks up the .ico/.icns.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SVG = Path(__file__).resolve().parent.parent / "assets" / "icons" / "deskhand.svg"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512, 1024)  # hicolor sizes, plus macOS's 1024


def render_pngs(out: Path) -> dict[int, Path]:
    """out/deskhand-<size>.png for every size."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise RuntimeError(f"{SVG} is not a valid SVG")
    out.mkdir(parents=True, exist_ok=True)
    made = {}
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        renderer.render(painter)
        painter.end()
        made[size] = out / f"deskhand-{size}.png"
        if not image.save(str(made[size])):
            raise RuntimeError(f"could not write {made[size]}")
    return made


def write_all(out: Path) -> dict[int, Path]:
    """The PNGs, plus deskhand.ico (Windows) and deskhand.icns (macOS) made from them."""
    from PIL import Image

    pngs = render_pngs(out)
    big = Image.open(pngs[1024])
    big.save(out / "deskhand.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    big.save(out / "deskhand.icns")
    return pngs


if __name__ == "__main__":
    write_all(Path(sys.argv[1]))
