"""The application's controller: opens videos into the document, keeps its workspace, applies settings,
and starts exports. No widgets: the main window forwards user commands here and shows what it emits.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from stm_core.errors import StmError
from stm_core.io.masks import read_mask, read_mask_dir
from stm_core.io.packed_masks import PackedMasks, labels_present
from stm_core.session import AnnotationSession, check_device, check_weights

from .autosave import Autosaver
from .demo_clip import ensure_demo_clip
from .document import Document
from .editor_state import EditorState
from .errors import describe
from .export import ExportOptions, export, leftovers, other_videos_export
from .mask_import import describe_new_objects, one_object, painted_over, take_listed, video_ids
from .objects import TrackedObject
from .propagation import PropagationController
from .restore import restore_workspace, without
from .settings import MODELS, AppSettings, Preferences
from .shortcuts import hint
from .wording import frame_numbers
from .workers import Task
from .video_identity import thumbnail_of, video_fingerprints
from .workspace import STATE_FILE, SUFFIX, Workspace
from .workspace_places import (find_moved_workspace, move_workspace, note_beside, open_elsewhere,
                               saved_for_other_pictures, workspace_dir)

DEMO_OBJECT_NAMES = ("Disc", "Box", "Star")

ImportProgress = Callable[[str, int, int], bool]
"""(what is being done, masks done, masks in all) -> False to stop; heeded while reading, before anything is
imported (a long video's masks take minutes: 2,000 at 1080p about 20 s to read on 2 cores)."""


class _ImportStopped(Exception):
    """The user stopped an import while its masks were read."""


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
        self._weights_note: str | None = None  # what loading it warned of (a training run's last.pt)
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
        self._first_step_said = False  # the note on a video without masks (paint, then F) is showing
        self.document.annotationsChanged.connect(self._say_next_step)
        self.propagation.started.connect(lambda *_: setattr(self, "_first_step_said", False))

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
        fingerprints, moved_from = video_fingerprints(session), None
        workspace, busy, restored = None, None, False
        try:
            root, moved_from = self._workspace_root(path, session, fingerprints, prefs.workspace_beside_video)
            workspace = Workspace(root)
            busy = workspace.lock()
            if busy is None:
                saved_work = restore_workspace(workspace, session, self.error.emit)
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
        if saved_work.editor is not None:
            self.editor.apply_json(saved_work.editor)
            # the folder's name, not its path: a long path ran into the frame number on the status bar
            self.message.emit(f"Restored the saved work (workspace {workspace.root.name})")
        else:  # a video without saved work: the last video's export folder is not its own (QA pass 110: its
            self.editor.set_export_choices({})  # export went into that folder, over the other video's files)
        keys, deferred, uncertainty, removed = (saved_work.keys, saved_work.deferred, saved_work.uncertainty,
                                                saved_work.removed)
        self.document.load(session, saved_work.objects, saved_work.frame, keys.stale, loading=deferred,
                           loading_uncertainty=uncertainty, result_keys=keys.older, judged_key=keys.judged,
                           out_of_date=keys.out_of_date)
        self._load_results(workspace, session, deferred, uncertainty, removed)
        self._warm_up(session)
        if len(self.document.objects) == 0:
            self.document.add_object()
        self._keep_selection_valid()
        self.autosaver.attach(workspace, path.resolve(), fingerprints)
        self.document.resave(saved_work.cleaned)
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
                                                     lambda name: thumbnail_of(session, name)):
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
        self._first_step_said = not self.document.annotated_frames() and not self.document.result_frames().any() \
            and not self.document.entering_frames()
        if self._first_step_said:
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
                    kept = without(labels, removed)
                    soft = workspace.read_soft(names[index], labels) if kept is labels else None
                    # checked again as it is stored (QA pass 80: a run's result stored meanwhile was replaced)
                    if session.set_result(index, kept, uncertainty.get(index, float("nan")), soft, if_absent=True):
                        progress(index, kept is not labels, labels_present(kept))
            return True

        def loaded(frame: int, cleaned: bool, objects: frozenset[int]) -> None:
            if self.document.session is session:
                self.document.note_loaded(frame, objects)
                if cleaned:
                    self.document.resave([frame])

        task = Task(load, self)
        task.progress.connect(lambda args: loaded(*args))
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

        def prepare(progress: Callable[..., None], cancel: object) -> None:
            try:  # headers only, 0.15 ms a frame: said now, not after minutes of adapting (QA pass 101)
                session.check_frames()
            except StmError as exc:
                progress(exc)
            session.warm_up()
        task = Task(prepare, self)
        task.progress.connect(lambda args: self._say_unusable_frame(session, args[0]))
        task.succeeded.connect(lambda _: self._follow_loaded_model(session))
        task.finished.connect(lambda: setattr(self, "_warm", None) if self._warm is task else None)
        task.finished.connect(task.deleteLater)
        self._warm = task
        task.start()

    def _say_unusable_frame(self, session: AnnotationSession, exc: StmError) -> None:
        """A frame of a folder that no run can get past (another size, an unreadable file): said once it is opened,
        where the CLI refuses the folder (QA pass 101: the app said so when a run got there)."""
        if session is self.document.session:  # the folder is open: not "Cannot read input" (QA pass 104)
            self.error.emit("A frame cannot be propagated", f"{describe(exc)[1]}\n\nA propagation stops before that "
                            "frame until it is fixed; then open the folder again.")

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
        return True

    def _say_next_step(self) -> None:
        """Once the first frame of a video opened without masks is annotated, the note on what to do first gives
        way to the next step (QA pass 88: "Paint an object…" stayed after both objects were painted)."""
        if self._first_step_said and (frames := self.document.annotated_frames()):
            self._first_step_said = False
            # the key that reaches every frame from there (QA pass 90: F on the last frame has nothing to do)
            first, last = frames[0] == 0, frames[0] == self.document.num_frames - 1
            command = "propagate.forward" if first else "propagate.backward" if last else "propagate.both"
            if len(frames) > 1:  # a run stops at the next annotated frame (QA pass 107: only the first was named)
                self.guide.emit(f"Frames {frame_numbers(frames)} are annotated: press {self._key('propagate.all')} "
                                "to propagate them through the video")
                return
            self.guide.emit(f"Frame {frames[0] + 1} is annotated: press {self._key(command)} to propagate it "
                            f"through the video{'' if first or last else ' both ways'}")

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
                work = self.autosaver.workspace.work_id if self.autosaver.workspace is not None else None
                home = None if as_new_object else video_ids(doc.objects, Path(folder), work)
                masks = masks if home is None else masks.mapped(lambda i, m: home[0][m], stage("Renumbering masks"))
                new_object, own, masks = one_object(doc, Path(folder), masks, stage("Adding the object")) \
                    if as_new_object else (None, False, masks)
            except _ImportStopped:
                self.message.emit(f"Import cancelled: nothing was imported from {folder}")
                return False
            except Exception as exc:  # shown to the user; nothing was imported
                self.error.emit(*describe(exc))
                return False
        named = set().union(*(masks.objects(i) for i in masks)) | ({new_object.id} if new_object else set())
        if not self._saved_without_removed(named):
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
            self.error.emit("Masks adjusted", f"{'Some masks were' if len(caught) > 1 else 'A mask was'} adjusted as "
                            f"{'they were' if len(caught) > 1 else 'it was'} read:\n{notes}{more}")
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

    def _masks_in_flux(self, action: str, running_means: str, in_dialog: bool = False) -> str | None:
        """Why `action` must wait while a propagation or the loading of saved masks still changes masks; said
        `in_dialog`, whose Esc closes the dialog rather than cancelling the run (QA pass 111)."""
        if self.propagation.running:
            close = "close this dialog and " if in_dialog else ""
            return f"A propagation is running{running_means}: {action} when it has finished, or {close}cancel it " \
                   f"({self._key('propagate.cancel')}) first."
        if self._loader is not None:
            return f"Saved masks are still loading: {action} in a moment."
        return None

    def import_frame_mask(self, path: str | Path) -> bool:
        """Replace the current frame's mask with a mask file, or add its objects to it if they are all new
        (one undoable edit). An `objects.json` beside it is read as the folder import reads it: a renumbered
        export of this video gives each object its own pixels back, and new objects take their listed names and
        colours (QA pass 102: the file's 1..N went onto the wrong objects, and names were lost)."""
        doc = self.document
        if doc.session is None:
            return False
        folder = Path(path).parent
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                labels = read_mask(path, doc.frame_size)
            work = self.autosaver.workspace.work_id if self.autosaver.workspace is not None else None
            home = video_ids(doc.objects, folder, work)
            if home is not None:
                labels = home[0][labels]
            shown = set(labels_present(labels)) - {0}
            if not self._saved_without_removed(shown):
                return False
            known = {o.id for o in doc.objects if not o.default_look}  # see describe_new_objects
            doc.import_frame_mask(labels)
        except Exception as exc:  # shown to the user; the frame is unchanged
            self.error.emit(*describe(exc))
            return False
        if home is not None:  # back home, objects the video lost come back as listed
            for obj in home[1]:
                if obj.id in shown:
                    take_listed(doc, obj)
        else:
            describe_new_objects(doc, folder, known, only=shown)
        if caught:  # resized, or a soft-edged binary mask thresholded: said, since the result differs
            self.message.emit("; ".join(str(w.message) for w in caught))
        return True

    def _saved_without_removed(self, ids: set[int]) -> bool:
        """Before imported masks give a removed object's id to an object again, the saved masks that may still
        hold the removed object's pixels are written without them, else those pixels would come back as the
        new object's after a crash (QA pass 90). False, and said, where they cannot be written."""
        if not ids & set(self.document.objects.retired()):
            return True
        if self._loader is not None:  # masks read back with its pixels left out are written again when loaded
            self.error.emit("Import refused", "Saved masks are still loading: import in a moment.")
            return False
        if self.autosaver.save_now():
            return True
        self.error.emit("Import refused", "The masks name an object that was removed, and saved masks that still "
                        "hold its pixels could not be written again (the disk is full or the folder is not "
                        f"writable). Free some space or fix the folder, press {self._key('file.save')}, then import "
                        "again.")
        return False

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
        self.propagation.stop_then(partial(self._remove_object, obj_id))

    def _remove_object(self, obj_id: int) -> None:
        """Saved results still loading are read on without the object (QA pass 87: read with the objects
        removed before opening only, 62 frames held its pixels again, and an export wrote them)."""
        loader = self._loader
        if loader is not None:
            loader.cancel()
            loader.wait()
        self.document.remove_object(obj_id)
        if self._loading_from is not None:
            workspace, session, uncertainty, removed = self._loading_from
            self._loading_from = workspace, session, uncertainty, removed | {obj_id}
        if loader is not None:
            self._resume_loading()

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
        results the undo made current again with out-of-date ones (QA pass 22), so it stops where the run
        started with the current frame annotated. An edit on a frame annotated during the run changes nothing
        the run reads, as painting does not (QA pass 91: undoing a stroke far ahead of the run stopped it)."""
        if self.propagation.started_with(self.document.current_frame):
            self.message.emit(f"{what} stopped the propagation, which used the annotations as they were before: "
                              f"{self._ask_again('propagate again')}")
            self.propagation.cancel()

    def _ask_again(self, to: str) -> str:
        """How to ask for the running run again: its own key and start (QA pass 68: after a run both ways,
        the note said F, which goes one way)."""
        if self.propagation.catching_up:  # QA pass 108: it named the one run in progress of a catch-up
            return f"press {self._key('propagate.all')} to {to}"
        direction, start = self.propagation.run_asked or ("forward", self.document.current_frame)
        return f"press {self._key(f'propagate.{direction}')} on frame {start + 1} to {to}"

    def _key(self, command_id: str) -> str:
        """The key the user has for a command, to name in a note."""
        return hint(self.settings.keymap(), command_id)

    def select_object(self, obj_id: int) -> None:
        if obj_id in self.document.objects:
            self.editor.select_object(obj_id)
        else:
            try:  # removed ids are retired: a new object takes another number (QA pass 102)
                number = f" (number {self.document.objects.free_id()})"
            except ValueError:  # every label taken
                number = ""
            self.message.emit(f"There is no object {obj_id}; press {self._key('object.add')} to add a new one"
                              f"{number}.")

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
        self._weights_note = str(caught[0].message) if caught else None
        if self._weights_note:  # QA pass 73: it reached only the terminal
            self.message.emit(self._weights_note)
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
        # the weights' warning stays in sight (QA pass 97: this note replaced it at once)
        note = f" · {self._weights_note}" if self._weights_note and prefs.weights else ""
        if again:  # stays: the stopped run's own note never comes, its session replaced (QA pass 76)
            self.guide.emit(f"Engine settings applied, masks kept; the propagation was stopped: {again}{note}")
        else:  # a warning stays too (QA pass 99: gone after 6 s)
            (self.guide if note else self.message).emit(f"Engine settings applied, masks kept{note}")

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

    def export_blocker(self, in_dialog: bool = False) -> str | None:
        """Why an export cannot start now, for the user (None: it can), said `in_dialog` where that is where it
        shows. Frames still being propagated or loaded would be written with old masks or as background, and
        the export would say it succeeded."""
        if self.document.session is None:
            return "No video is open."
        if self._export is not None:
            return "An export is already running."
        return self._masks_in_flux("export", ", so its frames are not final yet", in_dialog)

    def export_leftovers(self, options: ExportOptions) -> list[str]:
        """What an earlier export in the chosen folder leaves that this one would not rewrite, described (the
        dialog asks whether to remove it)."""
        session = self.document.session
        return [] if session is None else [x.describe() for x in leftovers(session, list(self.document.objects),
                                                                           options)]

    def export_of_other_video(self, options: ExportOptions) -> str | None:
        """The name of the other video whose export is in the chosen folder, if it is another's (the dialog
        asks before mixing the two)."""
        workspace = self.autosaver.workspace
        return other_videos_export(options.folder, None if workspace is None else workspace.work_id)

    def start_export(self, options: ExportOptions) -> None:
        """Export on a worker thread; does nothing while `export_blocker()` says why not."""
        session = self.document.session
        if session is None or self.export_blocker() is not None:
            return
        self.document.end_stroke()
        objects = list(self.document.objects)
        stale = int(self.document.stale_frames().sum())
        workspace = self.autosaver.workspace
        root, work = (workspace.root, workspace.work_id) if workspace is not None else (None, None)
        task = Task(lambda progress, cancel: export(session, objects, options, progress, cancel, stale,
                                                    workspace=root, work_id=work), self)
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
