"""The application's controller: opens videos into the document, keeps its workspace, applies settings,
and starts exports. No widgets: the main window forwards user commands here and shows what it emits.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from stm_core.errors import InputError, StmError
from stm_core.io.masks import read_mask, read_mask_dir
from stm_core.io.packed_masks import PackedMasks
from stm_core.session import AnnotationSession, check_device, check_weights

from .autosave import Autosaver
from .demo_clip import ensure_demo_clip
from .document import Document
from .editor_state import EditorState
from .errors import describe
from .export import ExportOptions, export, leftovers
from .mask_import import describe_new_objects, one_object, painted_over, take_listed, video_ids
from .objects import ObjectTable, TrackedObject
from .propagation import PropagationController
from .settings import MODELS, AppSettings, Preferences
from .shortcuts import hint
from .wording import frame_numbers
from .workers import Task
from .workspace import (STATE_FILE, SUFFIX, DamagedState, NewerWorkspace, Workspace, find_moved_workspace, flat,
                        frame_fingerprint, frame_thumbnail, move_workspace, note_beside, open_elsewhere, saved,
                        saved_for_other_pictures, source_files, workspace_dir)

DEMO_OBJECT_NAMES = ("Disc", "Box", "Star")

ImportProgress = Callable[[str, int, int], bool]
"""(what is being done, masks done, masks in all) -> False to stop; heeded while reading, before anything is
imported (a long video's masks take minutes: 2,000 at 1080p about 20 s to read on 2 cores)."""


class _ImportStopped(Exception):
    """The user stopped an import while its masks were read."""


LATER_FRAMES = 120
"""How far a flat first frame (a fade from black) is followed for a frame with a picture, kept to tell videos
apart (QA pass 44: a fixed frame 30 was black too after a long fade, and moved when a frame before it went)."""
SPREAD_FRAMES = 3
"""Frames of a folder whose thumbnails are kept by name: where its first frames were deleted, they tell its work."""


class AppController(QObject):
    """Owns the document, editor state, propagation, autosave and export of the one open video."""

    error = Signal(str, str)
    """Something failed: (title, message) for a dialog. The work in memory is unaffected."""
    message = Signal(str)
    """A short note for the status bar."""
    guide = Signal(str)
    """What to do next, for the status bar: it stays until the next run, a passing note covering it for a while
    (QA pass 72: "press F" went before a new user had looked)."""
    videoOpened = Signal(str)
    exportProgress = Signal(int, int)
    exportFinished = Signal(object)
    exportFailed = Signal(str, str)
    exportRunningChanged = Signal(bool)

    def __init__(self, settings: AppSettings, data_dir: Path) -> None:
        super().__init__()
        self.settings = settings
        self.data_dir = data_dir
        self.document = Document()
        self.editor = EditorState()
        self.propagation = PropagationController(self.document)
        self.autosaver = Autosaver(self.document, self.editor)
        self.source: Path | None = None
        self._export: Task | None = None
        self._weights_loaded: tuple | None = None  # the weights file `weights_problem` loaded: path, model, stat
        self._loader: Task | None = None
        self._loading_from: tuple[Workspace, AnnotationSession, dict[int, float], set[int]] | None = None
        self._warm: Task | None = None
        self._status_error_session: AnnotationSession | None = None
        self.propagation.failed.connect(self.error)
        self.propagation.finished.connect(lambda _report: self.autosaver.note_run())
        self.autosaver.failed.connect(self.error)
        self.document.frameUnreadable.connect(self.error)
        self.document.note.connect(self.message)
        self.document.objectsChanged.connect(self._keep_selection_valid)

    # ---- opening ------------------------------------------------------------------------------------
    def open(self, path: str | Path) -> bool:
        """Open a video file or frame folder and its workspace (created on first open)."""
        path = Path(os.path.abspath(Path(path).expanduser()))  # recent files are opened from anywhere
        if self.autosaver.workspace is not None and not self.autosaver.save_now():  # QA pass 15: it was dropped
            self.error.emit("Work not saved", "Some of the open video's work could not be written to its workspace "
                            "(the disk is full or the folder is not writable). Free some space or fix the folder "
                            f"and press {self._key('file.save')}, then open the other video.")
            return False
        with warnings.catch_warnings(record=True) as caught:  # a video cut short, frames sharing a timestamp
            warnings.simplefilter("always")
            try:
                session = AnnotationSession.open(path, self.settings.engine_settings())
            except Exception as exc:  # every failure to open is shown; the current video stays open
                self.error.emit(*describe(exc))
                return False
        if busy := open_elsewhere(path, self.data_dir, self.autosaver.workspace):
            self.error.emit("Video already open", f"Cannot open {path.name}: {busy}")
            return False
        previous = self.autosaver.attached()
        stopped = self.source.name if self.propagation.running and self.source is not None else None
        self._close_current()  # saves it first: reopening the same video reads what it saved
        prefs = self.settings.preferences()
        fingerprints, moved_from = self._fingerprints(session), None
        workspace, busy, restored = None, None, False
        try:
            root, moved_from = self._workspace_root(path, session, fingerprints, prefs.workspace_beside_video)
            workspace = Workspace(root)
            busy = workspace.lock()
            if busy is None:
                objects, frame, deferred, keys, uncertainty, removed = self._restore(workspace, session)
                workspace.lock()  # again where a damaged workspace was set aside: the lock went with it
                restored = True
                if workspace.root.name.endswith(SUFFIX):
                    note_beside(self.data_dir, workspace.root)
        except Exception as exc:  # QA pass 14: the video still open went on unsaved after a failed open
            self.error.emit(*describe(exc))
        if not restored:
            self._open_failed(path, busy, workspace, previous, stopped)
            return False
        self.source, self._loading_from = path, None  # the closed video's session is let go
        self.document.load(session, objects, frame, keys.stale, loading=deferred, loading_uncertainty=uncertainty,
                           result_keys=keys.older, judged_key=keys.judged, out_of_date=keys.out_of_date)
        self._load_results(workspace, session, deferred, uncertainty, removed)
        self._warm_up(session)
        if len(self.document.objects) == 0:
            self.document.add_object()
        self._keep_selection_valid()
        self.autosaver.attach(workspace, path.resolve(), fingerprints, removed)
        self.autosaver.save_now()
        self.settings.add_recent(str(path))
        self.videoOpened.emit(str(path))
        self._say_opened(path, moved_from, stopped, [str(w.message) for w in caught])
        return True

    def _workspace_root(self, path: Path, session: AnnotationSession, fingerprints: tuple[str, ...],
                        beside: bool) -> tuple[Path, str | None]:
        """The folder of the video's work: where the settings put it, once another video's work saved for this
        path is set aside there; where nothing is saved for it, the workspace it had before it was moved, moved
        here (then also the path it was saved for)."""
        root, moved_from = workspace_dir(path, self.data_dir, beside), None
        if fingerprints and saved_for_other_pictures(root, fingerprints[1], fingerprints[2],
                                                     lambda name: self._thumbnail_of(session, name)):
            done = Workspace(root).set_aside(source_replaced=True)
            self.error.emit("Saved work of another video", f"The work saved in {root} is of another video "
                            f"that was at this path: its first frame differs.\n\n{done}; this video's own "
                            "work is looked for elsewhere.")
        if fingerprints and not (root / STATE_FILE).exists():
            identity = Workspace.identity(session.frame_names, session.frame_size)
            if (found := find_moved_workspace(self.data_dir, path, identity, fingerprints)) is not None:
                moved_from = found[1]
                root = move_workspace(found[0], root)  # not while another window has it open
        return root, moved_from

    def _open_failed(self, path: Path, busy: str | None, workspace: Workspace | None,
                     previous: tuple[Workspace | None, Path | None, tuple[str, ...]], stopped: str | None) -> None:
        """The video stays closed: say why, and the one open before (closed to open it) goes on saving."""
        if busy is not None:
            self.error.emit("Video already open", f"Cannot open {path.name}: {busy}")
        elif workspace is not None:
            workspace.unlock()  # QA pass 15: a failed restore kept the lock, refusing every retry
        if previous[0] is not None:
            previous[0].lock()
        self.autosaver.attach(*previous)
        self._resume_loading()
        if stopped is not None:
            self.message.emit(f"Opening {path.name} failed after stopping the propagation of {stopped}: the "
                              "frames it made are kept; propagate there again for the rest")

    def _say_opened(self, path: Path, moved_from: str | None, stopped: str | None, warned: list[str]) -> None:
        """The notes after opening: what to do first on a video without masks, where its work was found, the
        run opening it stopped, and what opening it warned of."""
        if not self.document.annotated_frames() and not self.document.result_frames().any() \
                and not self.document.entering_frames():
            # what to do first, so a narrow status bar cuts the details (QA pass 78: "…then press F t…")
            self.guide.emit(f"Paint an object on a frame, then press {self._key('propagate.forward')} to propagate "
                            f"it (a left drag paints, a right drag erases, {self._key('object.add')} adds an object)")
        if moved_from is not None:
            self.message.emit(f"Continuing the work saved when this video was at {moved_from}")
        if stopped is not None:  # QA pass 29: stopped without a word
            self.guide.emit(f"Opening {path.name} stopped the propagation of {stopped}: the frames it made are "
                            "saved; propagate there again for the rest")
        if warned:
            self.error.emit("Video opened with a warning", "\n".join(warned[:5]))

    @staticmethod
    def _fingerprints(session: AnnotationSession) -> tuple[str, ...]:
        """The video's fingerprint (first frame and files), then the first frame's alone, as workspaces of
        earlier versions hold it, then its `frame_thumbnail`, then 'name:thumbnail' of the first frame with a
        picture where the first is `flat` (a fade from black) else '', then, for a frame folder, 'name:thumbnail'
        of those frames spread over it (`SPREAD_FRAMES`) that are not `flat`, a line each; none if the first
        frame cannot be read (the video still opens, and says so when the frame is shown)."""
        try:
            first = session.frame(0)
        except StmError:
            return ()
        thumbnail, later = frame_thumbnail(first), ""
        for index in range(1, min(session.num_frames, LATER_FRAMES + 1)) if flat(thumbnail) else ():
            if (seen := AppController._thumbnail_at(session, index)) is None:
                break
            later = f"{session.frame_names[index]}:{seen}"
            if not flat(seen):  # the first frame with a picture, named: a frame deleted before it moves it
                break
        n, names = session.num_frames, session.frame_names
        spread = [(names[i], AppController._thumbnail_at(session, i))
                  for i in sorted({n * k // (SPREAD_FRAMES + 1) for k in range(1, SPREAD_FRAMES + 1)} - {0})
                  ] if session.source_path.is_dir() else []
        return (frame_fingerprint(first, source_files(session)), frame_fingerprint(first), thumbnail, later,
                "\n".join(f"{name}:{seen}" for name, seen in spread if seen is not None and not flat(seen)))

    @staticmethod
    def _thumbnail_of(session: AnnotationSession, name: str) -> str | None:
        """`frame_thumbnail` of the frame called `name`, None if the video has none or it cannot be read."""
        try:
            index = session.frame_names.index(name)
        except ValueError:
            return None
        return AppController._thumbnail_at(session, index)

    @staticmethod
    def _thumbnail_at(session: AnnotationSession, index: int) -> str | None:
        """`frame_thumbnail` of frame `index`, None if it cannot be read (callers that know the index need not
        look its name up among every frame's)."""
        try:
            return frame_thumbnail(session.frame(index))
        except StmError:
            return None

    def _restore(self, workspace: Workspace, session: AnnotationSession
                 ) -> tuple[ObjectTable, int, list[int], _SavedKeys, dict[int, float], set[int]]:
        """Load a saved workspace's annotated frames into `session` and return (objects, current frame,
        frames whose saved results are still to load, what their results were computed from, their
        uncertainty, the objects removed that masks may still hold: see `Autosaver._on_objects`). A damaged or
        foreign workspace is moved aside."""
        names, size = session.frame_names, session.frame_size
        workspace.remove_leftovers()
        salvaged = False
        try:
            try:
                state = workspace.read_state()
            except DamagedState as exc:  # QA pass 32: the masks went aside with it, unused
                if not workspace.belongs_to(names, size):
                    raise InputError(f"{exc}, and the masks beside it are of other frames") from None
                if (kept := workspace.keep_damaged_state()) is None:
                    raise
                self.error.emit("Workspace state damaged", f"{exc}.\n\nIt was kept as {kept}. The annotated "
                                "frames and results saved beside it are restored; the object names and colours "
                                "were in it, and which results were out of date, so every result is marked out "
                                "of date.")
                state, salvaged = {}, True
            if state is not None and not workspace.matches(state, names, size) and not salvaged:
                changed = workspace.frames_changed(state, names, size) if session.source_path.is_dir() else None
                if changed is None:
                    raise InputError(f"the saved workspace {workspace.root} belongs to other frames")
                then, gone = saved(state, "num_frames", int, 0), changed[1]
                self.error.emit("Frames changed", f"{session.source_path.name} has {len(names)} frames now, {then} "
                                "when its work was saved. Its work is restored by frame name, every propagated "
                                "result marked out of date: propagate again." +
                                (f" {gone} annotated frame{'s were' if gone > 1 else ' was'} deleted: the masks "
                                 "stay in the workspace, and come back with the frames." if gone else ""))
                salvaged = True
        except NewerWorkspace:
            raise  # the open fails, the workspace untouched
        except InputError as exc:
            done = workspace.set_aside()
            self.error.emit("Workspace not restored", f"{exc}.\n\n{done}; starting afresh.")
            return ObjectTable(), 0, [], _SavedKeys(), {}, set()
        if state is None:
            return ObjectTable(), 0, [], _SavedKeys(), {}, set()
        workspace.adopt_listed(state)  # from here on each saved value is checked: a wrong one costs only itself
        objects = ObjectTable.from_json(state.get("objects"))
        removed = {int(o) for o in saved(state, "removed_objects", list, [])
                   if isinstance(o, int) and 0 < o < 255 and objects.get(o) is None}
        annotated = set(workspace.saved_frames(names, "annotation"))  # after a kill it wins over the rest

        def restore_annotation(index: int) -> None:
            if (labels := workspace.read_frame_mask(names[index], size, "annotation")) is not None:
                session.set_annotation(index, _without(labels, removed))
        # on every core: PNG decoding and packing let go of the GIL (QA pass 31: 300 annotated 1080p frames
        # took 4 s one after another, the window frozen)
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(restore_annotation, sorted(annotated)))
        index_of = {name: i for i, name in enumerate(names)}
        for name, ids in saved(state, "entered", dict, {}).items():
            if index_of.get(name) in annotated and isinstance(ids, list):
                session.note_entered(index_of[name], [o for o in ids if isinstance(o, int) and 0 < o < 255])
        for index in set(workspace.saved_frames(names, "entering")) - annotated:  # before results: they wait
            if (labels := workspace.read_frame_mask(names[index], size, "entering")) is not None \
                    and (labels := _without(labels, removed)).any():
                session.add_entering(index, labels)
        self._say_damaged(workspace, names)
        if (adaptation := workspace.read_adaptation()) is not None:  # the engine takes it where it fits
            session.restore_adaptation(adaptation)
        deferred = workspace.saved_frames(names, "result")  # under an annotation too: shown once it is cleared
        self.editor.apply_json(saved(state, "editor", dict, {}))
        # the folder's name, not its path: a long path ran into the frame number on the status bar
        self.message.emit(f"Restored the saved work (workspace {workspace.root.name})")
        keys = _SavedKeys(stale=deferred) if salvaged else _SavedKeys.from_state(state, index_of)
        uncertainty = {index_of[n]: float(u) for n, u in saved(state, "uncertainty", dict, {}).items()
                       if n in index_of and isinstance(u, float | int) and abs(u) < 1e300}  # a 400-digit int
        frame = saved(state, "current_frame", int, 0)
        return objects, frame if 0 <= frame < len(names) else 0, deferred, keys, uncertainty, removed

    def _say_damaged(self, workspace: Workspace, names: list[str]) -> None:
        """Name the saved annotations (and objects waiting to enter) that could not be read, whose frames open
        without them, and where the files were kept."""
        if not workspace.damaged:
            return
        index_of = {name: i for i, name in enumerate(names)}
        parts, count = [], 0
        for kind, what in (("annotation", "the saved annotation of"), ("entering", "the imported objects waiting "
                                                                                "to enter on")):
            frames = sorted({index_of[name] for k, name, _, _ in workspace.damaged if k == kind})
            if frames:
                count += len(frames)
                parts.append(f"{what} frame{'s' if len(frames) > 1 else ''} {frame_numbers(frames)}")
        folders = sorted({str(kept.parent) for _, _, kept, _ in workspace.damaged})
        kept, why = workspace.damaged[0][2], workspace.damaged[0][3]
        several = count > 1
        text = " and ".join(parts)
        self.error.emit("Saved annotations damaged",
                        f"{text[0].upper()}{text[1:]} could not be read ({why}"
                        f"{'; and so on' if len(workspace.damaged) > 1 else ''}), so "
                        f"{'those frames open' if several else 'that frame opens'} without "
                        f"{'them' if several else 'it'}: paint or import {'them' if several else 'it'} again. The "
                        f"damaged file{'s were' if several else ' was'} kept beside the others (as {kept.name}"
                        f"{' and so on' if several else ''}) in {' and '.join(folders)}.")
        workspace.damaged.clear()

    def _load_results(self, workspace: Workspace, session: AnnotationSession, frames: list[int],
                      uncertainty: dict[int, float], removed: set[int]) -> None:
        """Read saved propagated masks on a worker thread, so a 10,000-frame video opens at once; a frame
        that gets a newer result meanwhile (propagation, painting) keeps it. Objects `removed` are left out."""
        if not frames:
            return
        names, size = session.frame_names, session.frame_size
        self._loading_from = workspace, session, uncertainty, removed

        def load(progress, cancel) -> bool:
            for index in frames:
                if cancel.is_set():
                    return False
                if session.snapshot(index).result is not None:
                    continue
                labels = workspace.read_frame_mask(names[index], size)
                if labels is not None:
                    kept = _without(labels, removed)
                    soft = workspace.read_soft(names[index], labels) if kept is labels else None
                    # checked again as it is stored (QA pass 80: a run's result stored meanwhile was replaced)
                    if session.set_result(index, kept, uncertainty.get(index, float("nan")), soft, if_absent=True):
                        progress(index)
            return True

        task = Task(load, self)
        task.progress.connect(lambda args: self.document.note_loaded(args[0])
                              if self.document.session is session else None)
        task.succeeded.connect(lambda complete: self.document.note_loading_done()
                               if complete and self.document.session is session else None)
        task.failed.connect(self.error)
        task.finished.connect(lambda: setattr(self, "_loader", None) if self._loader is task else None)
        task.finished.connect(task.deleteLater)  # QA pass 41: each kept its whole session, video file open
        self._loader = task
        task.start()

    def _resume_loading(self) -> None:
        """Load again the saved results of the open video that were still loading when an open of another one
        stopped it and then failed (QA pass 55: they stayed unloaded, and an export wrote them as background)."""
        if self._loading_from is not None and self._loading_from[1] is self.document.session \
                and (frames := self.document.loading_frames()):
            workspace, session, uncertainty, removed = self._loading_from
            self._load_results(workspace, session, frames, uncertainty, removed)

    def _warm_up(self, session: AnnotationSession) -> None:
        """Load the network and run it once on a worker thread while the user looks and paints, so the first
        propagation shows its first frame sooner (0.09-0.10 s instead of 0.20-0.27 s with the default settings
        on a 2-core CPU, benchmarks/first_frame.py). A failure (a broken weights file) is not reported here but
        when propagating, where the user asked for the network."""
        self.wait_for_warm_up()
        task = Task(lambda progress, cancel: session.warm_up(), self)
        task.succeeded.connect(lambda _: self._follow_loaded_model(session))
        task.finished.connect(lambda: setattr(self, "_warm", None) if self._warm is task else None)
        task.finished.connect(task.deleteLater)
        self._warm = task
        task.start()

    def _follow_loaded_model(self, session: AnnotationSession) -> None:
        """A weights file runs as the network it holds (the engine loads the official layout as stm-r50
        whatever was named); where the Model setting names the other one (a path typed, not browsed), it
        follows the file, so that the settings show what runs."""
        prefs = self.settings.preferences()
        try:
            loaded = session.memory_status()["model"]
        except StmError:  # an unusable device: said by the status bar
            return
        if session is self.document.session and prefs.weights and loaded in MODELS and loaded != prefs.model:
            self.settings.set_preferences(replace(prefs, model=str(loaded)))
            self.message.emit(f"{Path(prefs.weights).name} holds a {loaded} network: the Model setting now "
                              f"says {MODELS[str(loaded)]}")

    def wait_for_warm_up(self) -> None:
        if self._warm is not None:
            self._warm.wait()

    def wait_for_loading(self) -> None:
        """Block until saved results are in the session (before it is copied or replaced)."""
        if self._loader is not None:
            self._loader.wait()

    def open_demo(self) -> bool:
        """Generate (once) and open the demo clip; its first frame comes annotated, ready to propagate."""
        try:
            frames_dir, first_mask = ensure_demo_clip(self.data_dir / "demo-clip")
        except OSError as exc:
            self.error.emit(*describe(exc))
            return False
        if not self.open(frames_dir):
            return False
        doc = self.document
        if not doc.annotated_frames():
            doc.import_masks({0: read_mask(first_mask, doc.frame_size)}, as_annotations=True)
            for obj_id, name in enumerate(DEMO_OBJECT_NAMES, start=1):
                doc.rename_object(obj_id, name)
            self.guide.emit(f"Frame 1 is annotated: press {self._key('propagate.forward')} to propagate it through "
                            "the video")
        return True

    def _close_current(self) -> None:
        if self._loader is not None:
            self._loader.cancel()
            self._loader.wait()
        self.wait_for_warm_up()
        self.propagation.cancel_and_wait()
        if self._export is not None:
            self._export.cancel()
            self._export.wait()
        workspace = self.autosaver.workspace
        self.autosaver.attach(None, None)  # saves what is pending first
        if workspace is not None:
            workspace.unlock()

    # ---- imports ------------------------------------------------------------------------------------
    def import_mask_folder(self, folder: str | Path, as_annotations: bool,
                           confirm: Callable[[list[int]], bool] | None = None, as_new_object: bool = False,
                           progress: ImportProgress | None = None) -> bool:
        """Import the masks of a folder (PNG, JPEG, …) named after the frames (palette, grayscale or 0/255). Where
        they would replace painted annotations, `confirm(frames)` is asked first (False: nothing is imported).
        `as_new_object`: the folder holds one object's masks (a per-object export, SAM or XMem style), which
        become a new object added to each frame's present mask; annotated frames stay annotated. `progress`
        is told about each mask read and imported."""
        doc, session = self.document, self.document.session
        if session is None:
            return False
        blocker = self.import_blocker()
        if blocker is not None:
            self.error.emit("Import refused", blocker)
            return False

        def stage(name: str) -> Callable[[int, int], None]:  # the steps before the import can still be stopped
            def report(done: int, total: int) -> None:
                if progress is not None and not progress(name, done, total):
                    raise _ImportStopped
            return report
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                masks = read_mask_dir(folder, session.frame_names, session.frame_size, stage("Reading masks"))
                home = None if as_new_object else video_ids(doc.objects, Path(folder))
                masks = masks if home is None else masks.mapped(lambda i, m: home[0][m], stage("Renumbering masks"))
                new_object, own, masks = one_object(doc, Path(folder), masks, stage("Adding the object")) \
                    if as_new_object else (None, False, masks)
            except _ImportStopped:
                self.message.emit(f"Import cancelled: nothing was imported from {folder}")
                return False
            except Exception as exc:  # shown to the user; nothing was imported
                self.error.emit(*describe(exc))
                return False
        replaced = painted_over(doc, masks, as_annotations, new_object, own)
        if replaced and confirm is not None and not confirm(replaced):
            return False
        if new_object is not None and not own:
            doc.add_object(new_object.name, new_object.id, new_object.color)
        known = {o.id for o in doc.objects if not o.default_look}  # see describe_new_objects
        waiting = set(doc.entering_frames())
        imported = []
        if as_new_object and not as_annotations:  # the object joins annotated frames' annotations too
            imported += doc.import_masks(masks.subset(i for i in masks if session.is_annotated(i)), True)
        # on a frame with no mask yet the new object waits for a forward run to bring the others there, which
        # would otherwise be annotated as absent (QA pass 13: they were never tracked there again)
        tracked = as_new_object and any(o != new_object.id for o in session.object_ids())
        unmasked = [i for i in masks if session.labels(i) is None] if tracked else []
        imported += doc.import_masks(masks, as_annotations, entering=unmasked, progress=None if progress is None
                                     else lambda done, total: progress("Importing masks", done, total))
        entering = [i for i in doc.entering_frames() if i not in waiting]
        if home is not None:  # back home, the objects are the video's own; removed ones come back as listed
            for obj in home[1]:
                take_listed(doc, obj)
        elif not as_new_object:
            describe_new_objects(doc, Path(folder), known)
        self._say_imported(folder, masks, len(imported), entering, new_object, own)
        if masks and not any(masks.objects(i) for i in masks):  # QA pass 79: said nothing (the CLI refuses them)
            several = len(masks) > 1
            self.error.emit("Masks hold no object",
                            f"The masks in {folder} are all background: frame{'s' if several else ''} "
                            f"{frame_numbers(masks)} now "
                            f"show{'' if several else 's'} no object"
                            + (", as annotations, and propagating from there makes background" if as_annotations
                               else "") + f". {self._key('edit.undo')} on such a frame undoes it.")
        if caught:
            notes = "\n".join(str(w.message) for w in caught[:10])
            more = f"\n… and {len(caught) - 10} more" if len(caught) > 10 else ""
            self.error.emit("Masks adjusted", f"Some masks were adjusted as they were read:\n{notes}{more}")
        return True

    def _say_imported(self, folder: str | Path, masks: PackedMasks, imported: int, entering: list[int],
                      new_object: TrackedObject | None, own: bool) -> None:
        kept = len(masks) - imported - len(entering)
        count = imported + len(entering)
        self.message.emit(f"Imported {count} mask{'s' * (count != 1)}" +  # what matters first: paths are long
                          (f" as the masks of {new_object.name}, its own ones replaced" if own else
                           f" as the new object {new_object.name}" if new_object is not None else "") +
                          (f" (new objects enter on frame{'s' if len(entering) > 1 else ''} "
                           f"{', '.join(str(i + 1) for i in entering)}, where a forward propagation adds them)"
                           if entering else "") +
                          (f"; {kept} annotated frame{'s' * (kept != 1)} kept {'their' if kept != 1 else 'its'} "
                           "annotation" if kept else "") + f" from {folder}")

    def import_blocker(self) -> str | None:
        """Why a mask folder cannot be imported now (None: it can): a running propagation would overwrite the
        imported masks on every frame it reaches (QA pass 13), and saved masks still loading might too."""
        return self._masks_in_flux("import", " and would overwrite imported masks")

    def _masks_in_flux(self, action: str, running_means: str) -> str | None:
        """Why `action` must wait while a propagation or the loading of saved masks still changes masks."""
        if self.propagation.running:
            return f"A propagation is running{running_means}: {action} when it has finished, or cancel it " \
                   f"({self._key('propagate.cancel')}) first."
        if self._loader is not None:
            return f"Saved masks are still loading: {action} in a moment."
        return None

    def import_frame_mask(self, path: str | Path) -> bool:
        """Replace the current frame's mask with a mask file, or add its objects to it if they are all new
        (one undoable edit)."""
        doc = self.document
        if doc.session is None:
            return False
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                labels = read_mask(path, doc.frame_size)
            doc.import_frame_mask(labels)
        except Exception as exc:  # shown to the user; the frame is unchanged
            self.error.emit(*describe(exc))
            return False
        if caught:  # resized, or a soft-edged binary mask thresholded: said, since the result differs
            self.message.emit("; ".join(str(w.message) for w in caught))
        return True

    # ---- objects ------------------------------------------------------------------------------------
    def add_object(self) -> None:
        """Add an object and select it, so the next stroke paints it."""
        if not self.document.is_open:
            return
        try:
            self.editor.select_object(self.document.add_object().id)
        except ValueError as exc:  # all 254 labels in use
            self.error.emit(*describe(exc))

    def remove_object(self, obj_id: int) -> None:
        """Delete an object in every frame; a running propagation is stopped first so it cannot bring the
        object back in frames it had not reached."""
        if self.propagation.running:  # said first: the run's own note then follows it (QA pass 16)
            self.message.emit(f"Removing an object stopped the propagation: {self._ask_again('go on')}")
        self.propagation.stop_then(partial(self.document.remove_object, obj_id))

    def undo(self) -> None:
        """Undo the last edit on the current frame, stopping a running propagation first."""
        if self.document.can_undo():
            self._stop_for("Undo")
        self.document.undo()

    def redo(self) -> None:
        if self.document.can_redo():
            self._stop_for("Redo")
        self.document.redo()

    def clear_annotation(self) -> None:
        """Make the current frame ordinary again, stopping a running propagation first."""
        self._stop_for("Clearing the annotation")
        self.document.clear_annotation()

    def _stop_for(self, what: str) -> None:
        """A running propagation propagates the annotations as they were: after an undo it would replace the
        results the undo made current again with out-of-date ones (QA pass 22), so it stops."""
        if self.propagation.running:
            self.message.emit(f"{what} stopped the propagation, which used the annotations as they were before: "
                              f"{self._ask_again('propagate again')}")
            self.propagation.cancel()

    def _ask_again(self, to: str) -> str:
        """How to ask for the running run again: its own key and start (QA pass 68: after a run both ways,
        the note said F, which goes one way)."""
        direction, start = self.propagation.run_asked or ("forward", self.document.current_frame)
        return f"press {self._key(f'propagate.{direction}')} on frame {start + 1} to {to}"

    def _key(self, command_id: str) -> str:
        """The key the user has for a command, to name in a note."""
        return hint(self.settings.keymap(), command_id)

    def select_object(self, obj_id: int) -> None:
        if obj_id in self.document.objects:
            self.editor.select_object(obj_id)
        else:
            self.message.emit(f"There is no object {obj_id}; press {self._key('object.add')} to add one.")

    def _keep_selection_valid(self) -> None:
        ids = self.document.objects.ids()
        if self.editor.selected_object not in ids:
            self.editor.select_object(ids[0] if ids else None)

    # ---- settings, memory, saving --------------------------------------------------------------------
    def weights_problem(self, prefs: Preferences) -> str | None:
        """Why `prefs` cannot run their network, for the user: a device this machine lacks (QA pass 73), no
        weights for the official model (QA pass 17), or a weights file named now that does not load: missing,
        damaged, of another network (QA pass 37: both were "applied" and said only at the next F). None when they
        can; a file is loaded once to tell (a second for the official one)."""
        try:
            check_device(prefs.engine_settings())
        except StmError as exc:
            return describe(exc)[1]
        missing = prefs.missing_weights()
        if missing is not None or not prefs.weights:
            return missing
        try:  # the file as it is now: replaced or deleted since it was loaded, it is loaded again (QA pass 40)
            stat = Path(prefs.weights).stat()
            key = (prefs.weights, prefs.model, stat.st_size, stat.st_mtime_ns)
        except OSError:
            key = None
        if key is not None and key == self._weights_loaded:
            return None
        try:
            with warnings.catch_warnings(record=True) as caught:  # a training run's last.pt is used with a warning
                warnings.simplefilter("always")
                check_weights(prefs.engine_settings())
        except StmError as exc:
            return describe(exc)[1]
        for warning in caught[:1]:  # QA pass 73: it reached only the terminal
            self.message.emit(str(warning.message))
        self._weights_loaded = key
        return None

    def apply_preferences(self, prefs: Preferences) -> None:
        """Remember `prefs`; if the engine settings changed, rebuild the session keeping every mask."""
        problem = self.weights_problem(prefs)
        old = self.settings.preferences()
        if problem is not None:  # the same file broken since: nothing better to keep (QA pass 42)
            same = (prefs.weights, prefs.model) == (old.weights, old.model)
            self.error.emit("Settings not applied", problem + ("" if same else "\n\nThe previous settings are kept."))
            return
        self.settings.set_preferences(prefs)
        session = self.document.session
        if session is None or not old.engine_differs(prefs):
            return
        fresh = session.on_same_frames(self.settings.engine_settings())
        try:
            fresh.memory_status()  # resolves the device: asking for CUDA without one fails here, not later
        except StmError as exc:
            self.settings.set_preferences(old)
            self.error.emit(*describe(exc))
            return
        again = self._ask_again("go on") if self.propagation.running else None
        self.propagation.cancel_and_wait()
        self.wait_for_loading()
        fresh.copy_masks_from(session)
        session.release_memory()
        self.document.replace_session(fresh)
        self._warm_up(fresh)
        if again:  # stays: the stopped run's own note never comes, its session replaced (QA pass 76)
            self.guide.emit(f"Engine settings applied, masks kept; the propagation was stopped: {again}")
        else:
            self.message.emit("Engine settings applied, masks kept")

    def engine_status(self) -> dict[str, float | int | str] | None:
        """The engine's memory status for the status bar; None (and one dialog) if the engine is unusable."""
        session = self.document.session
        if session is None:
            return None
        try:
            return session.memory_status()
        except StmError as exc:
            if self._status_error_session is not session:
                self._status_error_session = session
                self.error.emit(*describe(exc))
            return None

    def clear_memory(self) -> None:
        if self.document.session is not None:
            self.document.session.release_memory()
            self.message.emit("Engine memory cleared (masks kept).")

    def save_now(self) -> bool:
        ok = self.autosaver.save_now()
        if ok and self.autosaver.workspace is not None:
            self.message.emit(f"Saved to {self.autosaver.workspace.root}")
        elif self.autosaver.workspace is not None:
            self.message.emit("Not everything could be saved: the work stays in memory; press "
                              f"{self._key('file.save')} again when "
                              "the disk has room or the folder is writable")
        return ok

    # ---- export -------------------------------------------------------------------------------------
    @property
    def exporting(self) -> bool:
        return self._export is not None

    def export_blocker(self) -> str | None:
        """Why an export cannot start now, for the user (None: it can). Frames still being propagated or
        loaded would be written with old masks or as background, and the export would say it succeeded."""
        if self.document.session is None:
            return "No video is open."
        if self._export is not None:
            return "An export is already running."
        return self._masks_in_flux("export", ", so its frames are not final yet")

    def export_leftovers(self, options: ExportOptions) -> list[str]:
        """What an earlier export in the chosen folder leaves that this one would not rewrite, described (the
        dialog asks whether to remove it)."""
        session = self.document.session
        return [] if session is None else [x.describe() for x in leftovers(session, list(self.document.objects),
                                                                           options)]

    def start_export(self, options: ExportOptions) -> None:
        """Export on a worker thread; does nothing while `export_blocker()` says why not."""
        session = self.document.session
        if session is None or self.export_blocker() is not None:
            return
        self.document.end_stroke()
        objects = list(self.document.objects)
        stale = int(self.document.stale_frames().sum())
        workspace = self.autosaver.workspace.root if self.autosaver.workspace is not None else None
        task = Task(lambda progress, cancel: export(session, objects, options, progress, cancel, stale,
                                                    workspace=workspace), self)
        task.progress.connect(lambda args: self.exportProgress.emit(*args))
        task.succeeded.connect(self.exportFinished)
        task.failed.connect(self.exportFailed)
        task.finished.connect(self._on_export_done)
        self._export = task
        task.start()
        self.exportRunningChanged.emit(True)

    def cancel_export(self) -> None:
        if self._export is not None:
            self._export.cancel()

    def _on_export_done(self) -> None:
        task, self._export = self._export, None
        if task is not None:
            task.deleteLater()
        self.exportRunningChanged.emit(False)

    def shutdown(self) -> None:
        """Stop background work and write everything to disk (the window is closing)."""
        self.document.end_stroke()
        self._close_current()
        self.autosaver.close()
        self.document.stop_decoding()


@dataclass(frozen=True)
class _SavedKeys:
    """What the saved results were computed from: the annotations `judged` identifies (None: the present
    ones), those `older` maps each frame to, or unknown ones on `stale` frames (state files before
    `result_keys`). A kill between an annotation's mask file and the state file leaves `judged` other than
    the present annotations' key, so those results come back out of date."""

    judged: bytes | None = None
    older: dict[int, bytes] = field(default_factory=dict)
    stale: list[int] = field(default_factory=list)
    out_of_date: list[int] | None = None  # the frames shown out of date when saved (None: not saved)

    @staticmethod
    def from_state(state: dict, index_of: dict[str, int]) -> _SavedKeys:
        def frames(names: list) -> list[int]:
            return [index_of[n] for n in names if isinstance(n, str) and n in index_of]

        older: dict[int, bytes] = {}
        for key, names in saved(state, "result_keys", dict, {}).items():
            if isinstance(names, list) and (key := _key_bytes(key)) is not None:
                older.update((i, key) for i in frames(names))
        shown = saved(state, "out_of_date", list, None)
        return _SavedKeys(_key_bytes(saved(state, "annotations_key", str, None)), older,
                          [i for i in frames(saved(state, "stale", list, [])) if i not in older],
                          None if shown is None else frames(shown))


def _key_bytes(text: str | None) -> bytes | None:
    """A saved hexadecimal key, None if missing or not one."""
    try:
        return bytes.fromhex(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _without(labels: np.ndarray, removed: set[int]) -> np.ndarray:
    """`labels` with the `removed` objects' pixels made background (the same array when it holds none)."""
    gone = np.isin(labels, list(removed)) if removed else None
    return labels if gone is None or not gone.any() else np.where(gone, 0, labels).astype(np.uint8)
