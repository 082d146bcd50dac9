"""The live view: the latest screenshot scaled to fit, with the predicted action drawn on it."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from agent.termtext import visible
from app.overlay import Overlay

ACCENT = QColor("#FF3D7F")   # visible on both light and dark pages
CAPTION_BG = QColor(20, 26, 40, 215)


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
        if point is not None and ov.kind in ("click", "move", "type"):
            r = 14 if ov.kind == "click" else 10
            p.drawEllipse(point, r, r)
            p.drawLine(point + QPointF(-r - 6, 0), point + QPointF(-r + 4, 0))
            p.drawLine(point + QPointF(r - 4, 0), point + QPointF(r + 6, 0))
            p.drawLine(point + QPointF(0, -r - 6), point + QPointF(0, -r + 4))
            p.drawLine(point + QPointF(0, r - 4), point + QPointF(0, r + 6))
            p.setBrush(ACCENT)
            p.drawEllipse(point, 3, 3)
        if point is not None and ov.kind in ("scroll_up", "scroll_down"):
            self._paint_arrow(p, point, up=ov.kind == "scroll_up")
        if ov.kind in ("type", "key", "note") or (ov.kind == "click" and point is None):
            self._paint_caption(p, rect, point, ov)

    def _paint_arrow(self, p: QPainter, at: QPointF, *, up: bool) -> None:
        d = -1 if up else 1
        path = QPainterPath(at + QPointF(0, d * 40))
        path.lineTo(at + QPointF(-22, d * 10))
        path.lineTo(at + QPointF(-9, d * 10))
        path.lineTo(at + QPointF(-9, -d * 36))
        path.lineTo(at + QPointF(9, -d * 36))
        path.lineTo(at + QPointF(9, d * 10))
        path.lineTo(at + QPointF(22, d * 10))
        path.closeSubpath()
        fill = QColor(ACCENT)
        fill.setAlpha(200)
        p.setBrush(fill)
        p.setPen(QPen(QColor("white"), 2))
        p.drawPath(path)

    def _paint_caption(self, p: QPainter, rect: QRectF, point: QPointF | None, ov: Overlay) -> None:
        prefix = {"type": self.tr("type: "), "key": self.tr("keys: ")}.get(ov.kind, "")
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
