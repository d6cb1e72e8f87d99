"""A small overview of the whole frame with the visible area outlined; click or drag in it to move there."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import QWidget

SIDE = 180
"""The longer side of the overview, in pixels: a portrait video's is as tall as a landscape one's is wide (QA pass
56: scaled to this width, a 360x1280 video's overview was taller than the canvas, its top cut off)."""


class Minimap(QWidget):
    """Floats in a corner of the canvas; shown only while the frame does not fit the view."""

    centerRequested = Signal(QPointF)
    """A frame position the canvas should centre on."""
    wheeled = Signal(QPoint, QPointF, object)
    """A wheel turned over the overview (angle delta, position in it, modifiers): it zooms the canvas as
    anywhere else (QA pass 56: zooming in near the picture's corner stopped once the overview showed there)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._thumb = QPixmap()
        self._view = QRectF()
        self._frame = QRectF(0, 0, 1, 1)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.resize(SIDE, SIDE * 9 // 16)
        self.hide()

    def set_thumbnail(self, pixmap: QPixmap) -> None:
        self._thumb = pixmap.scaled(SIDE, SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                    Qt.TransformationMode.SmoothTransformation)
        self.resize(self._thumb.size())
        self.update()

    def set_view(self, visible: QRectF, frame: QRectF) -> None:
        self._view, self._frame = visible, frame
        self.update()

    def _scale(self) -> float:
        return self.width() / max(self._frame.width(), 1.0)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setOpacity(0.85)
        painter.drawPixmap(0, 0, self._thumb)
        painter.setOpacity(1.0)
        s = self._scale()
        box = QRectF(self._view.x() * s, self._view.y() * s, self._view.width() * s, self._view.height() * s)
        painter.setPen(QPen(QColor(255, 210, 0), 2))
        painter.drawRect(box.intersected(QRectF(self.rect()).adjusted(1, 1, -1, -1)))
        painter.setPen(QPen(QColor(0, 0, 0), 1))
        painter.drawRect(self.rect().adjusted(0, 0, -1, -1))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._request(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._request(event.position())

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self.wheeled.emit(event.angleDelta(), event.position(), event.modifiers())
        event.accept()

    def _request(self, pos: QPointF) -> None:
        s = self._scale()
        self.centerRequested.emit(QPointF(pos.x() / s, pos.y() / s))
