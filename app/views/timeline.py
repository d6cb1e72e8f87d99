"""The timeline under the frame: where masks exist, which frames were annotated, how uncertain each
propagated frame is, a lane per object showing where it is found (a gap: lost, or gone from view), and the
current frame; click or drag anywhere on it to seek."""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QToolTip, QWidget

from ..document import Document
from ..objects import TrackedObject
from ..shortcuts import KeyMap, hint, keymap

REFRESH_MS = 250
ANNOTATED_COLOR = (80, 220, 120)
RESULT_COLOR = (90, 140, 230, 110)
STALE_COLOR = (255, 80, 80)
UNCERTAINTY_COLOR = (255, 170, 60)
BASE_HEIGHT, AXIS_HEIGHT, BASE_TOP = 104, 24, 1.25  # pixels of the plot without lanes; its y range is 0..BASE_TOP
LANE_PX, MAX_LANES = 6, 12  # the timeline grows by a lane's pixels for up to MAX_LANES objects, then lanes thin
RESERVED_LANES = 4
"""Lanes the timeline has room for from the start: adding one of the first objects leaves the picture where it is
(QA pass 88: each new object's lane shrank the canvas, and the picture moved under the brush)."""


def legend(keys: KeyMap) -> str:
    """The timeline's tooltip, naming the user's keys (QA pass 107: it said U and L after they were changed)."""
    return ("Blue (bottom): frames with masks · red hatching (bottom): out of date, a quick preview while the network "
            "adapts or masks from before a correction (propagate again) · orange: uncertainty "
            f"({hint(keys, 'frame.uncertain')} jumps to the worst) · green: annotated frames · hollow green: imported "
            "objects enter there (a forward run adds them) · top lanes, one per object in its colour: where it has "
            f"pixels ({hint(keys, 'frame.lost')} jumps to the next frame where one is lost; hover over a lane to name "
            "its object) · click or drag to seek")


def lane_image(objects: list[TrackedObject], areas: np.ndarray) -> np.ndarray:
    """RGBA [frames, rows] for pyqtgraph (x first, rows upward): per object, top down, LANE_PX - 1 rows in
    its colour where it has pixels (fainter while hidden) and a clear row between lanes."""
    n, k = areas.shape
    lanes = np.zeros((n, k, 4), np.uint8)
    lanes[..., :3] = np.array([o.color for o in objects], np.uint8).reshape(1, k, 3)
    alpha = np.array([230 if o.visible else 90 for o in objects], np.uint8)
    lanes[..., 3] = np.where(areas > 0, alpha[None, :], 0)
    rows = np.concatenate([np.repeat(lanes[:, :, None], LANE_PX - 1, axis=2),
                           np.zeros((n, k, 1, 4), np.uint8)], axis=2)
    return np.ascontiguousarray(rows.reshape(n, k * LANE_PX, 4)[:, ::-1])


def relative_uncertainty(unc: np.ndarray, annotated: list[int]) -> np.ndarray:
    """Uncertainty scaled to 0..1 over the propagated frames (annotated frames and frames without a result
    are NaN, i.e. gaps), so the worst frames stand out whatever the absolute level."""
    out = unc.astype(float).copy()
    out[annotated] = np.nan
    finite = np.isfinite(out)
    if not finite.any():
        return out
    low, high = out[finite].min(), out[finite].max()
    return (out - low) / (high - low) if high > low else np.where(finite, 0.5, np.nan)


class _SeekViewBox(pg.ViewBox):
    """A view box that turns clicks and drags into seek requests instead of panning the plot."""

    seek = Signal(float)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph override)
        ev.accept()
        self.seek.emit(self.mapSceneToView(ev.scenePos()).x())

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        ev.accept()
        self.seek.emit(self.mapSceneToView(ev.scenePos()).x())

    def wheelEvent(self, ev, axis=None) -> None:  # noqa: N802
        ev.ignore()


