"""The open video as the annotator edits it: session, objects, current frame, strokes and their undo.

This is the model half of the application: it owns no widget, every change is announced with a Qt signal,
and views only call its methods. Painting happens here, on the label map of the current frame, so the same
code serves mouse strokes, imported masks and tests; the engine sees a frame only when a stroke ends
(`set_annotation`), never half-painted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from stm_core.errors import StmError
from stm_core.io.masks import add_objects, split_annotations
from stm_core.io.packed_masks import PackedMasks
from stm_core.session import AnnotationSession, FrameSnapshot

from .errors import describe
from .objects import Color, ObjectTable, TrackedObject
from .frame_pictures import FramePictures
from .painting import Point, Rect, paint_segment
from .result_ledger import ResultLedger
from .undo import Edit, UndoHistory
from .wording import frame_numbers

@dataclass
class _Stroke:
    """A stroke in progress: the frame's labels before it, and the area it has touched so far."""

    frame: int
    obj_id: int
    diameter: int
    erase: bool
    before: np.ndarray
    last: Point
    protected: tuple[int, ...] = ()  # objects the brush leaves alone: hidden ones, or all others if asked
    rect: Rect | None = None
    result_came: bool = False  # a propagated result for the frame arrived meanwhile (shown after the stroke)
    unmasked: bool = False  # the frame had no mask when the stroke began


