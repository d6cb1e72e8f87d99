"""Runs propagation on a worker thread and feeds its results into the document as they arrive.

Only one run at a time: asking for another while one runs cancels it and starts the new one as soon as
the old one has returned (the engine stops after the frame in flight), so the GUI never blocks on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QObject, Signal

from stm_core.session import AnnotationSession, Direction, PropagationReport

from .document import Document
from .workers import Progress, Task

ADAPT = "adapt"  # tags adaptation progress among the frame progress of a propagation task
PREVIEW = "preview"  # tags a preview result (shown while adapting, redone after it)
ENTERED = "entered"  # tags a frame where imported objects entered: it became an annotated frame
KEPT = "kept"  # tags a frame whose result from the same run, cancelled before, stands (it went on from there)


@dataclass(frozen=True)
class _Request:
    start: int
    direction: Direction


def catch_up_runs(annotated: list[int], needed: np.ndarray) -> list[tuple[int, Direction]]:
    """(start, direction) of the runs that give every frame marked `needed` (no mask, or one out of date) a mask
    from the annotated frames around it: back from the first annotated frame, and on from each annotated frame
    whose stretch to the next one (or to the end) needs it; the run from an annotated frame to the next comes
    back from that one, so each stretch gets both sides. Runs from one frame both ways are one run."""
    marks, n = sorted(annotated), len(needed)
    if not marks:
        return []
    runs: list[tuple[int, Direction]] = []
    if needed[:marks[0]].any():
        runs.append((marks[0], "backward"))
    for here, after in zip(marks, [*marks[1:], n]):
        if needed[here + 1:after].any():
            if runs and runs[-1] == (here, "backward"):
                runs[-1] = (here, "both")
            else:
                runs.append((here, "forward"))
    return runs


def _summed(reports: list[PropagationReport]) -> PropagationReport:
    """The reports of the runs of one catch-up as one, as from its first start both ways."""
    last = reports[-1]
    return replace(last, start=reports[0].start, direction="both",
                   frames=[f for r in reports for f in r.frames], previewed=[f for r in reports for f in r.previewed],
                   reused=[f for r in reports for f in r.reused], seconds=sum(r.seconds for r in reports),
                   adapt_seconds=sum(r.adapt_seconds for r in reports),
                   first_frame_seconds=reports[0].first_frame_seconds)


class PropagationController(QObject):
    """Start, cancel and watch propagation runs of the document's session."""

    started = Signal(str, int)
    """direction, start frame"""
    progress = Signal(int, int, int, float)
    """frame just stored, frames done, frames planned, frames per second"""
    adapting = Signal(int, int)
    """test-time adaptation steps done, steps planned (before the first frame of a run)"""
    previewed = Signal(int)
    """a frame got a preview result (before adaptation; the adapted pass redoes it)"""
    finished = Signal(object)
    """the `PropagationReport` of a run that returned (cancelled or not)"""
    failed = Signal(str, str)
    runFailed = Signal(str, int)
    """a run ended in an error (after `failed` said it): its title, and the frames done before it"""
    runningChanged = Signal(bool)

    def __init__(self, document: Document) -> None:
        super().__init__()
        self._document = document
        self._task: Task | None = None
        self._request: _Request | None = None  # what the running task was asked for
        self._pending: _Request | None = None
        self._t0 = 0.0
        self._kept = 0  # frames of the run in progress kept from before: not computed, so not in its fps
        self._done = self._since = 0  # frames done so far, and those computed before the last adaptation
        self._after_stop: list[Callable[[], None]] = []  # see `stop_then`
        self._annotated_at_start: frozenset[int] = frozenset()  # see `started_with`
        self._run_key = b""  # the annotations the last run started from
        self._adapting = False  # the run is previewing or adapting the network, until its last step
        self._queue: list[_Request] = []  # the runs of a catch-up (`start_all`) still to go, after this one
        self._series: list[PropagationReport] = []  # the reports of the catch-up's runs so far
        self.catching_up = False  # the last runs asked for were a catch-up (`start_all`), not one run

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def run_asked(self) -> tuple[Direction, int] | None:
        """(direction, start frame) of the run in progress, to say how to ask for it again once stopped."""
        return None if self._task is None or self._request is None else (self._request.direction,
                                                                         self._request.start)

    @property
    def adapting_now(self) -> bool:
        """The running run is adapting the network to the video, or previewing before it (stopping it loses
        the steps taken)."""
        return self.running and self._adapting

    def started_with(self, frame: int) -> bool:
        """Whether the running run started with `frame` annotated: only then may its annotation be in the run's
        memory. A frame annotated during the run is never read by it (the run stops there, or has passed it)."""
        return self.running and frame in self._annotated_at_start

    @property
    def annotations_changed(self) -> bool:
        """The annotations changed since the last run started: the same run asked for again would start over."""
        return self._document.annotation_key() != self._run_key

    @property
    def replacing(self) -> bool:
        """The run in progress (or just returned) was cancelled to start another one the user asked for."""
        return self._pending is not None

    def start_all(self) -> None:
        """Bring every frame up to date: the runs of `catch_up_runs` one after another (a cancel, an error or a
        run stopped by a frame annotated meanwhile ends them), with one note for all at the end. After several
        corrections, or masks imported for many frames, one key instead of one run from each annotated frame."""
        doc = self._document
        if doc.session is None:
            return
        doc.end_stroke()
        needed = ~doc.result_frames() | doc.stale_frames()
        if doc.annotated_frames() and not (runs := catch_up_runs(doc.annotated_frames(), needed)):
            self.failed.emit("Nothing to propagate", "Every frame has an up-to-date mask.")
            return
        if not doc.annotated_frames():
            self.start("forward")  # says what to do first
            return
        self.start(runs[0][1], runs[0][0])
        if self._task is not None or self._pending is not None:  # it started (or waits for the run it replaces)
            self._queue = [_Request(start, direction) for start, direction in runs[1:]]
            self.catching_up = True

    def start(self, direction: Direction, frame: int | None = None) -> None:
        """Propagate from `frame` (default: the current one); replaces a run in progress."""
        doc = self._document
        if doc.session is None:
            return
        doc.end_stroke()
        request = _Request(doc.current_frame if frame is None else frame, direction)
        self._queue, self._series, self.catching_up = [], [], False  # a run asked for replaces a catch-up's
        if not doc.annotated_frames():
            self.failed.emit("Nothing to propagate", "Paint a mask on a frame first: painting makes it an "
                                                     "annotated frame, and propagation spreads it to the others.")
            return
        if not doc.session.object_ids() and not doc.entering_frames():
            self.failed.emit("Nothing to propagate", "The annotated frames show no object: paint one (an "
                                                     "all-background frame says only where no object is).")
            return
        if (why := self._nothing_to_propagate(request)) is not None:
            self.failed.emit("Nothing to propagate", why)
            return
        if not doc.session.has_result(request.start):
            self.failed.emit("No mask on this frame", f"Frame {request.start + 1} has no mask to propagate from. "
                                                      "Paint it, or go to a frame that has one (Navigate ▸ "
                                                      "Previous / Next annotated frame).")
            return
        if self._task is not None:
            self._pending = request
            self._task.cancel()
            return
        self._launch(request)

    def _nothing_to_propagate(self, request: _Request) -> str | None:
        """Why a run would reach no frame (the video's end, or an annotated frame, next to its start), or None;
        it used to report "done: 0 frames"."""
        doc, start = self._document, request.start
        if doc.num_frames == 1:
            return "Frame 1 is the only frame: there is no frame to propagate to."
        annotated = set(doc.annotated_frames())
        steps = {"forward": (1,), "backward": (-1,), "both": (1, -1)}[request.direction]
        reasons = []
        for step in steps:
            side, nxt = ("after" if step > 0 else "before"), start + step
            if not 0 <= nxt < doc.num_frames:
                reasons.append(f"there is no frame {side} it")
            elif nxt in annotated:
                reasons.append(f"frame {nxt + 1}, {side} it, is annotated")
            else:
                return None
        return f"Nothing to propagate from frame {start + 1}: {' and '.join(reasons)}."

    def cancel(self) -> None:
        """Stop the run in progress (and forget a queued one); results so far stay."""
        self._pending = None
        self._queue = []
        if self._task is not None:
            self._task.cancel()

    def stop_then(self, action: Callable[[], None]) -> None:
        """Cancel the run (and forget a queued one), and do `action` once it has returned, before any run asked
        for meanwhile starts; at once if none runs. The GUI does not wait: an adaptation step in flight takes
        seconds (QA pass 21: removing an object froze the window for up to 12 s)."""
        if self._task is None:
            action()
            return
        self._after_stop.append(action)
        self.cancel()

    def cancel_and_wait(self, timeout_ms: int = 60_000) -> None:
        """Cancel and block until the worker returned: needed before the session itself changes."""
        task = self._task
        self.cancel()
        if task is not None:
            task.wait(timeout_ms)
            self._on_finished(task)

    def _launch(self, request: _Request) -> None:
        session = self._document.session
        assert session is not None
        doc = self._document
        # the annotations this run propagates (a later change outdates it); a run from an out-of-date result
        # continues it, so what it makes is out of date too (QA pass 21: F there cleared the red marks)
        stale_start = not doc.is_annotated(request.start) and bool(doc.stale_frames()[request.start])
        self._run_key = doc.annotation_key()
        self._annotated_at_start = frozenset(doc.annotated_frames())
        key = [b"" if stale_start else self._run_key]

        def run(progress: Progress, cancel: threading.Event) -> PropagationReport:
            return session.propagate(request.start, request.direction, progress, cancel,
                                     adapting=lambda done, steps: progress(ADAPT, done, steps),
                                     previewed=lambda frame: progress(PREVIEW, frame),
                                     entered=lambda frame: progress(ENTERED, frame),
                                     kept=lambda frame, done, total: progress(KEPT, frame, done, total))
        task = Task(run, self)
        task.progress.connect(lambda args: self._on_progress(session, key, args))
        # a run of a video closed meanwhile ends unsaid (QA pass 22: its note showed on the next video)
        task.succeeded.connect(lambda report: self._on_report(report) if doc.session is session else None)
        task.failed.connect(lambda *_: self._queue.clear())
        task.failed.connect(self.failed)
        task.failed.connect(lambda title, _text: self.runFailed.emit(title, self._done))
        task.finished.connect(lambda: self._on_finished(task))
        self._task, self._request = task, request
        self._t0, self._kept, self._done, self._since = time.perf_counter(), 0, 0, 0
        self._adapting = False
        task.start()
        self.started.emit(request.direction, request.start)
        self.runningChanged.emit(True)

    def _on_progress(self, session: AnnotationSession, key: list[bytes], args: tuple) -> None:
        if self._document.session is not session:  # a late signal from before the session was replaced
            return
        if args[0] == ENTERED:
            key[0] = self._document.note_entered(args[1], key[0])
            return
        if args[0] == ADAPT:
            # frames per second count from the end of adaptation, and so do the frames (QA pass 22: the rate
            # jumped 3-5x where objects entered and the engine adapted again)
            _, done, steps = args
            self._adapting = done < steps
            self._t0, self._since = time.perf_counter(), self._done - self._kept
            self.adapting.emit(done, steps)
            return
        if args[0] == PREVIEW:  # adaptation comes next: from here on a stop loses it (QA pass 40)
            self._adapting = True
            self._document.note_result(args[1], key[0], preview=True)
            self.previewed.emit(args[1])
            return
        # a kept frame's result, from the same run with the same annotations, is as it was: nothing to show,
        # save or mark (QA pass 22: 399 masks written again, redo dropped on kept frames)
        kept = args[0] == KEPT
        if kept:
            self._kept += 1
            args = args[1:]
        frame, done, total = args
        self._done = done
        elapsed = time.perf_counter() - self._t0
        if not kept:
            self._document.note_result(frame, key[0])
        computed = done - self._kept - self._since
        self.progress.emit(frame, done, total, computed / elapsed if elapsed > 0 else 0.0)

    def _on_report(self, report: PropagationReport) -> None:
        """A run returned: its note, or, within a catch-up, the note of all its runs once the last has returned
        (one that did not finish ends the catch-up)."""
        if self._pending is not None:  # replaced by a run asked for: its note is not shown (`replacing`)
            self.finished.emit(report)
            return
        self._series.append(report)
        if report.cancelled or report.stopped_at is not None:
            self._queue = []
        if not self._queue:
            series, self._series = self._series, []
            self.finished.emit(series[0] if len(series) == 1 else _summed(series))

    def _on_finished(self, task: Task) -> None:
        if self._task is not task:
            return
        self._task = None
        task.deleteLater()
        actions, self._after_stop = self._after_stop, []
        for action in actions:
            action()
        pending, self._pending = self._pending, None
        if pending is None and self._queue and self._document.session is not None:
            pending = self._queue.pop(0)  # the catch-up goes on
        if pending is not None and self._document.session is not None:
            self._launch(pending)
        else:
            self._queue, self._series = [], []
            self.runningChanged.emit(False)

