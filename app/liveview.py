"""The live view: the latest screenshot scaled to fit, with the predicted action drawn on it."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from agent.termtext import visible
from app.overlay import Overlay

ACCENT = QColor("#FF3D7F")   # visible on both light and dark pages
CAPTION_BG = QColor(20, 26, 40, 215)
_RINGS = {"click": 1, "double_click": 2, "triple_click": 3, "right_click": 1}  # rings per marker
_ARROWS = {"scroll_up": (0, -1), "scroll_down": (0, 1), "scroll_left": (-1, 0), "scroll_right": (1, 0)}


class LiveView(QWidget):
    """Paints one image (aspect kept, centred) and one action marker in image coordinates."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self._image: QImage | None = None
        self._overlay: Overlay | None = None
        self._scale = 1.0  # image pixels per screenshot pixel
        self._placeholder = self.tr("The screen the agent sees appears here during a run.")

    def sizeHint(self) -> QSize:
        return QSize(800, 500)

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def show_image(self, image: QImage | None, overlay: Overlay | None = None,
                   scale: float = 1.0) -> None:
        """Show `image`; `overlay` points are in screenshot pixels, `scale` maps them to `image`."""
        self._image, self._overlay, self._scale = image, overlay, scale
        self.update()

    @property
    def image(self) -> QImage | None:
        return self._image

    def image_rect(self) -> QRectF:
        """Where the image is drawn inside the widget."""
        if self._image is None or self._image.isNull():
            return QRectF()
        w, h = self._image.width(), self._image.height()
        k = min(self.width() / w, self.height() / h)
        dw, dh = w * k, h * k
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        if self._image is None or self._image.isNull():
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self._placeholder)
            return
        rect = self.image_rect()
        p.drawImage(rect, self._image)
        if self._overlay is not None:
            k = rect.width() / self._image.width() * self._scale
            self._paint_overlay(p, rect, k, self._overlay)

    def _paint_overlay(self, p: QPainter, rect: QRectF, k: float, ov: Overlay) -> None:
        point = None
        if ov.point is not None:
            point = QPointF(rect.left() + ov.point[0] * k, rect.top() + ov.point[1] * k)
        pen = QPen(ACCENT, 3)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        if point is not None and ov.kind in (*_RINGS, "move", "type", "drag"):
            r = 10 if ov.kind in ("move", "type") else 14
            for ring in range(1, _RINGS.get(ov.kind, 1)):  # one more ring per extra click
                p.drawEllipse(point, r + 6 * ring, r + 6 * ring)
            if ov.kind == "right_click":  # the right half filled: the right button
                p.drawChord(QRectF(point.x() - r, point.y() - r, 2 * r, 2 * r), -90 * 16, 180 * 16)
            p.drawEllipse(point, r, r)
            p.drawLine(point + QPointF(-r - 6, 0), point + QPointF(-r + 4, 0))
            p.drawLine(point + QPointF(r - 4, 0), point + QPointF(r + 6, 0))
            p.drawLine(point + QPointF(0, -r - 6), point + QPointF(0, -r + 4))
            p.drawLine(point + QPointF(0, r - 4), point + QPointF(0, r + 6))
            p.setBrush(ACCENT)
            p.drawEllipse(point, 3, 3)
        if point is not None and ov.kind == "drag" and ov.start is not None:
            start = QPointF(rect.left() + ov.start[0] * k, rect.top() + ov.start[1] * k)
            p.setPen(QPen(ACCENT, 3, Qt.PenStyle.DashLine))
            p.drawLine(start, point)
            p.drawEllipse(start, 5, 5)
        if point is not None and ov.kind in _ARROWS:
            self._paint_arrow(p, point, _ARROWS[ov.kind])
        if ov.kind in ("type", "key", "note", "question", "read", "drag") or (
                ov.kind in _RINGS and point is None):
            self._paint_caption(p, rect, point, ov)

    def _paint_arrow(self, p: QPainter, at: QPointF, way: tuple[int, int]) -> None:
        """A block arrow pointing along `way` ((0, -1) is up, (1, 0) is right)."""
        dx, dy = way

        def at_(along: float, across: float) -> QPointF:  # along the arrow, and across it
            return at + QPointF(-dx * along + dy * across, -dy * along - dx * across)

        path = QPainterPath(at_(-40, 0))
        for along, across in ((-10, -22), (-10, -9), (36, -9), (36, 9), (-10, 9), (-10, 22)):
            path.lineTo(at_(along, across))
        path.closeSubpath()
        fill = QColor(ACCENT)
        fill.setAlpha(200)
        p.setBrush(fill)
        p.setPen(QPen(QColor("white"), 2))
        p.drawPath(path)

    def _paint_caption(self, p: QPainter, rect: QRectF, point: QPointF | None, ov: Overlay) -> None:
        prefix = {"type": self.tr("type: "), "key": self.tr("keys: "), "question": self.tr("asks you: "),
                  "read": self.tr("reads the page: ")}.get(ov.kind, "")
        label = visible(ov.label, multiline=False)  # typed text: a newline shows as \n
        text = prefix + (label if len(label) <= 80 else label[:77] + "…")
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 1.1)
        font.setBold(True)
        p.setFont(font)
        metrics = p.fontMetrics()
        w = metrics.horizontalAdvance(text) + 20
        h = metrics.height() + 12
        if point is not None:
            x = min(max(rect.left() + 4, point.x() + 20), rect.right() - w - 4)
            y = min(max(rect.top() + 4, point.y() + 18), rect.bottom() - h - 4)
        else:
            x, y = rect.left() + (rect.width() - w) / 2, rect.bottom() - h - 14
        box = QRectF(x, y, w, h)
        p.setPen(QPen(ACCENT, 2))
        p.setBrush(CAPTION_BG)
        p.drawRoundedRect(box, 6, 6)
        p.setPen(QColor("white"))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
