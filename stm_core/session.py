"""The one interface between the application (or CLI) and the engine: NumPy in, NumPy out, no tensors.

An `AnnotationSession` holds one open video: its frames (decoded on demand), the user's annotated frames,
the per-frame results (labels and per-object soft probabilities, kept compressed) and the STM propagator
with its memory and feature caches. It is thread-safe in the way the GUI needs: `propagate` runs on a
worker thread while the GUI thread reads results, paints annotations and edits objects; every frame's
result is replaced as a whole under a lock, so a reader sees the old or the new result, never a mix.
"""

from __future__ import annotations

import operator
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterator, Sequence

import numpy as np

from .engine.annotations import Annotation, Annotations
from .engine.blend import blended_result
from .engine.frame_outputs import FrameResult
from .engine.frame_prep import Geometry
from .engine.hardware import resolve_device
from .engine.heap import release_free_heap
from .engine.propagator import CHECKPOINTS, AdaptProgress, Propagator
from .engine.results import ResultStore, StoredResult
from .engine.run_plan import Direction, PropagationReport, combined_report, plan_runs
from .engine.settings import EngineSettings
from .io.frames import FrameSource, open_frames
from .io.masks import add_objects, mask_digest
from .io.packed_masks import labels_present
from .model.checkpoint import load_model

ProgressFn = Callable[[int, int, int], None]
"""progress(frame_index, frames_done, frames_total), called after each frame's result is stored."""


@dataclass(frozen=True)
class FrameSnapshot:
    """One frame's masks as they were when taken (`AnnotationSession.snapshot`), to be read later, on a saving
    thread, without copies held meanwhile: stored masks are replaced, never changed in place, so this keeps
    references only (session 17: saving 2,000 imported 1080p masks queued 4 GB of copies)."""

    painted: Annotation | None  # the user's annotation, if the frame is annotated
    result: StoredResult | None  # the propagated or imported result, if any
    entering: np.ndarray | None  # objects waiting to enter there (not annotated frames only; read-only)

    @property
    def annotation(self) -> np.ndarray | None:
        """The user's annotation (a fresh array), None if the frame is not annotated."""
        return None if self.painted is None else self.painted.labels()

    def labels(self) -> np.ndarray | None:
        """What `AnnotationSession.labels` gave then: the annotation, else the result with the waiting objects
        added, else those objects alone, else None (a fresh array)."""
        if self.painted is not None:
            return self.painted.labels()
        result = None if self.result is None else self.result.label_map()
        if self.entering is None:
            return result
        return self.entering.copy() if result is None else add_objects(result, self.entering)

    def soft(self) -> tuple[list[int], np.ndarray] | None:
        """The propagated soft maps as stored (object ids, uint8 [K,h,w] at the working size), for saving them;
        None for annotated frames and results without soft maps."""
        return None if self.painted is not None else self.result_soft()

    def result_labels(self) -> np.ndarray | None:
        """The stored result alone, also under an annotation (the mask shown again once it is removed)."""
        return None if self.result is None else self.result.label_map()

    def result_soft(self) -> tuple[list[int], np.ndarray] | None:
        """The stored result's soft maps (object ids, uint8 [K,h,w]), also under an annotation."""
        maps = None if self.result is None else self.result.soft_maps()
        return None if maps is None else (list(self.result.obj_ids), maps)  # type: ignore[union-attr]


def _background(frames: list[int], size: tuple[int, int]) -> Iterator[FrameResult]:
    """The results of a run that seeks no object: every frame background, without the network. They are stored
    as any run's (blended, counted, written by the CLI), so the frames after an all-background start show what
    it says rather than keeping older masks."""
    for index in frames:
        yield FrameResult(index, np.zeros(size, np.uint8), np.zeros((0, *size), np.uint8), 0.0)


def _checked_soft(soft: tuple[Sequence[int], np.ndarray]) -> tuple[list[int], np.ndarray]:
    """Soft maps given to `set_result`: one uint8 map [h,w] per object id, else a ValueError now (QA pass 21:
    maps of two objects for one id were taken, and reading them failed later with a reshape error)."""
    obj_ids, probs = [operator.index(o) for o in soft[0]], np.asarray(soft[1])
    if probs.dtype != np.uint8 or probs.ndim != 3 or probs.shape[0] != len(obj_ids):
        raise ValueError(f"soft maps are uint8 [objects, height, width], one per object id: got {probs.dtype} "
                         f"{list(probs.shape)} for {len(obj_ids)} object ids")
    if len(set(obj_ids)) != len(obj_ids) or not all(1 <= o <= 254 for o in obj_ids):
        raise ValueError(f"soft maps' object ids must be distinct labels in 1..254, not {obj_ids}")
    return obj_ids, probs


