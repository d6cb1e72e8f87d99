"""Continuous, batched, atomic saving of the open document into its workspace.

A finished stroke and a change to the objects are written at once (a crash loses at most the stroke in
progress); propagated results arrive many per second, so they are batched and written once a second. Encoding
and writing happen on the `SerialJobs` thread; the GUI thread only takes snapshots of the frames' masks.
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from stm_core.session import AnnotationSession, FrameSnapshot

from .document import Document
from .editor_state import EditorState
from .errors import describe
from .workers import SerialJobs
from .workspace import Workspace

BATCH_MS = 1000


class Autosaver(QObject):
    """Watches the document and keeps its workspace folder up to date."""

    failed = Signal(str, str)
    """A write failed (title, message); reported once until a later save succeeds."""

    def __init__(self, document: Document, editor: EditorState) -> None:
        super().__init__()
        self._document = document
        self._editor = editor
        self._workspace: Workspace | None = None
        self._source: Path | None = None
        self._fingerprints: tuple[str, ...] = ()
        self._dirty: set[int] = set()
        self._state_dirty = False
        self._adapted = False  # the engine adapted to the video since its adaptation was last saved
        self._saved_adaptation: int | None = 0  # `session.adaptation_serial()` last saved (0: the file's own)
        self._written_state: dict | None = None  # the last state file written (writer thread sets it)
        self._listed: set[int] = set()  # the object ids when the objects last changed
        self._error_reported = False
        self._shut_out = False  # another window held the workspace's lock at the last save (see `_may_write`)
        self._failed: set[str] = set()  # writer keys whose job failed, to submit again (writer thread adds)
        self._failed_lock = threading.Lock()
        self._writer = SerialJobs(self._on_write_error, "workspace-writer")
        self._timer = QTimer(self, singleShot=True, interval=BATCH_MS)
        self._timer.timeout.connect(self.flush)
        document.maskStored.connect(self._on_mask)
        document.objectsChanged.connect(self._on_objects)
        for signal in (document.annotationsChanged, document.frameChanged, document.resultsChanged,
                       editor.changed):  # results change which frames are stale
            signal.connect(self._on_state)

    @property
    def workspace(self) -> Workspace | None:
        return self._workspace

    def attached(self) -> tuple[Workspace | None, Path | None, tuple[str, ...]]:
        """What `attach` was last given: (workspace, source, fingerprints)."""
        return self._workspace, self._source, self._fingerprints

    def attach(self, workspace: Workspace | None, source: Path | None, fingerprints: tuple[str, ...] = ()) -> None:
        """Save the current document into `workspace` from now on (None: stop saving); `fingerprints` (of the
        video, then of its first frame alone, then thumbnails: `video_identity.video_fingerprints`) are saved so
        the workspace can be found again if the video moves, and told from another video's."""
        self.flush()
        self._writer.wait_idle()
        self._workspace, self._source, self._fingerprints = workspace, source, fingerprints
        if workspace is not None:
            workspace.watch()
        self._written_state = None
        self._listed = {o.id for o in self._document.objects}
        self._dirty.clear()
        self._adapted = self._shut_out = False
        self._saved_adaptation = 0  # what the workspace holds is what the engine takes back from it
        with self._failed_lock:
            self._failed.clear()
        self._state_dirty = workspace is not None

    def note_run(self) -> None:
        """A run ended: where the engine's latest adaptation to the video became another (the run adapted, or
        took back one kept from before a correction that was undone: QA pass 83), it is saved with the work, so
        that the next session needs not adapt again (minutes on a CPU) and gives the same masks."""
        session = self._document.session
        serial = session.adaptation_serial() if session is not None else None
        if serial is not None and serial != self._saved_adaptation:
            self._saved_adaptation, self._adapted = serial, True
            if not self._timer.isActive():
                self._timer.start()

    def _on_mask(self, frame: int, urgent: bool) -> None:
        self._dirty.add(frame)
        self._state_dirty = True
        if urgent:
            self.flush(urgent=frame)
        elif not self._timer.isActive():
            self._timer.start()

    def _on_objects(self) -> None:
        """An object added, removed, renamed, recoloured, hidden or shown: the user's work, written at once like a
        stroke (QA pass 21: a rename was lost by a kill half a second later). Ahead of the masks still queued
        (QA pass 28: behind a long import's, a rename and a new object were lost by a kill 1.5 s later): the
        last state written with the objects as they are now, and the objects removed, whose pixels masks still
        to be rewritten hold (a kill while a removal was saved brought the object back on half the frames)."""
        ids = {o.id for o in self._document.objects}
        gone = self._listed - ids
        self._listed = ids
        self._state_dirty = True
        written, workspace = self._written_state, self._workspace
        session = self._document.session
        if gone and session is not None and session.adaptation_serial() is None:
            # the engine let its adaptations go with the object: the saved one goes too (`_write_adaptation`), or
            # the next session would continue from it where this one adapts afresh (QA pass 85)
            self._saved_adaptation, self._adapted = None, True
        if self.flush() and written is not None and workspace is not None:  # ahead of the masks flush queued
            objects = self._document.objects
            early = {**written, "objects": objects.to_json(), "removed_objects": objects.retired()}
            self._writer.submit("state:early", lambda: workspace.write_state(early), first=True)

    def _on_state(self, *_: object) -> None:
        self._state_dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def flush(self, urgent: int | None = None) -> bool:
        """Hand every pending change to the writer thread (masks first, then the state that lists them); the
        masks of frame `urgent` (a finished stroke) go ahead of every pending write (QA pass 67: behind a long
        import's 300 writes, a stroke was lost by a kill 1.5 s after it ended). False where nothing may be
        written (no video, or another window holds the workspace)."""
        self._timer.stop()
        session, workspace = self._document.session, self._workspace
        if session is None or workspace is None or not self._may_write(workspace):
            return False
        names = session.frame_names
        self._retry_failed(names)
        self._resave_if_deleted(workspace)
        loading = set(self._document.loading_frames()) if self._dirty else set()
        for frame in sorted(self._dirty):  # snapshots: the writer reads each mask when it writes it
            snapshot, name, unread = session.snapshot(frame), names[frame], frame in loading
            self._writer.submit(f"mask:{name}", partial(self._save_masks, workspace, name, snapshot, unread),
                                first=frame == urgent)
            self._writer.submit(f"soft:{name}", partial(self._save_soft, workspace, name, snapshot, unread))
        self._dirty.clear()
        if self._state_dirty:
            state = self._state(names)
            self._writer.submit("state", lambda: self._write_state(workspace, state))
            self._state_dirty = False
        if self._adapted:  # its bytes are made on the writer thread: 10 MB of weights
            self._writer.submit("adaptation", lambda: _write_adaptation(workspace, session))
            self._adapted = False
        return True

    def _may_write(self, workspace: Workspace) -> bool:
        """Whether this window holds the workspace's lock, asked before every save and taken again where it is
        missing: it could not be written at opening (a full disk, a read-only place: QA pass 87), or it was
        deleted, alone or with the workspace (QA pass 90). Where another window opened the video meanwhile,
        nothing is written, and the user is told: each window would overwrite the other's work."""
        busy = workspace.lock()
        if busy is None:
            if self._shut_out:  # the other window wrote there meanwhile: this one's work goes there whole again
                self._shut_out = False  # (QA pass 93: only the frames changed since were, over the other's)
                self._save_everything(workspace)
            return True
        self._shut_out = True
        with self._failed_lock:
            self._failed.add("lock")  # `save_now` says the work is not saved
        if not self._error_reported:
            self._error_reported = True
            self.failed.emit("Work not saved", f"While this video was open here, {busy}. So that the two windows "
                             "do not overwrite each other's work, this one saves nothing: close one of them. (This "
                             "window could not mark the video as open, or that mark was deleted.)")
        return False

    @staticmethod
    def _save_masks(workspace: Workspace, name: str, snapshot: FrameSnapshot, unread: bool = False) -> None:
        """A frame's masks: its annotation and the result under it (shown again when the annotation is
        cleared: QA pass 24 found it gone after reopening), or else its waiting objects and its result (kept
        apart), each saved or removed. `unread`: the frame's saved result is still being read back, so it is
        not removed for want of one (QA pass 96: a frame saved again as opening began lost it for good)."""
        labels, result = snapshot.labels(), snapshot.result_labels()
        if labels is None:
            for kind in ("annotation", "entering", *(() if unread else ("result",))):
                workspace.remove_mask(name, kind)  # type: ignore[arg-type]
        elif snapshot.painted is not None:
            workspace.write_mask(name, labels, "annotation")
            if result is not None:
                workspace.write_mask(name, result, "result", under_annotation=True)
            elif not unread:
                workspace.remove_mask(name, "result")
        else:  # the result alone: shown, it has the waiting objects added (QA pass 77: saved so, they were in
            for mask, kind in ((snapshot.entering, "entering"), (result, "result")):  # the result after reopening,
                if mask is not None:  # and sought back from their frame)
                    workspace.write_mask(name, mask, kind)  # type: ignore[arg-type]
                elif not (unread and kind == "result"):
                    workspace.remove_mask(name, kind)  # type: ignore[arg-type]

    @staticmethod
    def _save_soft(workspace: Workspace, name: str, snapshot: FrameSnapshot, unread: bool = False) -> None:
        """The soft maps of the frame's result (under an annotation too), tied to the mask saved for it."""
        soft = snapshot.result_soft()
        if soft is not None:
            workspace.write_soft(name, snapshot.result_labels(), *soft)
        elif not unread:
            workspace.remove_soft(name)

    def _state(self, names: list[str]) -> dict:
        doc = self._document
        stale, older = doc.stale_frames(), {}
        for i, key in enumerate(doc.result_keys()):
            if key is not None and key != doc.annotation_key():
                older.setdefault(key.hex(), []).append(names[i])
        return {
            **Workspace.identity(names, doc.frame_size),
            "work_id": self._workspace.work_id if self._workspace is not None else None,
            "source": str(self._source) if self._source else None,
            "fingerprint": self._fingerprints[0] if self._fingerprints else None,
            "picture": self._fingerprints[1] if self._fingerprints else None,  # the first frame's alone
            "thumbnail": self._fingerprints[2] if self._fingerprints else None,  # to compare it with tolerance
            "thumbnail_later": self._fingerprints[3] if self._fingerprints else None,  # where the first is flat
            "thumbnails_spread": self._fingerprints[4] if self._fingerprints else None,  # the first deleted
            "objects": doc.objects.to_json(),
            "removed_objects": self._document.objects.retired(),  # their pixels masks may still hold
            # objects imported to enter on a frame: not sought back from it (session.entered)
            "entered": {names[i]: ids for i, ids in doc.session.entered().items()} if doc.session else {},
            "annotations_key": doc.annotation_key().hex(),  # what results not listed below were computed from
            "stale": [names[i] for i, key in enumerate(doc.result_keys()) if key is None and stale[i]],
            "result_keys": older,  # results from other annotations: current again once those are back
            "out_of_date": [names[i] for i in np.flatnonzero(stale)],  # as the timeline shows them now
            # the uncertainty curve and U survive reopening, also for results under annotations
            "uncertainty": {names[i]: round(float(u), 5) for i, u in enumerate(doc.result_uncertainty())
                            if np.isfinite(u)},
            "current_frame": doc.current_frame,
            "editor": self._editor.to_json(),
        }

    def _resave_if_deleted(self, workspace: Workspace) -> None:
        """A workspace whose saved files went (the folder, its state file or a folder of masks deleted while the
        video was open: QA passes 67 and 71; the saves after it wrote only the frames changed since, and said
        "Saved"; reopened, the annotations and results from before were gone) gets everything in memory written
        again, and the user is told."""
        if self._document.session is None or not workspace.lost():
            return
        self._save_everything(workspace)
        try:
            workspace.root.mkdir(parents=True, exist_ok=True)
        except OSError:  # the writes fail too, and say why
            pass
        self.failed.emit("Workspace deleted", f"Saved work in the workspace folder {workspace.root} was deleted "
                         "while the video was open (the folder, or files in it). Everything this window holds is "
                         "being saved there again.")

    def _save_everything(self, workspace: Workspace) -> None:
        """Have every mask, the state and the adaptation written with the next flush, and the saved masks of
        frames this window has none on removed (QA pass 96: after another window's saves, its masks stayed)."""
        session = self._document.session
        if session is not None:
            self._dirty.update(i for i in range(session.num_frames) if session.has_result(i))
            self._dirty.update(session.entering_frames())
            for kind in ("annotation", "entering", "result"):
                self._dirty.update(workspace.saved_frames(session.frame_names, kind))  # type: ignore[arg-type]
        self._state_dirty = self._adapted = True

    def _write_state(self, workspace: Workspace, state: dict) -> None:
        workspace.write_state(state)
        self._written_state = state
        self._error_reported = False

    def save_now(self, timeout: float = 30.0) -> bool:
        """Write everything pending, writes that failed before included, and wait for the disk; False if it did
        not finish in time or a write failed (reported again: the user asked for this save)."""
        self._error_reported = False
        self._state_dirty = True
        self.flush()
        idle = self._writer.wait_idle(timeout)
        with self._failed_lock:
            return idle and not self._failed

    def pending(self) -> int:
        """Writes still to do (a long import's masks take seconds to write at 1080p)."""
        return self._writer.pending()

    def has_failed(self) -> bool:
        """Whether a write failed since the last save that retried it."""
        with self._failed_lock:
            return bool(self._failed)

    def close(self) -> None:
        self.flush()
        self._writer.close()

    def _retry_failed(self, names: list[str]) -> None:
        """Writes that failed (a full disk, a read-only folder) are done again with the next save, Ctrl+S
        included (QA pass 14: strokes whose save failed were never written, and Ctrl+S said "Saved")."""
        with self._failed_lock:
            failed, self._failed = self._failed, set()
        index_of = {name: i for i, name in enumerate(names)} if failed else {}
        for key in failed:
            kind, _, name = key.partition(":")
            if kind == "state":
                self._state_dirty = True
            elif name in index_of:
                self._dirty.add(index_of[name])

    def _on_write_error(self, key: str, exc: BaseException) -> None:
        with self._failed_lock:
            self._failed.add(key)
        if not self._error_reported:
            self._error_reported = True
            _, message = describe(exc)
            self.failed.emit("Autosave failed", f"{message}\n\nYour work stays in memory; free some disk "
                                                "space or fix the folder's permissions, then save again (File "
                                                "▸ Save workspace now).")


def _write_adaptation(workspace: Workspace, session: AnnotationSession) -> None:
    """Best effort: without the file the next session only adapts again, so a failed write (a full disk, which
    the masks' writes report) must not count as unsaved work (QA pass 85: it refused opening another video)."""
    try:
        data = session.adaptation()
        if data is None:  # let go (an object removed), or none yet where another window's file lies
            workspace.remove_adaptation()
        else:
            workspace.write_adaptation(data)
    except (OSError, MemoryError):
        pass