class _FrameNumberAxis(pg.AxisItem):
    """Frame numbers counted from 1, as the status bar and every message count them; ticks on whole frames."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 (pyqtgraph override)
        levels = super().tickValues(minVal + 1, maxVal + 1, size)
        whole = []
        for spacing, values in levels:
            if spacing >= 1:
                whole.append((spacing, [v - 1 for v in values if float(v).is_integer() and v >= 1]))
        if not whole:  # a few frames: pyqtgraph would tick halves and tenths
            whole.append((1.0, [float(v) for v in range(max(int(np.ceil(minVal)), 0), int(np.floor(maxVal)) + 1)]))
        return whole

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph override)
        return [str(int(round(v)) + 1) for v in values]


class TimelineView(pg.PlotWidget):
    """Redraws at most four times a second however fast results arrive."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        self._box = _SeekViewBox()
        super().__init__(parent, viewBox=self._box, background=(28, 28, 32),
                         axisItems={"bottom": _FrameNumberAxis("bottom")})
        self._doc = document
        self.setFixedHeight(BASE_HEIGHT)
        self.setMenuEnabled(False)
        self.hideButtons()
        self._box.setMouseEnabled(x=False, y=False)
        self.getPlotItem().hideAxis("left")
        self.getPlotItem().getAxis("bottom").setHeight(AXIS_HEIGHT)
        self.getPlotItem().setContentsMargins(0, 0, 0, 0)
        self._box.setYRange(0, BASE_TOP, padding=0)
        self.lanes = pg.ImageItem()
        self._drawn: list[int] = []  # the objects' ids, top down, of the lanes drawn
        self._results = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=None, brush=pg.mkBrush(*RESULT_COLOR))
        # hatched, so the out-of-date marks never read as a lane of a dark red object (DAVIS object 1)
        self._stale = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=None,
                                      brush=QBrush(QColor(*STALE_COLOR), Qt.BrushStyle.BDiagPattern))
        self._curve = pg.PlotDataItem(pen=pg.mkPen(UNCERTAINTY_COLOR, width=1.5), connect="finite")
        # a value with no neighbour draws no line: a dot instead (QA pass 54: one frame between two annotated
        # frames had its uncertainty, which U went to, and nothing on the timeline)
        self._lone = pg.ScatterPlotItem(symbol="o", size=5, pen=pg.mkPen(None), brush=pg.mkBrush(UNCERTAINTY_COLOR))
        self._annotated = pg.ScatterPlotItem(symbol="t", size=11, pen=pg.mkPen(None),
                                             brush=pg.mkBrush(*ANNOTATED_COLOR))
        # hollow: imported objects enter there and join the frame's mask when a forward run reaches it
        self.entering = pg.ScatterPlotItem(symbol="t", size=11, pen=pg.mkPen(ANNOTATED_COLOR, width=1.5),
                                           brush=pg.mkBrush(None))
        self._cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((255, 255, 255), width=2))
        for item in (self.lanes, self._results, self._stale, self._curve, self._lone, self._annotated,
                     self.entering, self._cursor):
            self.addItem(item)
        self.lanes.setZValue(0)
        self._results.setZValue(0)
        self._stale.setZValue(0.5)
        self._curve.setZValue(1)
        self._lone.setZValue(1)
        self._annotated.setZValue(2)
        self.entering.setZValue(2)
        self._cursor.setZValue(3)
        self.show_keys(keymap())

        self._timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._box.seek.connect(lambda x: document.seek(int(round(x))))
        document.sessionChanged.connect(self._on_session)
        document.frameChanged.connect(self._on_frame)
        for signal in (document.resultsChanged, document.annotationsChanged, document.objectsChanged):
            signal.connect(self.schedule_refresh)

    def show_keys(self, keys: KeyMap) -> None:
        self.setToolTip(legend(keys))

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        """Over an object's lane the tooltip names the object and what the lane shows at that frame (QA pass 102:
        with many objects the lanes are a few pixels high, and nothing said which was which)."""
        if event.type() == QEvent.Type.ToolTip:  # the pixel's centre, as the lane image is drawn (QA pass 103)
            centre = self.mapToScene(event.pos()) + QPointF(0.5, 0.5)
            note = self.lane_note(self._box.mapSceneToView(centre))
            # as rich text, escaped: a name such as "<b>x</b>" was drawn bold, and "&" must stay "&" (QA pass 104)
            QToolTip.showText(event.globalPos(), f"<p>{html.escape(note)}</p>" if note else self.toolTip(), self)
            return True
        return super().viewportEvent(event)

    def lane_note(self, point: QPointF) -> str | None:
        """What the object lane under `point` (in plot coordinates: x frames, y upward) shows; None off the lanes."""
        drawn, n = self._drawn, self._doc.num_frames  # the lanes as drawn: objects added since have none yet
        top = self.lanes.mapRectToView(self.lanes.boundingRect()) if self.lanes.image is not None else None
        frame = int(round(point.x()))
        if not drawn or top is None or not 0 <= frame < n or not top.top() <= point.y() <= top.bottom():
            return None
        row = min(max(int((top.bottom() - point.y()) / top.height() * len(drawn)), 0), len(drawn) - 1)  # top down
        obj = self._doc.objects.get(drawn[row])
        if obj is None:  # removed since
            return None
        area = int(self._doc.object_areas()[frame, list(self._doc.objects).index(obj)])
        where = "no mask yet" if area < 0 else "absent" if area == 0 else f"{area:,} pixels"
        return f"{obj.name} (object {obj.id}) on frame {frame + 1}: {where}"

    def _on_session(self) -> None:
        n = self._doc.num_frames
        self._box.setXRange(-0.5, max(n - 0.5, 0.5), padding=0.01)
        self.refresh()
        self._on_frame(self._doc.current_frame)

    def _on_frame(self, frame: int) -> None:
        self._cursor.setValue(frame)

    def schedule_refresh(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        n = self._doc.num_frames
        if n == 0:
            return
        edges = np.arange(n + 1, dtype=float) - 0.5
        self._results.setData(edges, self._doc.result_frames().astype(float) * 0.12)
        self._stale.setData(edges, self._doc.stale_frames().astype(float) * 0.12)
        annotated = self._doc.annotated_frames()
        curve = 0.15 + 0.8 * relative_uncertainty(self._doc.uncertainty(), annotated)
        self._curve.setData(np.arange(n, dtype=float), curve)
        known = np.pad(np.isfinite(curve), 1)
        lone = np.flatnonzero(known[1:-1] & ~known[:-2] & ~known[2:])
        self._lone.setData(lone.astype(float), curve[lone])
        self._annotated.setData(np.asarray(annotated, float), np.full(len(annotated), 1.12))
        entering = self._doc.entering_frames()
        self.entering.setData(np.asarray(entering, float), np.full(len(entering), 1.12))
        self._draw_lanes(list(self._doc.objects), self._doc.object_areas())

    def _draw_lanes(self, objects: list[TrackedObject], areas: np.ndarray) -> None:
        """The object lanes above the plot, each LANE_PX high; the widget grows past RESERVED_LANES objects (up to
        MAX_LANES, then the lanes thin)."""
        shown = min(len(objects), MAX_LANES)
        grown = max(shown, RESERVED_LANES) * LANE_PX
        self.setFixedHeight(BASE_HEIGHT + grown)
        per_px = BASE_TOP / (BASE_HEIGHT - AXIS_HEIGHT)  # the plot's scale stays as it was
        self._box.setYRange(0, BASE_TOP + grown * per_px, padding=0)
        self._drawn = [o.id for o in objects] if len(areas) else []
        if not objects or not len(areas):
            self.lanes.clear()
            return
        self.lanes.setImage(lane_image(objects, areas), autoLevels=False, levels=(0, 255))
        self.lanes.setRect(QRectF(-0.5, BASE_TOP, len(areas), shown * LANE_PX * per_px))