def check_weights(settings: EngineSettings) -> str:
    """The network the settings' weights file holds, loaded on the CPU to see that it loads; `WeightsError`,
    saying why, for a file that is missing, damaged or of another network. For a settings dialog to refuse a file
    when it is chosen rather than at the next propagation (QA pass 37: a missing file was "applied", and said
    only at the next F)."""
    return load_model(settings.model, settings.weights, settings.random_init).cfg.name


def check_device(settings: EngineSettings) -> None:
    """`StmError` where the settings' device is not on this machine (CUDA asked for without one), for a settings
    dialog to say before it closes (QA pass 73: said after, the dialog's other edits were lost)."""
    resolve_device(settings.device)


class AnnotationSession:
    """One open video with its annotations and results, and the engine that propagates them."""

    def __init__(self, frames: FrameSource, settings: EngineSettings | None = None,
                 propagator: Propagator | None = None) -> None:
        self.frames = frames
        self.settings = settings or EngineSettings()
        self._lock = threading.RLock()
        self._annotations: dict[int, Annotation] = {}
        self._entering: dict[int, np.ndarray] = {}  # masks of objects entering there, until a run reaches it
        self._entered: dict[int, frozenset[int]] = {}  # objects that entered there (see `entered`)
        self._results = ResultStore()
        self._passes: dict[tuple, tuple[list[int], list[int]]] = {}  # see `_held`
        self._removals = 0  # objects removed so far: a run under way when one is removed ends there
        self._propagator = propagator or Propagator(self.settings)

    @classmethod
    def open(cls, path: str | Path, settings: EngineSettings | None = None) -> "AnnotationSession":
        """Open a folder of frames or a video file; raises `InputError` with a clear message."""
        return cls(open_frames(path), settings)

    # ---- frames -------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the source frames; every mask in and out has this size."""
        return self.frames.size

    @property
    def fps(self) -> float | None:
        """Frames per second of a video file (None for a frame folder): the overlay video's default rate."""
        return self.frames.fps

    @property
    def frame_times(self) -> list[float] | None:
        """Each frame's time in seconds from the first, for a video file (None for a frame folder): a video of
        variable frame rate keeps its timing in the overlay video."""
        return self.frames.times

    @property
    def source_path(self) -> Path:
        """The video file or frame folder this session reads."""
        return self.frames.path

    def frame_file_name(self, index: int) -> str:
        """Frame `index`'s file name, for outputs that list frames by file ('00000.jpg'; a video's frames are
        named as extracted PNGs would be)."""
        return self.frames.file_name(self._check_index(index))

    @property
    def frame_names(self) -> list[str]:
        """File stems used for mask files, e.g. '00000' for 00000.jpg or frame index 0 of a video."""
        return self.frames.names

    def frame(self, index: int) -> np.ndarray:
        """RGB uint8 image (H, W, 3) of frame `index`."""
        return self.frames[self._check_index(index)]

    def frame_decode_cost(self, index: int) -> int:
        """How many frames reading frame `index` would decode now (0: at hand; a far jump into a long-GOP video
        decodes up to the whole GOP, seconds at 1080p)."""
        return self.frames.decode_cost(self._check_index(index))

    def check_frames(self) -> None:
        """`InputError` for the first frame no run can get past: of another size than the first (a frame folder's,
        read from headers only, about 0.15 ms a frame), said before any work rather than when a run gets there."""
        self.frames.check_sizes()

    def prepare(self) -> None:
        """Load the network now (it loads lazily otherwise); raises `WeightsError` for a bad weights file."""
        self._propagator.model

    def warm_up(self) -> None:
        """`prepare`, then run the network once at this video's working size, so that the first propagation
        shows its first frame without the one-time costs (inference copy, kernel selection). Takes 0.2-0.4 s
        with the shipped model on a 2-core CPU (seconds with stm-r50): call it from a background thread; a
        propagation already running makes it a no-op."""
        self._propagator.warm_up(self.frames.size)

    @property
    def device(self) -> str:
        return self._propagator.device_name

    # ---- annotations ----------------------------------------------------------------------------------
    def set_annotation(self, index: int, labels: np.ndarray) -> None:
        """Make frame `index` a user-annotated frame with this label map (uint8 HxW, 0 = background).

        Annotated frames join STM memory and are never overwritten by propagation.
        """
        index = self._check_index(index)
        labels = self._check_labels(labels)
        annotation = Annotation.of(labels)
        with self._lock:
            waiting = self._entering.get(index) if index not in self._annotations else None
            self._annotations[index] = annotation
            if waiting is not None:  # painted before a run reached them, the waiting objects enter here all the
                self.note_entered(index, (labels_present(waiting) - {0}) & set(annotation.objects()))  # same (QA 63)
        self._propagator.forget_frame(index)

    def add_entering(self, index: int, labels: np.ndarray, wait: bool = False) -> bool:
        """Objects that enter the video on frame `index` (the Cutie/XMem convention: a mask showing only them).
        They join the frame's mask: at once if it has one (it becomes an annotated frame; returns True), else,
        or with `wait` where the frame is not annotated (its result is out of date: joined now, it would become
        an annotation), when a forward propagation reaches the frame (returns False). Until then, `labels(index)`
        shows them (over a result a backward run left there) and no run tracks them, so they never appear before
        the frame where they enter. An annotation painted there starts from what `labels` showed, so it holds
        them; removing it leaves them waiting again. An id the frame's mask already shows (an object tracked from an
        earlier annotation) is not added but replaced there by these pixels, as a correction of it on that frame,
        the convention of Cutie's and XMem's masks too (`add_objects`)."""
        index = self._check_index(index)
        labels = self._check_labels(labels)
        with self._lock:
            painted = self._annotations.get(index)
            present = self._results.labels(index) if painted is None else painted.labels()
            if present is None or wait and painted is None:
                waiting = self._entering.get(index)
                entering = labels.copy() if waiting is None else add_objects(waiting, labels)
                entering.setflags(write=False)  # replaced, never changed, like annotations
                self._entering[index] = entering
                return False
        self.set_annotation(index, add_objects(present, labels))
        self.note_entered(index, labels_present(labels) - {0})
        return True

    def entering_frames(self) -> list[int]:
        """Frames whose entering objects (`add_entering`) wait for a forward run to reach them."""
        with self._lock:
            return sorted(i for i in self._entering if i not in self._annotations)

    def entering_labels(self, index: int) -> np.ndarray | None:
        """The objects waiting to enter on frame `index`, alone (a backward run may have given the frame a
        result meanwhile, which `labels` then shows); None if none wait there."""
        index = self._check_index(index)
        with self._lock:
            waiting = self._entering.get(index) if index not in self._annotations else None
            return None if waiting is None else waiting.copy()

    def _merge_entering(self, index: int) -> bool:
        """A run reached pending entering frame `index`: its objects join the result there, as an annotation."""
        with self._lock:
            new = self._entering.get(index)
            present = self._results.labels(index)
            if new is None or present is None or index in self._annotations:
                return False
            del self._entering[index]
        self.set_annotation(index, add_objects(present, new))
        self.note_entered(index, labels_present(new) - {0})
        return True

    def entered(self) -> dict[int, list[int]]:
        """{annotated frame: objects that entered there}: a run back from that frame does not seek them unless
        they are annotated before it, so they stay absent before it at every propagation, as the import said (QA
        pass 60: the second F drew them there). The app saves this with the workspace."""
        with self._lock:
            return {i: sorted(ids) for i, ids in self._entered.items() if i in self._annotations}

    def note_entered(self, index: int, obj_ids: Collection[int]) -> None:
        """Record that objects `obj_ids` entered on frame `index` (as `entered` gives it back)."""
        index = self._check_index(index)
        with self._lock:
            self._entered[index] = self._entered.get(index, frozenset()) | frozenset(int(o) for o in obj_ids)

    def remove_annotation(self, index: int) -> None:
        """Turn an annotated frame back into an ordinary one: its result from before it was annotated (labels,
        soft maps, uncertainty), if it had one, is its mask again; undoing a first stroke relies on that."""
        index = self._check_index(index)
        with self._lock:
            self._annotations.pop(index, None)
            self._entered.pop(index, None)  # painted again, its objects are painted ones (QA pass 63)
        self._propagator.forget_frame(index)

    def set_result(self, index: int, labels: np.ndarray, uncertainty: float = float("nan"),
                   soft: tuple[list[int], np.ndarray] | None = None, if_absent: bool = False) -> bool:
        """Store a label map as this frame's result without annotating it (imported masks, or a saved result
        read back with the `uncertainty` and `soft` maps, as `snapshot(i).soft()` gave them, it had when
        propagated). On an annotated frame it is the result shown again once the annotation is removed. With
        `if_absent`, a frame that has a result keeps it: a saved result read back while a propagation runs
        must not replace a newer one stored between the check and the store. Returns whether it stored."""
        index = self._check_index(index)
        labels = self._check_labels(labels)
        obj_ids, probs = _checked_soft(soft) if soft is not None else (None, None)
        with self._lock:
            if if_absent and self._results.has(index):
                return False
            self._results.put(index, labels, probs, obj_ids, uncertainty)
            return True

    def restore_replaced(self, index: int) -> bool:
        """Give frame `index` back the result a preview replaced, while the preview is still its result: after
        the correction the preview came from is undone, the result from before it is current again, and
        propagating would only recompute it. Returns whether it did."""
        index = self._check_index(index)
        with self._lock:
            return self._results.restore(index)

    def on_same_frames(self, settings: EngineSettings) -> "AnnotationSession":
        """A new session, without masks, on this one's frames (decoded frames kept) with other engine settings."""
        return AnnotationSession(self.frames, settings)

    def copy_masks_from(self, other: "AnnotationSession") -> None:
        """Take every annotation and result of `other` (same video), soft maps and uncertainty included, and its
        adaptations where these settings make them alike: a session rebuilt with other engine settings keeps all
        the work."""
        if (other.num_frames, other.frame_size) != (self.num_frames, self.frame_size):
            raise ValueError(f"that session is of another video ({other.num_frames} frames of "
                             f"{other.frame_size[1]}x{other.frame_size[0]}, this one {self.num_frames} of "
                             f"{self.frame_size[1]}x{self.frame_size[0]})")
        with other._lock:
            annotations, results, entering = dict(other._annotations), other._results.copy(), dict(other._entering)
            entered = dict(other._entered)
        with self._lock:
            self._annotations, self._results, self._entering, self._entered = annotations, results, entering, entered
        self._propagator.forget_all()
        self._propagator.take_adaptations(other._propagator)

    def annotated_frames(self) -> list[int]:
        with self._lock:
            return sorted(self._annotations)

    def is_annotated(self, index: int) -> bool:
        index = self._check_index(index)
        with self._lock:
            return index in self._annotations

    def annotation(self, index: int) -> np.ndarray | None:
        index = self._check_index(index)
        with self._lock:
            ann = self._annotations.get(index)
        return None if ann is None else ann.labels()

    def annotation_digest(self, index: int) -> str | None:
        """`mask_digest` of frame `index`'s annotation (None if not annotated), without decoding it."""
        index = self._check_index(index)
        with self._lock:
            ann = self._annotations.get(index)
        return None if ann is None else ann.digest

    def object_ids(self) -> list[int]:
        """Labels present in any annotated frame, ascending (the objects that propagation tracks)."""
        with self._lock:
            return Annotations(self._annotations).objects()

    def remove_object(self, obj_id: int) -> list[int]:
        """Erase one object from every annotation and result (its pixels become background). Returns the frames
        that are no longer annotated: where nothing painted is left once the object is gone (the annotation is
        then the result under it, or blank without one), since an annotated frame stops every run and joins
        the memory (QA pass 29: a frame painted only with the removed object stayed annotated)."""
        with self._lock:
            changed, ordinary = self._annotations_without(obj_id)
            for idx, new in list(self._entering.items()):
                if (new == obj_id).any():
                    new = np.where(new == obj_id, 0, new).astype(np.uint8)
                    if new.any():
                        new.setflags(write=False)
                        self._entering[idx] = new
                    else:
                        del self._entering[idx]
            self._results.remove_label(obj_id)
            self._entered = {i: ids - {obj_id} for i, ids in self._entered.items()}
            self._removals += 1
            for idx, labels in changed.items():
                if idx in ordinary:
                    del self._annotations[idx]
                else:
                    self._annotations[idx] = Annotation.of(labels)
        self._propagator.forget_all()
        return ordinary

    def unannotated_by_removing(self, obj_id: int) -> list[int]:
        """The frames `remove_object(obj_id)` would make ordinary frames: asked before, so the question says so
        (QA pass 78: a frame the object entered on lost its annotation without a word before)."""
        with self._lock:
            return self._annotations_without(obj_id)[1]

    def _annotations_without(self, obj_id: int) -> tuple[dict[int, np.ndarray], list[int]]:
        """The annotations holding `obj_id`, without it ({frame: labels}), and those of them with nothing painted
        left: equal to the result under them once it loses the object too, or blank without a result. Called
        with the lock held."""
        changed: dict[int, np.ndarray] = {}
        for idx, ann in self._annotations.items():
            if ann.areas.get(obj_id):  # counted already: no pass over the others' pixels
                labels = changed[idx] = ann.labels()
                labels[labels == obj_id] = 0
        ordinary = []
        for idx, labels in changed.items():
            result = self._results.labels(idx)
            if result is not None:
                result = np.where(result == obj_id, 0, result)
            if np.array_equal(labels, result) if result is not None else not labels.any():
                ordinary.append(idx)
        return changed, ordinary

    # ---- results --------------------------------------------------------------------------------------
    def labels(self, index: int) -> np.ndarray | None:
        """Label map (uint8 HxW) of frame `index`: the annotation, else the propagated result with the objects
        waiting to enter there (`add_entering`) added, as a forward run will add them, else those objects alone,
        else None. So a stroke painted there (which starts from this) keeps them."""
        return self.snapshot(index).labels()

    def snapshot(self, index: int) -> FrameSnapshot:
        """Frame `index`'s masks as they are now, to read later (see `FrameSnapshot`); costs no copy."""
        index = self._check_index(index)
        with self._lock:
            ann = self._annotations.get(index)
            waiting = self._entering.get(index) if ann is None else None  # not annotated: still pending
            return FrameSnapshot(ann, self._results.entry(index), waiting)

    def probability(self, index: int, obj_id: int) -> np.ndarray | None:
        """Soft-aggregated probability of object `obj_id` on frame `index` as uint8 HxW (255 = certain)."""
        index = self._check_index(index)
        with self._lock:
            ann = self._annotations.get(index)
            if ann is None:
                return self._results.probability(index, obj_id)
        return (ann.labels() == obj_id).astype(np.uint8) * 255

    def uncertainty(self) -> np.ndarray:
        """Per-frame uncertainty (mean entropy of the soft result on object boundaries); NaN = no result."""
        with self._lock:
            out = self._results.uncertainty_array(self.num_frames)
            for idx in self._annotations:
                out[idx] = 0.0
            return out

    def object_areas(self, obj_ids: Sequence[int]) -> np.ndarray:
        """Pixels of each of `obj_ids` in each frame's mask, int64 [frames, objects], -1 where a frame has no
        mask: where each object is found and where it is lost, for the timeline. Results are counted when
        stored and annotations once each, so this decodes no mask."""
        with self._lock:
            areas = self._results.areas()
            for index, ann in self._annotations.items():
                areas[index] = ann.areas
        out = np.full((self.num_frames, len(obj_ids)), -1, np.int64)
        for index, counts in areas.items():
            if index < self.num_frames:
                out[index] = [counts.get(o, 0) for o in obj_ids]
        return out

    def has_result(self, index: int) -> bool:
        index = self._check_index(index)
        with self._lock:
            return index in self._annotations or self._results.has(index)

    # ---- propagation ----------------------------------------------------------------------------------
    def propagate(self, start: int, direction: Direction = "forward", progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None, until_annotated: bool = True,
                  adapting: AdaptProgress | None = None, previewed: Callable[[int], None] | None = None,
                  until: int | None = None, entered: Callable[[int], None] | None = None,
                  kept: ProgressFn | None = None, return_runs: bool = True) -> PropagationReport:
        """Propagate the annotations from frame `start` forward, backward or both.

        Every annotated frame is in memory; each run (from `start`, and back from each annotated frame reached)
        seeks the objects annotated up to its own start and those its start's mask shows, so a run from an
        earlier frame does not find an object first painted on a later one, but the run back from there does
        (the blend of both fades it out towards the earlier frame). Objects that entered on a frame (`entered`)
        are not sought back from it. Where that leaves none, the run's frames are background, made without the
        network. A run stops
        at the next annotated frame in its direction when `until_annotated` is set (the frames beyond it belong
        to that annotation), else at the video's end; a frame annotated while the run is under way counts too
        (the run's memory predates it, so it stops there).
        A run from an annotated frame that stops at the next one is followed by a run back from that one over
        the same frames, and each frame between them keeps the blend of both by distance (`engine/blend.py`);
        `return_runs=False` leaves that out, so that every frame comes from the one direction asked for.
        `until` (with "forward" or "backward") ends the run after that frame at the latest; at or behind
        `start` nothing is propagated (the CLI merges a mask that adds objects there).
        `start` need not be annotated: then the run starts from its current result. Cancel with `cancel.set()`:
        no result is stored after it (those the network computed ahead are dropped), the call returns once the
        network's frame in flight is done, and every frame keeps its old or its new result. `remove_object`
        during the run cancels it the same way (its results would bring the object back).
        With test-time adaptation on, `adapting(done, steps)` reports its steps before the first frame. While
        an adaptation is to be done, the first `settings.preview_frames` frames of the run get a preview first
        (`previewed(frame)` after each), so a result shows at once; the adapted pass replaces them. After a
        correction the preview comes from the previous adaptation and replaces the old results (until the adapted
        pass replaces it, `restore_replaced` gives one back); before any
        adaptation it comes from the unadapted network and only fills frames without a result.
        A forward run that reaches a frame where objects enter (`add_entering`) stops there, adds them to the
        frame's result as its annotation (`entered(frame)` then), and goes on from it with them tracked too.
        A run asked for again after a cancel (or the finished half of a run both ways) goes on where it
        stopped, when nothing it used has changed: the frames it had done keep their results, each reported
        by `kept(frame, done, total)` instead of `progress` and counted in `done` all the same.
        """
        start = self._check_index(start)
        if direction not in ("forward", "backward", "both"):
            raise ValueError(f"direction must be 'forward', 'backward' or 'both', not {direction!r}")
        if until is not None and direction == "both":
            raise ValueError("`until` ends a run in one direction: propagate forward and backward separately")
        t0 = time.perf_counter()
        parts: list[tuple[float, PropagationReport]] = []
        done = 0

        def counted(report: ProgressFn | None) -> ProgressFn | None:  # the call's total from the start
            return None if report is None else \
                lambda index, n, total: report(index, done + n, max(done + total, planned))

        def run(run_start: int, run_direction: Direction, run_until: int | None) -> PropagationReport:
            offset = time.perf_counter() - t0
            part = self._propagate_run(run_start, run_direction, counted(progress), counted(kept), cancel,
                                       until_annotated, adapting, previewed, run_until, return_runs)
            parts.append((offset, part))
            return part

        def next_entering(after: int) -> int | None:
            return next((e for e in self.entering_frames() if e > after and (until is None or e <= until)), None)
        if direction == "backward" or next_entering(start) is None:
            return self._propagate_run(start, direction, progress, kept, cancel, until_annotated, adapting,
                                       previewed, until, return_runs)
        planned = self._planned(start, direction, until_annotated, until, return_runs, next_entering)
        if direction == "both":
            back = run(start, "backward", None)
            done += len(back.frames) + len(back.reused)
        run_start = start
        while True:
            stop = next_entering(run_start)
            part = run(run_start, "forward", until if stop is None else stop)
            done += len(part.frames) + len(part.reused)
            reached = stop in part.frames or stop in part.reused  # kept from a cancelled run: reached all the same
            if stop is None or part.cancelled or part.stopped_at is not None or not reached \
                    or not self._merge_entering(stop):
                break
            if entered is not None:
                entered(stop)
            run_start = stop
        return combined_report(start, direction, parts, time.perf_counter() - t0)

    def _propagate_run(self, start: int, direction: Direction, progress: ProgressFn | None,
                       kept: ProgressFn | None, cancel: threading.Event | None, until_annotated: bool,
                       adapting: AdaptProgress | None, previewed: Callable[[int], None] | None,
                       until: int | None, return_runs: bool) -> PropagationReport:
        """Runs from `start` with the annotations as they are now, and the runs back from the annotated frames
        they reach: all of a `propagate` call when no objects enter on the way."""
        with self._lock:
            annotations = Annotations(self._annotations)
            before = self._results.copy()  # what a frame's new result is blended with (a preview replaces it)
            removals = self._removals
            seed = annotations.get(start)
            if seed is None:
                seed = self._results.labels(start)
        if not annotations:
            raise ValueError("paint a mask on at least one frame before propagating")
        if seed is None:
            raise ValueError(f"frame {start} has no mask to propagate from")
        if not annotations.objects() and not self.entering_frames():
            raise ValueError("no objects to propagate: the annotations are empty")
        report = PropagationReport(start=start, direction=direction)
        t0 = time.perf_counter()

        def on_adapt(done: int, steps: int) -> None:
            report.adapt_seconds = time.perf_counter() - t0
            if adapting is not None:
                adapting(done, steps)
        plans = plan_runs(self.num_frames, start, direction, annotations, until_annotated, until, return_runs)
        directions = 2 if direction == "both" else 1  # the runs from `start`; those after them run back
        total = sum(len(frames) for _, frames in plans)
        done_by: dict[int, list[tuple[list[int], int]]] = {}  # frame -> (stored, position) of this call's passes
        for n, (run_start, frames) in enumerate(plans):
            if cancel is not None and cancel.is_set() or (n >= directions and report.stopped_at is not None) \
                    or self._removals != removals:
                break
            if n > 0:  # a return run blends with what the runs before it stored
                with self._lock:
                    before = self._results.copy()
            seed = annotations.get(run_start, seed)
            obj_ids = self._sought(run_start, frames, seed, annotations)
            origin = (run_start, annotations.digest(run_start)) if run_start in annotations else None  # + network
            preview = self.settings.preview_frames if n == 0 else 0
            pass_key = (run_start, frames[0] if frames else -1, mask_digest(seed), annotations.key(), tuple(obj_ids))
            held, held_serials = self._held(pass_key, frames)
            stored: list[int] = []  # serials of the results this pass stored, in order, while none is skipped

            def resumed(skipped: list[int]) -> None:
                stored[:] = held_serials
                for index in skipped:
                    report.reused.append(index)
                    if kept is not None:
                        kept(index, len(report.frames) + len(report.reused), total)
            results = self._propagator.run(self.frames, run_start, seed, frames, annotations, obj_ids, cancel,
                                           on_adapt, preview, held, resumed) if obj_ids \
                else _background(frames, self.frame_size)
            try:
                for r in results:
                    if cancel is not None and cancel.is_set():  # results computed ahead before it are dropped
                        break
                    with self._lock:
                        if self._removals != removals:  # its results hold an object removed meanwhile (QA pass 27:
                            break  # stored, they brought it back)
                        if r.index in self._annotations:  # painted while the run was in flight: the user wins
                            stored.append(-1)  # no later result of this pass can be continued from
                            if until_annotated:
                                report.stopped_at = r.index
                                break
                            continue
                        if r.fill_only and self._results.has(r.index):
                            continue
                        *blended, mine = blended_result(r, before, origin, obj_ids, annotations, self.frame_size)
                        self._results.put(r.index, *blended, None if origin is None else (*origin, r.network),
                                          provisional=r.preview, own=None if mine is None else (mine, r.uncertainty))
                        if not r.preview:
                            serial: int = self._results.serial(r.index)  # type: ignore[assignment]
                            for earlier, at in done_by.get(r.index, ()):  # a run back blended the frame: done
                                earlier[at] = serial  # as this call leaves it, for the run before it too
                            stored.append(serial)
                    if report.first_frame_seconds is None:
                        report.first_frame_seconds = time.perf_counter() - t0
                    if r.preview:
                        report.previewed.append(r.index)
                        if previewed is not None:
                            previewed(r.index)
                        continue
                    report.frames.append(r.index)
                    if progress is not None:
                        progress(r.index, len(report.frames) + len(report.reused), total)
            finally:
                results.close()  # stops the network thread's look-ahead after a break
                for at, frame in enumerate(frames[:len(stored)]):
                    done_by.setdefault(frame, []).append((stored, at))
                if stored:  # else the record of the last pass that did store stands (QA pass 22: a run cancelled
                    self._passes.pop(pass_key, None)  # before its first frame made it forgotten)
                    self._passes[pass_key] = (frames, stored)
                    while len(self._passes) > CHECKPOINTS:  # the engine continues no more passes
                        del self._passes[next(iter(self._passes))]
        report.cancelled = bool(cancel is not None and cancel.is_set()) or self._removals != removals
        report.seconds = time.perf_counter() - t0
        return report

    def _sought(self, run_start: int, frames: list[int], seed: np.ndarray, annotations: Annotations) -> list[int]:
        """The objects a run from `run_start` over `frames` seeks: those annotated up to its start and those its
        start's mask (`seed`) shows. An object first painted on a later frame is in memory but not sought before
        it by a run from an earlier frame (sixth GUI QA pass: object 2, painted on frame 26 only, appeared on
        frames 2-20 of a run from frame 0); the run back from that frame seeks it, as it does when propagated
        back from there, so the result is the same whichever of the two frames the user propagates from (QA pass
        62: they undid each other). Where that is none, the run's frames are background (QA pass 52: seeking
        every object there drew one painted later on frame 30 on frames 1-29 of a run from an all-background
        frame 0). Objects that entered on the start are not sought back from it (QA pass 60) unless annotated
        before it."""
        sought = set(annotations.objects(up_to=run_start)) | (labels_present(seed) - {0})
        if frames and frames[0] < run_start:
            with self._lock:
                sought -= self._entered.get(run_start, frozenset()) - set(annotations.objects(up_to=run_start - 1))
        return sorted(sought)

    def _held(self, pass_key: tuple, frames: list[int]) -> tuple[int, list[int]]:
        """(n, their serials): the first n frames of a pass over `frames` still hold, unreplaced, the results the
        last pass stored that started there, over them, from the same start mask, annotations and objects
        (`pass_key`). The engine continues after them when that pass's network was the same too (a cancelled
        run asked for again, or the finished half of a run both ways). QA pass 58: keyed by start and first
        frame only, a run after an undo took the results of the pass before the undo as its own."""
        if not frames or (record := self._passes.get(pass_key)) is None:
            return 0, []
        order, serials = record
        n = 0
        with self._lock:
            for earlier, frame, serial in zip(order, frames, serials):
                if earlier != frame or self._results.serial(frame) != serial:
                    break
                n += 1
        return n, serials[:n]

    def _planned(self, start: int, direction: Direction, until_annotated: bool, until: int | None,
                 return_runs: bool, next_entering: Callable[[int], int | None]) -> int:
        """Frames a `propagate` call whose forward run stops where objects enter will propagate: its runs as
        planned now, each entering frame annotated once reached (one total for the progress of the whole call)."""
        with self._lock:
            marks = set(self._annotations)
        total = 0
        if direction == "both":
            total += sum(len(f) for _, f in plan_runs(self.num_frames, start, "backward", marks, until_annotated,
                                                      None, return_runs))
        leg = start
        while True:
            stop = next_entering(leg)
            plans = plan_runs(self.num_frames, leg, "forward", marks, until_annotated,
                              until if stop is None else stop, return_runs)
            total += sum(len(f) for _, f in plans)
            if stop is None or stop not in plans[0][1]:
                return total
            marks.add(stop)
            leg = stop

    # ---- resources ------------------------------------------------------------------------------------
    def memory_status(self) -> dict[str, float | int | str]:
        """Memory frames in use, cached feature frames and bytes, result bytes, device, and the shorter side the
        network works at for this video (`working_height`: small videos are scaled up, whatever the setting; 0
        while the weights that recommend it are still loading: QA pass 75 saw the source's 1080 px meanwhile)."""
        status = self._propagator.memory_status()
        known = status["model"] or self.settings.process_height is not None
        height = int(status["process_height"]) or None  # as the propagator works now, without loading it
        status["working_height"] = min(Geometry.for_source(self.frame_size, height).work) if known else 0
        with self._lock:  # the propagation thread adds results meanwhile
            status["result_bytes"] = self._results.nbytes
        return status

    def adaptation(self) -> bytes | None:
        """The network's latest adaptation to this video's annotations, as bytes to keep with the work (None:
        none made); `restore_adaptation` takes it back in a later session."""
        return self._propagator.adaptation_bytes()

    def adaptation_serial(self) -> int | None:
        """Which adaptation `adaptation()` gives now (None: none; 0: the one `restore_adaptation` gave back): it
        changes when a run adapts, or takes back one kept from before a correction that was undone. A session
        rebuilt with other engine settings keeps the serials of the adaptations it takes over."""
        return self._propagator.adaptation_serial

    def restore_adaptation(self, data: bytes) -> None:
        """Take back what `adaptation()` gave in an earlier session on this video: a run from the annotations it
        was made from then does not adapt again (minutes on a CPU) and gives the same masks as then, and a run
        after a correction continues from it. Ignored where it does not fit: other weights or engine settings,
        another working size, other frames, damaged bytes (the run adapts anew)."""
        self._propagator.keep_saved(data)

    def release_memory(self) -> None:
        """Drop cached encoder features, decoded frames and device memory (results, annotations and the network's
        adaptations stay: QA pass 83 found minutes of adapting thrown away), and hand the freed heap back to the
        system so that the process's memory falls where the user watches it (QA pass 31: after scrubbing a 1080p
        video, 800 MB of decoded frames stayed)."""
        self._propagator.forget_features()
        self.frames.close()  # a video reopens on its next read
        release_free_heap()

    def _check_index(self, index: int) -> int:
        """`index` as a plain int (a NumPy integer kept as a key would print as np.int64(5)), if it is a frame."""
        index = operator.index(index)
        if not 0 <= index < self.num_frames:  # a negative index would wrap onto the last frames
            raise IndexError(f"frame {index} is outside 0..{self.num_frames - 1}")
        return index

    def _check_labels(self, labels: np.ndarray) -> np.ndarray:
        """A label map as uint8: integers (or booleans) 0..254 of the frames' size; 255 is DAVIS's "void",
        which a saved mask could not keep."""
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"a mask is a 2-D label map (height x width); this one has shape {labels.shape}")
        if labels.shape != self.frame_size:
            raise ValueError(f"mask is {labels.shape[1]}x{labels.shape[0]}, frames are "
                             f"{self.frame_size[1]}x{self.frame_size[0]}")
        if labels.dtype != np.bool_ and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"mask labels must be integers (object ids), not {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() > 254):
            raise ValueError("mask labels must lie in 0..254 (255 is DAVIS's void label)")
        return labels.astype(np.uint8, copy=False)