class Document(QObject):
    """One open video and everything the annotator did to it."""

    sessionChanged = Signal()
    """A video was opened or its session rebuilt: views redraw everything."""
    frameChanged = Signal(int)
    labelsChanged = Signal(int)
    """The whole label map of this frame changed (result arrived, undo, import)."""
    regionPainted = Signal(int, object)
    """A stroke changed only this `Rect` of this frame's label map."""
    maskStored = Signal(int, bool)
    """The engine's mask for this frame changed; True when the user did it (save at once)."""
    annotationsChanged = Signal()
    resultsChanged = Signal()
    objectsChanged = Signal()
    historyChanged = Signal()
    frameUnreadable = Signal(str, str)
    """A frame could not be decoded: (title, message), reported once per frame."""
    imageReady = Signal(int)
    """The current frame's picture, decoded off the GUI thread, is there: `image()` gives it at once."""
    note = Signal(str)
    """Something the annotator should know about an edit just made, for the status bar."""

    def __init__(self) -> None:
        super().__init__()
        self._session: AnnotationSession | None = None
        self._opened = 0
        self.objects = ObjectTable()
        self._current = 0
        self._labels = np.zeros((1, 1), np.uint8)
        self._ledger = ResultLedger()
        self._history = UndoHistory()
        self._stroke: _Stroke | None = None
        self._last_point: tuple[int, Point] | None = None
        self._unreadable: set[int] = set()
        self._uncertain_jump: int | None = None  # the frame U last went to
        self._pictures = FramePictures()
        self._pictures.ready.connect(self.imageReady)

    # ---- opening ------------------------------------------------------------------------------------
    def load(self, session: AnnotationSession, objects: ObjectTable, frame: int = 0,
             stale: list[int] | None = None, loading: list[int] | None = None,
             loading_uncertainty: dict[int, float] | None = None, result_keys: dict[int, bytes] | None = None,
             judged_key: bytes | None = None, out_of_date: list[int] | None = None) -> None:
        """Show `session` (already holding any saved annotations) with these objects. Saved results count as
        computed from the annotations `judged_key` identifies (default: the present ones), except those of
        `stale` frames (from unknown annotations) and of `result_keys` frames (from the annotations each key
        names: clearing a correction after reopening makes the results from before it current again, where
        QA pass 26 found every frame red). The saved results of `loading` frames are still being read
        (`note_loaded` announces each, `note_loading_done` the end) and have their saved
        `loading_uncertainty` (a save while they load keeps it: QA pass 21 lost it by closing at once).
        `out_of_date`: the frames shown out of date when saved, taken as they are while the annotations are
        those `judged_key` names (QA pass 33: results from before a correction on its far side, current while
        open, came back red: their key differs, but the correction is not next to them)."""
        self._stroke = None
        self._session = session
        self._opened += 1
        self.objects = objects
        self.objects.ensure(set(session.object_ids()))
        self._history.clear()
        self._last_point = None
        self._unreadable.clear()
        self._pictures.forget()
        self._ledger = ResultLedger.reopened(self._has_results(session), session.annotated_frames(),
                                             session.annotation_digest, stale or (), loading or (),
                                             loading_uncertainty, result_keys, judged_key, out_of_date)
        self._uncertain_jump = None
        self._current = int(min(max(frame, 0), session.num_frames - 1))
        self._reload()
        self._fetch_picture()
        self.sessionChanged.emit()
        self.frameChanged.emit(self._current)

    def replace_session(self, session: AnnotationSession) -> None:
        """Swap in a session rebuilt with other engine settings that holds the same masks (and every saved
        result: the caller waited for loading, whose late signals name the old session and are dropped)."""
        self.end_stroke()
        self._session = session
        self._ledger.has_result = self._has_results(session)
        self.note_loading_done()
        self._fetch_picture()
        self.sessionChanged.emit()

    @staticmethod
    def _has_results(session: AnnotationSession) -> np.ndarray:
        return np.array([session.has_result(i) for i in range(session.num_frames)], bool)

    @property
    def session(self) -> AnnotationSession | None:
        return self._session

    @property
    def is_open(self) -> bool:
        return self._session is not None

    @property
    def num_frames(self) -> int:
        return self._session.num_frames if self._session else 0

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._session.frame_size if self._session else (0, 0)

    def frame_name(self, index: int) -> str:
        """The frame's name (a file's stem, or a video frame's number), as masks and the status bar name it."""
        return self._session.frame_names[index] if self._session else ""

    @property
    def fps(self) -> float | None:
        """The video's frame rate, where it has one (a frame folder has none)."""
        return self._session.fps if self._session else None

    @property
    def opened(self) -> int:
        """Counts the videos opened: `sessionChanged` without a change of it is the same frames under other
        engine settings (the view keeps its zoom)."""
        return self._opened

    # ---- navigation ---------------------------------------------------------------------------------
    @property
    def current_frame(self) -> int:
        return self._current

    def seek(self, frame: int) -> None:
        """Go to `frame` (clamped to the video); a stroke in progress is finished first."""
        if not self._session:
            return
        frame = int(min(max(frame, 0), self.num_frames - 1))
        if frame == self._current:
            return
        self.end_stroke()
        self._current = frame
        self._reload()
        self._fetch_picture()
        self.frameChanged.emit(frame)

    @property
    def picture_pending(self) -> bool:
        """Whether the current frame's picture is being decoded off the GUI thread (`imageReady` follows)."""
        return self._pictures.pending(self._session, self._current)

    def _fetch_picture(self) -> None:
        self._pictures.fetch(self._session, self._current)

    def stop_decoding(self) -> None:
        """End the decoder thread (the window closes), after the frame it decodes."""
        self._pictures.close()

    def image(self) -> np.ndarray | None:
        """RGB pixels of the current frame; None if it cannot be decoded (reported once per frame, and
        the frame's mask stays editable: a broken JPEG must not stop the annotator)."""
        assert self._session is not None
        try:
            return self._pictures.picture(self._session, self._current)
        except StmError as exc:
            source = self._session.source_path
            if not source.exists():  # moved or deleted while open: said once, not for every frame (QA pass 14)
                if -1 not in self._unreadable:
                    self._unreadable.add(-1)
                    self.frameUnreadable.emit("Video not found", f"{source} is gone: the video was moved, "
                                              "renamed or deleted while open. Your work is saved; open the video "
                                              "from where it is now, and its work is found again.")
            elif self._current not in self._unreadable:
                self._unreadable.add(self._current)
                self.frameUnreadable.emit(*describe(exc))
            return None

    @property
    def labels(self) -> np.ndarray:
        """Label map of the current frame, including a stroke in progress; read-only for views."""
        return self._labels

    def probability(self, obj_id: int) -> np.ndarray | None:
        """Soft map of `obj_id` on the current frame; while painting, the hard mask being painted."""
        if self._session is None:
            return None
        if self._stroke is not None:
            return (self._labels == obj_id).astype(np.uint8) * 255
        return self._session.probability(self._current, obj_id)

    def is_annotated(self, frame: int | None = None) -> bool:
        return bool(self._session and self._session.is_annotated(self._current if frame is None else frame))

    def annotated_frames(self) -> list[int]:
        return self._session.annotated_frames() if self._session else []

    def result_frames(self) -> np.ndarray:
        """Boolean per frame: has a mask (annotated or propagated)."""
        return self._ledger.has_result

    def stale_frames(self) -> np.ndarray:
        """Boolean per frame: its propagated result was computed from other annotations than the present
        ones, and a neighbouring annotated frame changed since (it sits between that frame and the next
        annotated one) or the run that made it started before a correction: it should be propagated again."""
        return self._ledger.stale

    def is_preview(self, frame: int) -> bool:
        """The frame shows a preview made before the engine adapted to the video: out of date like any red
        frame, but the run going on replaces it (QA: the frame label called a fresh preview "out of date")."""
        return self._ledger.is_preview(frame) and not self.is_annotated(frame)

    def result_keys(self) -> list[bytes | None]:
        """Per frame, the `annotation_key()` its result was computed from (None: no result, or not known)."""
        return self._ledger.result_keys

    def annotation_key(self) -> bytes:
        """Identifies the present annotations by content: a propagation run tags its results with the key it
        started from, so undoing a correction makes the results from before it current again."""
        return self._ledger.key

    def _update_key(self, frames: list[int]) -> None:
        """Take the annotation digests of `frames` (annotated or not any more) from the session."""
        assert self._session is not None
        self._ledger.take_digests(frames, self._session.annotation_digest)

    def uncertainty(self) -> np.ndarray:
        """Per frame (NaN: no result), saved values standing in for results still being read."""
        if self._session is None:
            return np.zeros(0)
        return self._ledger.with_loading_uncertainty(self._session.uncertainty())

    def result_uncertainty(self) -> np.ndarray:
        """`uncertainty()`, with an annotated frame's the uncertainty of the result under its annotation (NaN:
        none): saved, so that `U` ranks that result again once the annotation is cleared after reopening."""
        unc = self.uncertainty()
        for frame in self.annotated_frames():
            result = self._session.snapshot(frame).result  # type: ignore[union-attr]
            unc[frame] = result.uncertainty if result is not None else \
                self._ledger.loading_uncertainty.get(frame, float("nan")) if frame in self._ledger.loading \
                else float("nan")
        return unc

    def next_uncertain(self) -> tuple[int, int, int] | None:
        """(frame, its rank from 1, frames ranked): the most uncertain propagated frame; pressed again on the frame
        it went to, the next one down the ranking (QA pass 21: from any frame reached by scrubbing it went to the
        next one below that frame), after the last the first again."""
        unc = self.uncertainty()
        ranked = [int(i) for i in np.argsort(-np.nan_to_num(unc, nan=-1.0), kind="stable")
                  if np.isfinite(unc[i]) and unc[i] > 0]
        if not ranked:
            return None
        again = self._current in ranked and self._current in (self._uncertain_jump, ranked[0])  # QA pass 22: U
        # did nothing on the most uncertain frame reached by scrubbing
        rank = (ranked.index(self._current) + 1) % len(ranked) if again else 0
        self._uncertain_jump = ranked[rank]
        return self._uncertain_jump, rank + 1, len(ranked)

    def object_areas(self) -> np.ndarray:
        """Pixels of each object (in the list's order) per frame, int64 [frames, objects]; -1: no mask."""
        ids = [o.id for o in self.objects]
        return self._session.object_areas(ids) if self._session else np.zeros((0, len(ids)), np.int64)

    def next_lost(self) -> tuple[int, list[TrackedObject]] | None:
        """The next frame after the current one (wrapping around) where objects that the frame's nearest
        earlier mask shows are gone, and those objects: where tracking most often fails (or they leave). Out of
        date frames are left out: their masks predate a correction (QA pass 54: an object painted on a frame
        after a run was "lost" on the next, which no run had sought it on)."""
        objects, areas = list(self.objects), self.object_areas()
        current = (areas >= 0).all(axis=1) & ~self.stale_frames() if objects else np.zeros(0, bool)
        masked = np.flatnonzero(current)
        gone = (areas[masked[:-1]] > 0) & (areas[masked[1:]] == 0)
        rows = np.flatnonzero(gone.any(axis=1))
        if not len(rows):
            return None
        later = rows[masked[1:][rows] > self._current]
        row = int(later[0] if len(later) else rows[0])
        return int(masked[row + 1]), [o for o, lost in zip(objects, gone[row]) if lost]

    def neighbour_annotated(self, step: int) -> int | None:
        """The nearest annotated frame before (step -1) or after (step +1) the current one."""
        frames = [f for f in self.annotated_frames() if (f - self._current) * step > 0]
        if not frames:
            return None
        return max(frames) if step < 0 else min(frames)

    def _reload(self) -> None:
        assert self._session is not None
        labels = self._session.labels(self._current)
        self._labels = labels if labels is not None else np.zeros(self._session.frame_size, np.uint8)

    # ---- painting -----------------------------------------------------------------------------------
    @property
    def last_point(self) -> Point | None:
        """Where the last stroke on this frame ended (Shift+click draws a straight line from there)."""
        if self._last_point and self._last_point[0] == self._current:
            return self._last_point[1]
        return None

    def begin_stroke(self, point: Point, obj_id: int, diameter: int, erase: bool, keep_others: bool = False) -> None:
        """Start painting `obj_id` (or erasing it) on the current frame with a dab at `point`. The brush paints
        over other objects unless they are hidden, or `keep_others` asks it to paint only the background."""
        if self._session is None:
            return
        self.end_stroke()
        self.set_object_visible(obj_id, True)  # an object is edited in sight (sixth GUI QA pass: a hidden
        # object took strokes with no trace on screen)
        protected = tuple(o.id for o in self.objects if o.id != obj_id and (keep_others or not o.visible))
        self._stroke = _Stroke(self._current, obj_id, diameter, erase, self._labels.copy(), point, protected,
                               unmasked=self._session.labels(self._current) is None)
        self._paint(point, point)

    def extend_stroke(self, point: Point) -> None:
        if self._stroke is not None:
            self._paint(self._stroke.last, point)
            self._stroke.last = point

    def end_stroke(self) -> None:
        """Finish the stroke: the frame becomes an annotated frame and the stroke one undo step."""
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            return
        if stroke.rect is not None:
            self._last_point = (stroke.frame, stroke.last)
        unchanged = stroke.rect is None or np.array_equal(stroke.before[stroke.rect.slices()],
                                                          self._labels[stroke.rect.slices()])
        # a stroke over a propagated result that changes none of its pixels still makes the frame annotated, as
        # the docs promise of every stroke: painting over a good result is how it is kept (QA pass 68)
        confirms = stroke.rect is not None and not stroke.unmasked and not stroke.result_came \
            and not self.is_annotated()
        if unchanged and not confirms:
            if stroke.result_came and not self.is_annotated():  # QA pass 17: the result stayed hidden, and the
                self._reload()  # next stroke annotated the frame from the blank view, wiping the result
                self.labelsChanged.emit(self._current)
            elif stroke.rect is not None:  # drawn as the hard mask being painted: the soft map is back
                self.regionPainted.emit(stroke.frame, stroke.rect)
            return
        absent = [o for o in self._session.object_ids() if o not in self._labels] if stroke.unmasked else []
        self._commit(Edit.capture(stroke.before, self._labels, stroke.rect, self.is_annotated()))
        if absent:  # QA pass 17: painted ahead of the run, the frame held the new object alone, for good
            names = ", ".join(o.name for o in self.objects if o.id in absent)
            one = len(absent) == 1
            self.note.emit(f"Frame {self._current + 1} had no mask yet: it is now annotated with only what you "
                           f"painted, so {names} {'counts' if one else 'count'} as absent there. To keep "
                           f"{'it' if one else 'them'}, undo the stroke, propagate to this frame first, then paint.")

    def _paint(self, p0: Point, p1: Point) -> None:
        stroke = self._stroke
        assert stroke is not None
        rect = paint_segment(self._labels, p0, p1, stroke.diameter, stroke.obj_id, stroke.erase, stroke.protected)
        if rect is not None:
            stroke.rect = rect.union(stroke.rect)
            self.regionPainted.emit(stroke.frame, rect)

    def replace_labels(self, labels: np.ndarray) -> None:
        """Replace the current frame's mask as one undoable edit (an imported mask, erasing an object)."""
        if self._session is None:
            return
        self.end_stroke()
        if labels.shape != self._labels.shape:
            raise ValueError(f"mask is {labels.shape[1]}x{labels.shape[0]}, frames are "
                             f"{self._labels.shape[1]}x{self._labels.shape[0]}")
        change = Edit.of_change(self._labels, labels.astype(np.uint8), self.is_annotated())
        if change is None:
            return
        self._labels = labels.astype(np.uint8, copy=True)
        self.objects.ensure(set(np.unique(labels).tolist()))
        self._commit(change)
        self.objectsChanged.emit()
        self.labelsChanged.emit(self._current)

    def import_frame_mask(self, labels: np.ndarray) -> None:
        """An imported mask for the current frame, as one undoable edit: it replaces the frame's mask, or adds
        its objects to it when they are all new (the rule of `import_masks`; on a frame with no mask yet, or an
        out-of-date one, they wait there for a forward run, as the folder import has them: QA pass 94 found the
        out-of-date mask made the frame's annotation, an object it had lost marked absent there for good)."""
        if self._session is not None and split_annotations({0: labels}, self._session.object_ids())[1]:
            if not self._session.has_result(self._current) or self._ledger.stale[self._current]:
                self.import_masks({self._current: labels}, as_annotations=True)
                return
            labels = add_objects(self._labels, labels)
        self.replace_labels(labels)

    def erase_object_on_frame(self, obj_id: int) -> None:
        self.set_object_visible(obj_id, True)
        labels = self._labels.copy()
        labels[labels == obj_id] = 0
        self.replace_labels(labels)

    def clear_annotation(self) -> None:
        """Make the current frame an ordinary frame again, discarding its painted mask and that mask's undo
        history: it shows its propagated result from before it was annotated, if it had one, and the next
        propagation runs over it like any other frame (a frame annotated by mistake, or left empty by removing
        every object, would otherwise stop every run there)."""
        if self._session is None or not self.is_annotated():
            return
        self.end_stroke()
        self._history.forget(self._current)
        self._make_ordinary()
        self._update_key([self._current])
        self._mark_stale_around(self._current)
        self.maskStored.emit(self._current, True)  # saved at once: after the stale marks, so they are saved too
        self.historyChanged.emit()

    def _commit(self, edit: Edit) -> None:
        assert self._session is not None
        self._session.set_annotation(self._current, self._labels)
        self._update_key([self._current])
        self._ledger.has_result[self._current] = True
        self._history.push(self._current, edit)
        if not edit.was_annotated:  # the whole frame's soft maps are now the annotation's (QA pass 21: the
            self.annotationsChanged.emit()  # probability overlay kept the old ones outside the stroke)
            self.labelsChanged.emit(self._current)
        self._mark_stale_around(self._current)
        self.maskStored.emit(self._current, True)  # saved at once: after the stale marks, so they are saved too
        self.historyChanged.emit()

    def _mark_stale_around(self, frame: int) -> None:
        """Results on both sides of an edited frame, up to the next annotated frames, are out of date unless
        they were computed from the annotations as they are now (after an undo, say)."""
        self._restore_replaced()
        self._ledger.mark_around(frame, set(self.annotated_frames()))
        self.resultsChanged.emit()

    def _restore_replaced(self) -> None:
        """Frames whose preview replaced a result computed from the annotations as they are now (the correction
        the preview came from was undone: QA passes 22b and 23 found them red, the old results lost) get that
        result back."""
        assert self._session is not None
        for frame in self._ledger.replaced_current(set(self.annotated_frames())):
            if self._session.restore_replaced(frame):
                self._ledger.mark_current([frame])  # its result was made from the annotations as they are
                if frame == self._current and self._stroke is None:
                    self._reload()
                    self.labelsChanged.emit(frame)
                self.maskStored.emit(frame, False)

    # ---- undo ---------------------------------------------------------------------------------------
    def can_undo(self) -> bool:
        return self._history.can_undo(self._current)

    def can_redo(self) -> bool:
        return self._history.can_redo(self._current)

    def undo(self) -> None:
        """Undo the last edit on the current frame; undoing its first edit makes it un-annotated again."""
        self.end_stroke()
        edit = self._history.take_undo(self._current)
        if edit is None or self._session is None:
            return
        edit.undo_into(self._labels)
        if edit.was_annotated:
            self._session.set_annotation(self._current, self._labels)
        else:  # the frame's mask is again what it was before its first edit: its old result, or none
            self._make_ordinary()
        self._after_history_step(edit)

    def _make_ordinary(self) -> None:
        """The current frame is no longer annotated: its mask is its result from before, or none."""
        assert self._session is not None
        self._session.remove_annotation(self._current)
        self._ledger.has_result[self._current] = self._session.has_result(self._current)
        self._reload()
        self.labelsChanged.emit(self._current)
        self.annotationsChanged.emit()

    def redo(self) -> None:
        self.end_stroke()
        edit = self._history.take_redo(self._current)
        if edit is None or self._session is None:
            return
        edit.redo_into(self._labels)
        self._session.set_annotation(self._current, self._labels)
        if not edit.was_annotated:
            self.annotationsChanged.emit()
            self.labelsChanged.emit(self._current)
        self._after_history_step(edit)

    def _after_history_step(self, edit: Edit) -> None:
        for obj_id in sorted(edit.objects()):  # QA pass 48: an undo after H changed a mask no one could see
            if (obj := self.objects.get(obj_id)) is not None and not obj.visible:
                self.set_object_visible(obj_id, True)
                self.note.emit(f"“{obj.name}” was hidden: it is shown again, as this changed its mask")
        self._update_key([self._current])
        self._ledger.has_result[self._current] |= self.is_annotated()
        self.regionPainted.emit(self._current, edit.rect)
        self._mark_stale_around(self._current)
        self.maskStored.emit(self._current, True)  # saved at once: after the stale marks, so they are saved too
        self.historyChanged.emit()

    # ---- results and imports ------------------------------------------------------------------------
    def note_result(self, frame: int, key: bytes, preview: bool = False) -> None:
        """Propagation stored a new result for `frame`, computed from the annotations `key` identifies (the
        run's `annotation_key()` when it started): refresh it if it is on screen. It is stale if the annotations
        changed since the run started. A preview (shown while the engine adapts) counts as stale until the
        adapted pass replaces it, so a cancelled run leaves it marked for propagating again."""
        if self._ledger.note_result(frame, key, preview, self.is_annotated(frame)):
            self._restore_replaced()
        if not self.is_annotated(frame) and self._history.can_redo(frame):
            # strokes undone there would be redone onto the mask they were painted on, now replaced: a redo
            # pasted that old mask's rectangle over the new result (QA pass 16)
            self._history.forget(frame)
            self.historyChanged.emit()
        if frame == self._current and not self.is_annotated(frame):
            if self._stroke is None:
                self._reload()
                self.labelsChanged.emit(frame)
            else:  # painted on what was shown: a stroke that changes nothing shows the result when it ends
                self._stroke.result_came = True
        self.maskStored.emit(frame, False)
        self.resultsChanged.emit()

    def note_entered(self, frame: int, run_key: bytes) -> bytes:
        """A propagation reached `frame`, where imported objects enter: the engine made it an annotated frame
        of the result there plus them. Returns the key the run's later results count under: the run's own
        results stay current, since the objects it added are part of what it propagates from then on."""
        assert self._session is not None
        self._history.forget(frame)
        run_key = self._ledger.note_entered(frame, run_key, self._session.annotation_digest)
        if frame == self._current and self._stroke is None:
            self._reload()
            self.labelsChanged.emit(frame)
        self.maskStored.emit(frame, True)
        self.annotationsChanged.emit()
        self.resultsChanged.emit()
        return run_key

    def entering_frames(self) -> list[int]:
        """Frames where imported objects enter once a forward propagation reaches them."""
        return self._session.entering_frames() if self._session else []

    def note_loaded(self, frame: int, objects: Iterable[int] = ()) -> None:
        """A saved result was read back from the workspace: show it, but do not save it again. `objects` it shows
        that the table lacks are added (QA pass 95: after a torn state file, objects only results held were
        nowhere in the list); not those removed meanwhile (the loader's notes may come after a removal)."""
        if self.objects.ensure(set(objects) - set(self.objects.retired())):
            self.objectsChanged.emit()
        self._ledger.note_loaded(frame)
        if frame == self._current and self._stroke is None and not self.is_annotated(frame):
            self._reload()
            self.labelsChanged.emit(frame)
        self.resultsChanged.emit()

    def resave(self, frames: Iterable[int]) -> None:
        """Have these frames' masks saved again: their saved files still hold pixels of removed objects, left out
        as they were read. Once rewritten, a removed object's id can be given again without its old pixels coming
        back with it (QA pass 90)."""
        for frame in frames:
            self.maskStored.emit(frame, False)

    def loading_frames(self) -> list[int]:
        """Frames whose saved result has not been read back yet."""
        return sorted(self._ledger.loading)

    def note_loading_done(self) -> None:
        """Every saved result has been read: a frame whose file was unreadable has no result to be stale."""
        self._ledger.loading_done()
        self.resultsChanged.emit()

    def annotations_replaced_by(self, masks: Mapping[int, np.ndarray]) -> list[int]:
        """Annotated frames whose painted mask `import_masks(masks, as_annotations=True)` would change (masks
        that only add new objects change no painted pixel)."""
        if self._session is None:
            return []
        complete, _ = split_annotations(masks, self._session.object_ids())
        return sorted(i for i, labels in complete.items() if (painted := self._session.snapshot(i).annotation)
                      is not None and not np.array_equal(painted, labels))

    def import_masks(self, masks: Mapping[int, np.ndarray], as_annotations: bool, entering: Iterable[int] = (),
                     progress: Callable[[int, int], None] | None = None) -> list[int]:
        """Put whole-frame masks into the session, as annotated frames (the results around them are then out
        of date) or as plain results (annotated frames keep their annotation). Returns the frames changed;
        `progress(done, total)` after each.

        As annotated frames, a mask that shows only objects that are new (Cutie/XMem masks for objects that
        enter mid-video), or one of the `entering` frames, adds them to the frame's present mask instead of
        erasing the other objects there; on a frame with no mask yet, they join when a forward propagation
        reaches it (`entering_frames`)."""
        assert self._session is not None
        self.end_stroke()
        packed = masks if isinstance(masks, PackedMasks) else PackedMasks(masks.items())  # a long video's fit
        # an annotated frame's mask replaced by an import is one more undoable edit there (QA pass 12: imported
        # masks wiped painted objects with no way back); other frames' history starts afresh. Each painted mask
        # is read when its frame's turn comes: all at once held 1.6 GB for 800 annotated 1080p frames.
        painted: dict[int, FrameSnapshot] = {}
        if as_annotations:
            complete, adding = split_annotations(packed, self._session.object_ids())
            for index in set(entering) & set(complete):
                adding[index] = complete.pop(index)
            painted = {i: self._session.snapshot(i) for i in adding}  # before the new objects join
            for index, labels in adding.items():  # joined now where the frame has a mask, else when reached,
                # as where that mask is out of date (QA pass 64: joined, the stale mask became an annotation)
                if not self._session.add_entering(index, labels, wait=bool(self._ledger.stale[index])):
                    self._history.forget(index)  # no annotation there (add_entering would have joined it)
                    self.objects.ensure(adding.objects(index))
                    self.maskStored.emit(index, False)
            packed = complete
            for index in adding:
                if self._session.is_annotated(index):
                    packed[index] = self._session.annotation(index)
        else:
            packed = packed.subset(i for i in packed if not self._session.is_annotated(i))
        for done, (index, labels) in enumerate(packed.items(), 1):
            before = painted.pop(index).annotation if index in painted else \
                self._session.snapshot(index).annotation if as_annotations else None
            if as_annotations:
                self._session.set_annotation(index, labels)
            else:
                self._session.set_result(index, labels)
            self._ledger.has_result[index] = True
            change = Edit.of_change(before, labels, True) if before is not None else None
            if before is None:
                self._history.forget(index)
            elif change is not None:
                self._history.push(index, change)
            self.objects.ensure(packed.objects(index))
            self.maskStored.emit(index, False)
            if progress is not None:
                progress(done, len(packed))
        if as_annotations:
            self._update_key(list(packed))
            for index in packed:
                self._mark_stale_around(index)
        else:
            self._ledger.mark_current(packed)
        self._reload()
        self.objectsChanged.emit()
        self.annotationsChanged.emit()
        self.resultsChanged.emit()
        self.labelsChanged.emit(self._current)
        self.historyChanged.emit()
        return sorted(packed)

    # ---- objects ------------------------------------------------------------------------------------
    def add_object(self, name: str | None = None, obj_id: int | None = None,
                   color: Color | None = None) -> TrackedObject:
        """Add an object (by default with the smallest free id and its palette colour)."""
        obj = self.objects.add(obj_id, name, color)
        self.objectsChanged.emit()
        return obj

    def unannotated_by_removing(self, obj_id: int) -> list[int]:
        """The annotated frames removing the object makes ordinary frames (nothing painted left there)."""
        return self._session.unannotated_by_removing(obj_id) if self._session is not None else []

    def remove_object(self, obj_id: int) -> None:
        """Delete an object everywhere (cannot be undone: the frames' histories are cleared)."""
        self.end_stroke()
        self.objects.remove(obj_id)
        if self._session is not None:
            annotated = self.annotated_frames()
            ordinary = self._session.remove_object(obj_id)
            self._ledger.before_preview.clear()  # the session let the results previews replaced go
            old = self._ledger.key  # results lose the object as the annotations do: as current as they were
            self._update_key(annotated)
            self._ledger.carry_to_key(old)
            for frame in ordinary:  # nothing painted is left there: an ordinary frame again
                self._ledger.has_result[frame] = self._session.has_result(frame)
            for frame in ordinary:  # results its annotation outdated may be current again
                self._mark_stale_around(frame)
            self._ledger.current_again(set(self.annotated_frames()))  # so are those made from them as they are
            self._history.clear()
            self._reload()
            for frame in sorted(set(np.flatnonzero(self._ledger.has_result).tolist()) | set(ordinary)):
                self.maskStored.emit(int(frame), False)
            if ordinary:
                self.note.emit(f"Frame{'s' if len(ordinary) > 1 else ''} {frame_numbers(ordinary)} "
                               f"{'are' if len(ordinary) > 1 else 'is'} no longer annotated: nothing painted "
                               "was left there once the object was removed")
            self.labelsChanged.emit(self._current)
            self.annotationsChanged.emit()
            self.resultsChanged.emit()
            self.historyChanged.emit()
        self.objectsChanged.emit()

    def rename_object(self, obj_id: int, name: str) -> None:
        """Rename an object; an empty name is refused, and the views are told so they show the old one again."""
        obj = self.objects.get(obj_id)
        if obj is not None and obj.name != name.strip():
            if name.strip():
                obj.name = name.strip()
            self.objectsChanged.emit()

    def set_object_color(self, obj_id: int, color: Color) -> None:
        obj = self.objects.get(obj_id)
        if obj is not None and obj.color != color:
            obj.color = color
            self.objectsChanged.emit()

    def set_object_visible(self, obj_id: int, visible: bool) -> None:
        obj = self.objects.get(obj_id)
        if obj is not None and obj.visible != visible:
            obj.visible = visible
            self.objectsChanged.emit()
