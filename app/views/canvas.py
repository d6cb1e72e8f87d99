"""The frame canvas: the frame, its mask overlay and the brush cursor in a zoomable, pannable view.

Mouse strokes are forwarded to the document in frame coordinates; the document paints the label map and
says which rectangle changed, and only that rectangle of the overlay image is re-rendered and repainted.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPen, QPixmap, QWheelEvent
from PySide6.QtWidgets import (QGraphicsEllipseItem, QGraphicsItem, QGraphicsPixmapItem, QGraphicsScene,
                               QGraphicsView, QStyleOptionGraphicsItem, QWidget)
import qimage2ndarray  # after PySide6: it binds to the Qt already imported

from ..document import Document
from ..editor_state import EditorState, Tool
from ..overlay import OverlayMode, label_lut, render
from ..painting import Rect
from .minimap import Minimap

MIN_ZOOM, MAX_ZOOM = 0.05, 40.0
DIM_AFTER_MS = 150  # a picture decoded off the GUI thread for longer: the one still shown is dimmed


def rgb_pixmap(rgb: np.ndarray) -> QPixmap:
    """An RGB uint8 array as a pixmap; the QImage only borrows the array until fromImage has copied it
    (`qimage2ndarray.array2qimage` converts to 32-bit pixels first: 8 ms a 1080p frame against 0.5 ms, on every
    frame step)."""
    h, w = rgb.shape[:2]
    data = np.ascontiguousarray(rgb)
    return QPixmap.fromImage(QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888))


class OverlayItem(QGraphicsItem):
    """Draws a premultiplied ARGB image that `buffer` views as BGRA bytes (the overlay renders into it in place);
    `update(rect)` repaints a part of it."""

    def __init__(self) -> None:
        super().__init__()
        self.resize(1, 1)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)

    def resize(self, height: int, width: int) -> None:
        self.prepareGeometryChange()
        self._image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
        self.buffer = qimage2ndarray.byte_view(self._image)  # [H,W,4], the image's own memory
        self.buffer[...] = 0

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.buffer.shape[1], self.buffer.shape[0])

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        exposed = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if not exposed.isEmpty():
            painter.drawImage(exposed, self._image, exposed)


class CanvasView(QGraphicsView):
    """Shows the document's current frame; paints with the left button, erases with the right one."""

    spaceTapped = Signal()
    """Space pressed and released without panning: the window toggles playback."""
    zoomChanged = Signal(float)
    pressed = Signal()
    """A mouse button went down on the picture: the window pauses playback, so a stroke stays on its frame."""

    def __init__(self, document: Document, editor: EditorState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc = document
        self._editor = editor
        self._lut = np.zeros((256, 4), np.uint8)
        self._fit = True
        self._zoom_anchor: tuple[QPointF, QPointF] | None = None  # (viewport, scene) of the last zoom step
        self._contour = 1  # the width the contours were last drawn at (`_contour_width`)
        self._opened: int | None = None  # the video shown (`Document.opened`): the same frames keep the view
        self._pan_from: QPointF | None = None
        self._space_down = False
        self._space_panned = False
        self._painting = False

        self.setScene(QGraphicsScene(self))
        self._frame_item = QGraphicsPixmapItem()
        self._frame_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._overlay = OverlayItem()
        self._cursor = QGraphicsEllipseItem()
        self._cursor_shadow = QGraphicsEllipseItem()
        for item, z in ((self._frame_item, 0), (self._overlay, 1), (self._cursor_shadow, 2), (self._cursor, 3)):
            item.setZValue(z)
            self.scene().addItem(item)
        self._style_cursor()
        self._cursor.hide()
        self._cursor_shadow.hide()
        self._dim = QTimer(self, singleShot=True, interval=DIM_AFTER_MS)
        self._dim.timeout.connect(self._dim_picture)

        self.setBackgroundBrush(QColor(32, 32, 36))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        self.setAcceptDrops(False)  # files dropped here reach the main window

        self.minimap = Minimap(self)
        self.minimap.centerRequested.connect(self._center_on)
        self.minimap.wheeled.connect(self._on_minimap_wheel)
        self.horizontalScrollBar().valueChanged.connect(self._update_minimap_view)
        self.verticalScrollBar().valueChanged.connect(self._update_minimap_view)

        document.sessionChanged.connect(self._on_session)
        document.frameChanged.connect(self._on_frame)
        document.imageReady.connect(self._on_frame)
        document.labelsChanged.connect(self._on_labels)
        document.regionPainted.connect(self._on_region)
        document.objectsChanged.connect(self._on_objects)
        editor.changed.connect(self._on_editor)

    # ---- model -> view ------------------------------------------------------------------------------
    def _on_session(self) -> None:
        """A video opened (fit it), or the same frames under new engine settings (QA pass 17: the view was
        fitted again, losing the zoom the annotator worked at)."""
        opened = self._doc.opened if self._doc.is_open else None
        same_video, self._opened = opened is not None and opened == self._opened, opened
        h, w = self._doc.frame_size
        self._overlay.resize(h, w)
        self._lut = label_lut(self._doc.objects)
        if same_video:
            self._on_frame(self._doc.current_frame)
            return
        self.scene().setSceneRect(QRectF(-w * 0.5, -h * 0.5, w * 2.0, h * 2.0))
        self._fit = True
        self._on_frame(self._doc.current_frame)
        self.fit()

    def _on_frame(self, _frame: int) -> None:
        if not self._doc.is_open:
            return
        h, w = self._doc.frame_size
        if self._doc.picture_pending:  # the picture shown stays (dimmed if the decode takes long) till it comes,
            if self._frame_item.pixmap().size() != QSize(w, h):  # with its mask; another video's: grey, no mask
                self._frame_item.setPixmap(rgb_pixmap(np.full((h, w, 3), 64, np.uint8)))
                self._overlay.hide()
            if not self._dim.isActive() and self._frame_item.opacity() == 1.0:
                self._dim.start()
            return
        self._dim.stop()
        self._frame_item.setOpacity(1.0)
        self._overlay.show()
        rgb = self._doc.image()
        if rgb is None:  # undecodable frame: a grey stand-in keeps the mask visible and editable
            rgb = np.full((h, w, 3), 64, np.uint8)
        pixmap = rgb_pixmap(rgb)
        self._frame_item.setPixmap(pixmap)
        self.minimap.set_thumbnail(pixmap)
        self._render_overlay()

    def _on_labels(self, frame: int) -> None:
        if frame == self._doc.current_frame:
            self._render_overlay()

    def _on_region(self, frame: int, rect: Rect) -> None:
        if frame != self._doc.current_frame:
            return
        self._render_overlay(rect)

    def _on_objects(self) -> None:
        self._lut = label_lut(self._doc.objects)
        self._render_overlay()

    def _on_editor(self) -> None:
        contours = self._editor.overlay_mode is OverlayMode.CONTOURS  # thin lines need full strength
        self._overlay.setOpacity(1.0 if contours else self._editor.opacity)
        self._style_cursor()
        self._render_overlay()

    def _dim_picture(self) -> None:
        self._frame_item.setOpacity(0.35)
        self._overlay.hide()  # the mask shown is the last picture's: dimmed with it, it would read as the new one

    def _render_overlay(self, rect: Rect | None = None) -> None:
        """Re-render the overlay inside `rect` (everything when None) and repaint just that area; while the
        picture is decoded off the GUI thread, the last picture's mask stays (QA pass 34: the new frame's mask
        was drawn over the old frame's picture for the 1.7 s of a 1080p decode)."""
        if not self._doc.is_open or self._overlay.buffer.shape[:2] != self._doc.labels.shape \
                or self._doc.picture_pending:
            return
        mode = self._editor.overlay_mode
        probability = None
        selected = self._editor.selected_object
        if mode is OverlayMode.PROBABILITY and selected is not None:
            obj = self._doc.objects.get(selected)
            if obj is not None and obj.visible:
                probability = self._doc.probability(selected)
        self._contour = self._contour_width()
        target = rect or Rect.full(self._doc.labels.shape)
        if rect is not None and mode is OverlayMode.CONTOURS:  # an edit moves contour pixels up to a line's width
            target = rect.grown(self._contour, self._doc.labels.shape)  # beyond it (wide when zoomed out)
        if rect is None and probability is None and not self._doc.labels.any():
            self._overlay.buffer.fill(0)  # a frame without mask: skip the lookup over every pixel
        else:
            self._overlay.buffer[target.slices()] = render(self._doc.labels, mode, self._lut, target, probability,
                                                           self._contour)
        self._overlay.update(QRectF(target.x0, target.y0, target.width, target.height))

    # ---- zoom and pan -------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """Show the whole frame; the view keeps fitting on resize until the user zooms."""
        self._fit = True
        h, w = self._doc.frame_size
        if w and h:
            self.fitInView(QRectF(0, 0, w, h), Qt.AspectRatioMode.KeepAspectRatio)
        self._zoom_changed()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping `anchor` (a viewport position; default the centre) fixed on screen."""
        # never the opposite way: a frame of a few pixels fits the window beyond MAX_ZOOM, and zooming in
        # there once shrank it (seventh GUI QA pass)
        target = self.zoom * factor
        target = min(target, max(MAX_ZOOM, self.zoom)) if factor > 1 else max(target, min(MIN_ZOOM, self.zoom))
        factor = target / self.zoom
        anchor = anchor if anchor is not None else QPointF(self.viewport().rect().center())
        fixed = self.viewportTransform().inverted()[0].map(anchor)
        last = self._zoom_anchor  # the point the notches before fixed here: scrollbars move in whole screen
        if last is not None and last[0] == anchor and (fixed - last[1]).manhattanLength() * self.zoom <= 2:
            fixed = last[1]  # pixels, and their rounding added up to 26 px at 40x (QA pass 17)
        self._zoom_anchor = (QPointF(anchor), fixed)
        self.scale(factor, factor)
        drift = self.viewportTransform().map(fixed) - anchor
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() + round(drift.x()))
        v.setValue(v.value() + round(drift.y()))
        self._fit = False
        self._zoom_changed()

    def _contour_width(self) -> int:
        """Contour lines about 1.5 screen pixels wide however far the view is zoomed out, one frame pixel in."""
        return max(1, round(1.5 / max(self.zoom, 1e-3)))

    def _zoom_changed(self) -> None:
        if self._editor.overlay_mode is OverlayMode.CONTOURS and self._contour_width() != self._contour:
            self._render_overlay()
        # zoomed in, show crisp pixels (the mask is edited per pixel); zoomed out, a smooth picture
        crisp = self.zoom >= 2
        self._frame_item.setTransformationMode(Qt.TransformationMode.FastTransformation if crisp
                                               else Qt.TransformationMode.SmoothTransformation)
        self._style_cursor()
        self._update_minimap_view()
        self.zoomChanged.emit(self.zoom)

    def _center_on(self, point: QPointF) -> None:
        self.centerOn(point)
        self._fit = False
        self._update_minimap_view()

    def _pan(self, delta: QPointF) -> None:
        self._fit = False
        h, v = self.horizontalScrollBar(), self.verticalScrollBar()
        h.setValue(h.value() - int(delta.x()))
        v.setValue(v.value() - int(delta.y()))

    def _update_minimap_view(self) -> None:
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        h, w = self._doc.frame_size
        frame = QRectF(0, 0, w, h)
        self.minimap.set_view(visible, frame)
        self.minimap.setVisible(bool(w) and not visible.contains(frame))
        self.minimap.move(self.width() - self.minimap.width() - 10, self.height() - self.minimap.height() - 10)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        if self._fit:
            self.fit()
        else:
            self._update_minimap_view()

    _FRAME_KEYS = frozenset({Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Home,
                             Qt.Key.Key_End, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown})

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Keys that step through frames never scroll the picture: where the window's shortcuts did not take
        them (a window not yet active), QGraphicsView scrolled half the frame out of view (QA pass 31)."""
        if event.key() in self._FRAME_KEYS:
            event.ignore()
            return
        super().keyPressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        self._wheel(event.angleDelta(), event.position(), event.modifiers())
        event.accept()

    def _on_minimap_wheel(self, angle: QPoint, _pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        # about the view's centre: the point of the view under the overview is hidden (QA pass 66), and the point
        # the overview shows there is off screen, where an anchor stays
        self._wheel(angle, QPointF(self.viewport().rect().center()), modifiers)

    def _wheel(self, angle: QPoint, pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        """Ctrl+wheel sizes the brush, the wheel zooms about `pos` (in the viewport)."""
        delta = angle.y() or angle.x()
        if delta and modifiers & Qt.KeyboardModifier.ControlModifier:
            (self._editor.grow_brush if delta > 0 else self._editor.shrink_brush)()
        elif delta:
            self.zoom_by(1.0015 ** delta, pos)
        self._move_cursor(pos)

    # ---- painting input -----------------------------------------------------------------------------
    def _to_frame(self, pos: QPointF) -> tuple[float, float]:
        p = self.mapToScene(pos.toPoint())
        return (p.x() - 0.5, p.y() - 0.5)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.pressed.emit()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_down):
            self._pan_from = event.position()
            self._space_panned = self._space_down
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        obj_id = self._editor.selected_object
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) or obj_id is None:
            return
        if self._doc.picture_pending:  # no strokes on another frame's picture
            return
        erase = button == Qt.MouseButton.RightButton or self._editor.tool is Tool.ERASER
        point = self._to_frame(event.position())
        last = self._doc.last_point
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier and last is not None:
            self._doc.begin_stroke(last, obj_id, self._editor.brush_size, erase, self._editor.keep_others)
            self._doc.extend_stroke(point)
        else:
            self._doc.begin_stroke(point, obj_id, self._editor.brush_size, erase, self._editor.keep_others)
        self._painting = True

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if self._pan_from is not None:
            self._pan(pos - self._pan_from)
            self._pan_from = pos
            return
        self._move_cursor(pos)
        if self._painting:
            self._doc.extend_stroke(self._to_frame(pos))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space_down else Qt.CursorShape.CrossCursor)
            return
        if self._painting:
            self._painting = False
            self._doc.end_stroke()

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802
        self._cursor.hide()
        self._cursor_shadow.hide()
        super().leaveEvent(event)

    def _move_cursor(self, pos: QPointF) -> None:
        if not self._doc.is_open:
            return
        x, y = self._to_frame(pos)
        r = self._editor.brush_size / 2.0
        for item in (self._cursor, self._cursor_shadow):
            item.setRect(QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))
            item.show()

    def _style_cursor(self) -> None:
        """White ring over a dark ring, so the brush outline shows on light and dark frames alike."""
        eraser = self._editor.tool is Tool.ERASER
        pen = QPen(QColor(255, 120, 120) if eraser else QColor(255, 255, 255), 1.5)
        pen.setCosmetic(True)
        if eraser:
            pen.setStyle(Qt.PenStyle.DashLine)
        shadow = QPen(QColor(0, 0, 0, 160), 3.5)
        shadow.setCosmetic(True)
        self._cursor.setPen(pen)
        self._cursor_shadow.setPen(shadow)
        rect = self._cursor.rect()
        if not rect.isEmpty():
            r = self._editor.brush_size / 2.0
            c = rect.center()
            for item in (self._cursor, self._cursor_shadow):
                item.setRect(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r))

    # ---- space: tap = play/pause, hold = pan (routed here by `SpaceKey`, wherever the focus is) ----------
    def hold_space(self) -> None:
        if not self._space_down:
            self._space_down, self._space_panned = True, False
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)

    def release_space(self) -> None:
        if not self._space_down:
            return
        self._space_down = False
        self._pan_from = None
        self.viewport().setCursor(Qt.CursorShape.CrossCursor)
        if not self._space_panned:
            self.spaceTapped.emit()
