"""Status bar: frame position, propagation progress and speed, device, engine memory and a RAM/GPU gauge.

The permanent widgets on the right are kept narrow and given the width their longest text needs, so the
notes shown on the left (hints, "Propagation done …") keep as much room as the window allows. Where the window
is too narrow for the note and all of them (a run's progress bar and Cancel button need 350 px more), the least
needed ones step aside while the note would be cut (to NOTE_MIN_WIDTH at least), and come back when there is room.
"""

from __future__ import annotations

import os
import time

import psutil
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QSizePolicy, QStatusBar, QWidget

from stm_core.session import PropagationReport

from ..controller import AppController
from ..shortcuts import KeyMap, hint, keymap

POLL_MS = 1000
GB = 1024 ** 3
NOTE_MIN_WIDTH = 160
NAME_CHARS = 28
"""The most characters of a frame's name the status bar shows (the whole name is its tooltip)."""


class _NoteLabel(QLabel):
    """The status bar's note, elided to the room the permanent widgets leave it and elided anew whenever that
    room changes (a resize, the progress bar appearing or going); the whole note is the tooltip when cut."""

    def __init__(self) -> None:
        super().__init__()
        self.note = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def set_note(self, text: str) -> None:
        self.note = text
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self.note, Qt.TextElideMode.ElideRight, max(self.width(), 0))
        self.setText(shown)
        self.setToolTip(self.note if shown != self.note else "")


class StatusBar(QStatusBar):
    cancelRequested = Signal()
    clearMemoryRequested = Signal()

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._doc = controller.document
        self._process = psutil.Process(os.getpid())
        self.frame_label = QLabel()
        self.zoom_label = QLabel()
        metrics = self.fontMetrics()
        self.zoom_label.setMinimumWidth(metrics.horizontalAdvance("Zoom 1600%") + 4)
        self.progress = QProgressBar(textVisible=True)
        longest = ("backward 9999/9999 frames · 99.9 fps", "Adapting 999/999 · 59 min left")
        # room for the longest text (QA pass 76: "fps" spilled past the bar, and the time left wrapped, half shown)
        self.progress.setFixedWidth(max(metrics.horizontalAdvance(text) for text in longest) + 48)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel (Esc)")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.device_label = QLabel()
        self.memory_label = QLabel()
        self.gauge = QProgressBar(maximumWidth=170, textVisible=True)
        self.gauge.setToolTip("Memory used by this program (and by the GPU, if one is used)")
        self.clear_button = QPushButton("Clear memory")
        self.clear_button.setToolTip("Drop the engine's cached features and GPU memory; masks are kept")
        self.clear_button.clicked.connect(self.clearMemoryRequested)
        # permanent widgets on the right; the notes (showMessage) on the left, in the room left
        self.note_label = _NoteLabel()
        self.addWidget(self.note_label, 1)
        self._note_timer = QTimer(self, singleShot=True)
        self._note_timer.timeout.connect(self._note_timed_out)
        self._wanted: dict[QWidget, bool] = {}
        self._frame_width = 0  # the frame label's widest for this video, as `_fit` counts it
        for widget in (self.frame_label, self.zoom_label, self.progress, self.cancel_button,
                       self.device_label, self.memory_label, self.gauge, self.clear_button):
            self.addPermanentWidget(widget)
            self._wanted[widget] = not widget.isHidden()
        # stepping aside first to last: the zoom shows on the canvas, Clear memory matters least during a run
        self._optional = (self.zoom_label, self.clear_button, self.memory_label, self.device_label, self.gauge)

        self._doc.frameChanged.connect(self._update_frame)
        self._doc.annotationsChanged.connect(self._update_frame)
        self._doc.sessionChanged.connect(self._update_frame)
        self._doc.resultsChanged.connect(self._update_frame)
        self._doc.imageReady.connect(self._update_frame)
        prop = controller.propagation
        prop.started.connect(self._on_started)
        prop.progress.connect(self._on_progress)
        prop.adapting.connect(self._on_adapting)
        prop.previewed.connect(self._on_previewed)
        prop.runningChanged.connect(self._on_running)
        prop.finished.connect(self._on_finished)
        prop.runFailed.connect(self._on_run_failed)
        controller.message.connect(self._on_message)
        controller.guide.connect(self._on_guide)
        controller.videoOpened.connect(self._on_video_opened)
        for changed in (self._doc.annotationsChanged, self._doc.maskStored):
            changed.connect(self._drop_run_note)
        self._note = ("", 0.0)
        self._lasting = False  # the note shown is a finished run's that stays until the next run
        self._behind = ""  # a lasting note a passing one covers: shown again when that one goes
        self._adapt_from: tuple[float, int] | None = None  # (when, steps done) the adaptation was first seen
        self._run_note = False  # the lasting note (shown, or behind a passing one) is a run's
        self._timer = QTimer(self, interval=POLL_MS)
        self._timer.timeout.connect(self.poll_memory)
        self._timer.start()
        self._direction = ""
        self._keys = keymap()  # the window gives the user's (`show_keys`)
        self._update_frame()
        self.poll_memory()

    def show_keys(self, keys: KeyMap) -> None:
        self._keys = keys
        self.cancel_button.setText(f"Cancel ({hint(keys, 'propagate.cancel')})")

    def _update_frame(self, *_: object) -> None:
        doc = self._doc
        self._want(doc.is_open, self.zoom_label, self.device_label, self.memory_label)
        self.clear_button.setEnabled(doc.is_open)
        if not doc.is_open:
            self.frame_label.setText("No video")
            return
        i = doc.current_frame
        name = doc.frame_name(i)
        stale = doc.stale_frames()
        # a red frame named as such, not only by the timeline's colour (QA pass 29)
        mark = (" · annotated" if doc.is_annotated(i) else " · preview (out of date)" if doc.is_preview(i)
                else " · out of date" if i < len(stale) and stale[i] else "")
        mark += " · decoding…" if doc.picture_pending else ""
        # a long file name shortened in its middle, whole in the tooltip (QA pass 107: 183 characters pushed the
        # notes off the bar)
        short = name if len(name) <= NAME_CHARS else f"{name[:NAME_CHARS // 2 - 1]}…{name[-(NAME_CHARS // 2):]}"
        self.frame_label.setText(f"Frame {i + 1} / {doc.num_frames} ({short}){mark}")
        self.frame_label.setToolTip(name if short != name else "")
        self._fit()

    def set_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"Zoom {zoom * 100:.0f}%")
        self._fit()

    def _show_waiting(self, text: str) -> None:
        """A phase with no count yet: an empty bar that says what is happening (a busy bar, range 0..0, draws
        no text at all: the sixth GUI QA pass never saw these notes)."""
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(text)

    def _on_started(self, direction: str, start: int) -> None:
        self._direction = direction
        self._show_waiting(f"Propagating {direction} from {start + 1}…")

    def _on_adapting(self, done: int, steps: int) -> None:
        """Adaptation steps with the time left, measured from its own steps (QA pass 72: "2/60" for a minute
        said neither what this is nor how long it takes)."""
        now = time.monotonic()
        if self._adapt_from is None or done < self._adapt_from[1]:
            self._adapt_from = (now, done)
        t0, first = self._adapt_from
        left = f" · {_duration((now - t0) / (done - first) * (steps - done))} left" \
            if first < done < steps else ""
        self.progress.setRange(0, max(steps, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"Adapting %v/%m{left}")
        self.progress.setToolTip("Adapting to this video: fine-tuning the network to your annotated frames before "
                                 "propagating, once for a set of annotations (a correction adapts again, with half "
                                 "the steps). The Settings dialog sets the steps; "
                                 f"{hint(self._keys, 'propagate.cancel')} stops.")

    def _on_previewed(self, frame: int) -> None:
        self._show_waiting(f"Preview to frame {frame + 1}, adapting next…")

    def _on_progress(self, _frame: int, done: int, total: int, fps: float) -> None:
        self._adapt_from = None
        self.progress.setToolTip("")
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{self._direction} %v/%m frames · {fps:.1f} fps")

    def _on_running(self, running: bool) -> None:
        if running:  # a note from before the run is not about how it ended (QA pass 17: "press F to go on"
            self._note = ("", 0.0)  # stayed in front of "Propagation done" after F was pressed)
            self._behind, self._adapt_from = "", None
            if self._lasting:  # the last run's "propagate again" is done now
                self.clearMessage()
        self._want(running, self.progress, self.cancel_button)

    def _want(self, shown: bool, *widgets: QWidget) -> None:
        """Show or hide permanent widgets as the state asks; `_fit` then decides which of them have room."""
        for widget in widgets:
            self._wanted[widget] = shown
        self._fit()

    def _fit(self) -> None:
        """Show the wanted widgets, leaving out optional ones (least needed first) while the note would be cut:
        at the minimum window width a run's progress had pushed the bar past the window's edge, hiding the note
        and Cancel's neighbours, and on a 1024 px screen the notes that say what to do next were cut while the
        zoom and memory figures stayed (QA pass 92)."""
        spacing = self.style().pixelMetric(self.style().PixelMetric.PM_LayoutHorizontalSpacing) + 6
        note = self.note_label.fontMetrics().horizontalAdvance(self.note_label.note) + spacing
        room = self.window().width() - max(note, NOTE_MIN_WIDTH)  # not ours: a bar too wide sticks out of the window
        widths = {widget: max(widget.sizeHint().width(), widget.minimumWidth()) + spacing
                  for widget, shown in self._wanted.items() if shown}
        # the frame label counts at the widest it was for this video: its " · out of date" while scrubbing made the
        # figures beside it come and go (QA pass 93)
        self._frame_width = max(self._frame_width, widths.get(self.frame_label, 0))
        widths[self.frame_label] = self._frame_width
        need, left_out = sum(widths.values()), set()
        for widget in self._optional:
            if need <= room:
                break
            if widget in widths:
                left_out.add(widget)
                need -= widths[widget]
        for widget, shown in self._wanted.items():
            widget.setVisible(shown and widget not in left_out)

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        """Follow the window's width: once the bar sticks out of a narrowed window, it gets no resize itself."""
        super().showEvent(event)
        self.window().installEventFilter(self)  # installing twice keeps one filter
        self._fit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize and watched is self.window():
            self._fit()
        return False

    # notes go to an eliding label instead of QStatusBar's own message, which is clipped where the permanent
    # widgets begin ("Propagation caFrame 1 / 50") and never redrawn when that place moves
    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 (Qt's names)
        """Show a note; one with a `timeout` (ms) over a run's lasting note gives it back when it goes (QA pass
        73: the model-follow note replaced "press F on frame 1 to go on" for good)."""
        if timeout <= 0:
            self._behind = ""
        elif self._lasting:
            self._behind = self.note_label.note
        self.note_label.set_note(text)
        self._fit()
        self._lasting = False
        if timeout > 0:
            self._note_timer.start(timeout)
        else:
            self._note_timer.stop()

    def _show_lasting(self, text: str, run_note: bool) -> None:
        """A note that stays until the next run (`run_note`: a run's, which goes once the annotations change)."""
        self.showMessage(text)
        self._lasting, self._run_note = True, run_note

    def _note_timed_out(self) -> None:
        behind, self._behind = self._behind, ""
        if behind:
            self._show_lasting(behind, self._run_note)
        else:
            self.clearMessage()

    def clearMessage(self) -> None:  # noqa: N802
        self._behind, self._run_note = "", False
        self._note_timer.stop()
        self.note_label.set_note("")
        self._fit()
        self._lasting = False

    def currentMessage(self) -> str:  # noqa: N802
        return self.note_label.note

    def _on_message(self, text: str) -> None:
        self._note = (text, time.monotonic())
        self.showMessage(text, 6000)

    def _on_video_opened(self) -> None:
        """A video's notes do not outlive it (QA pass 74: the last video's run note came back over the next one)."""
        self._behind, self._frame_width = "", 0
        if self._lasting:
            self.clearMessage()

    def _drop_run_note(self, *_: object) -> None:
        """Once the annotations changed, the last run's note is history: the frames it made are out of date (the
        timeline shows them red) and the same key starts over instead of going on (QA passes 74 and 76: "done"
        and "F on frame 1 goes on from there" stayed)."""
        if not self._run_note or not self._controller.propagation.annotations_changed:
            return
        self._run_note = False
        if self._behind:
            self._behind = ""
        elif self._lasting:
            self.clearMessage()

    def _on_guide(self, text: str) -> None:
        self._note = (text, time.monotonic())
        self._show_lasting(text, run_note=False)

    def _on_finished(self, report: PropagationReport) -> None:
        """The run's note; a note that came just before (what stopped the run, e.g. new engine settings)
        stays in front of it instead of being replaced."""
        if self._controller.propagation.replacing:  # QA pass 21: "cancelled" while the new run went on
            return
        text, at = self._note
        recent = f"{text} · " if text and time.monotonic() - at < 2.0 else ""
        stale, keys = self._doc.stale_frames(), self._doc.result_keys()
        outdated = sum(1 for i in report.updated if i < len(stale) and stale[i])
        # previews an undo of their correction replaced by the results from before it do not count as kept
        # (QA pass 26: "2 frames keep their preview" over the restored results)
        shown = len({i for i in report.previewed if i < len(keys) and keys[i] is None and stale[i]})
        # the run's note stays until the next run, also one that asks for something (QA pass 29: gone after 8 s,
        # unread) or says how to go on (QA pass 73: gone after 6 s), and how it ended (QA pass 72: a user back from
        # a minute's wait found no word of it)
        self._show_lasting(recent + finished_note(report, outdated, shown) + self._going_on(report)
                           + self._other_side(report), run_note=True)

    def _on_run_failed(self, title: str, done: int) -> None:
        """A run that ended in an error says so where the user looks after closing its dialog (QA pass 101: the
        status bar went back to the frame alone, as if nothing had run)."""
        self._show_lasting(f"Propagation stopped by an error ({title}) after {done} frame{'s' * (done != 1)}, "
                           "which keep their new masks: fix what the message said, then propagate again",
                           run_note=True)

    def _going_on(self, report: PropagationReport) -> str:
        """After a cancel, where the same key goes on from where the run stopped: its start, or for a forward
        (backward) run the last annotated frame it passed, where objects entered and joined the masks (a run
        stops at annotated frames, so from the start it would end there)."""
        if not report.cancelled or self._controller.propagation.annotations_changed:
            return ""  # (after an undo that stopped it, say, the same run would start over)
        if self._controller.propagation.catching_up:  # the runs still to go are found again from the frames
            return f" · {hint(self._keys, 'propagate.all')} goes on"
        key = hint(self._keys, {"forward": "propagate.forward", "backward": "propagate.backward"}.get(
            report.direction, "propagate.both"))
        if not (report.frames or report.reused):  # stopped while adapting: the steps are lost (QA pass 107: no
            return f" · {key} on frame {report.start + 1} starts it again" if report.adapt_seconds else ""  # word)
        done, frame = report.frames + report.reused, report.start
        if report.direction == "forward":
            frame = max((a for a in self._doc.annotated_frames() if report.start <= a < max(done)), default=frame)
        elif report.direction == "backward":
            frame = min((a for a in self._doc.annotated_frames() if min(done) < a <= report.start), default=frame)
        return f" · {key} on frame {frame + 1} goes on from there"

    def _other_side(self, report: PropagationReport) -> str:
        """After a run one way from an annotated frame, the frames on its other side up to the next annotated frame
        that are out of date, and the key that propagates them (QA pass 88: after F from a correction, the 25 red
        frames before it went unmentioned until the export said so)."""
        if report.cancelled or report.direction not in ("forward", "backward") \
                or not self._doc.is_annotated(report.start):
            return ""
        step = -1 if report.direction == "forward" else 1
        stale, annotated, frame = self._doc.stale_frames(), set(self._doc.annotated_frames()), report.start + step
        count = 0
        while 0 <= frame < len(stale) and frame not in annotated:
            count += bool(stale[frame])
            frame += step
        if not count:
            return ""
        side, key = ("before", "propagate.backward") if step < 0 else ("after", "propagate.forward")
        return f" · {_frames(count)} {side} frame {report.start + 1} still out of date: {hint(self._keys, key)} " \
               "there propagates them"

    def poll_memory(self) -> None:
        """Process RAM always; engine memory frames, device and GPU memory when a video is open."""
        rss = self._process.memory_info().rss
        total = psutil.virtual_memory().total
        text = f"RAM {rss / GB:.1f} GB"
        fraction = rss / total
        status = self._controller.engine_status()
        if status is not None:
            self.device_label.setText(f"{status.get('device', '?')} · {status.get('precision', '?')}")
            self.device_label.setToolTip("Where the network runs, and its number format: bf16 where the hardware "
                                         "computes it (an Ampere+ GPU, an x86 CPU with AVX-512 BF16), else fp32")
            height = status.get("working_height")
            working = f" · {height} px" if height else ""
            self.memory_label.setText(f"Memory {status.get('memory_frames', 0)}{working}")
            self.memory_label.setToolTip("Frames in the engine's memory, and the frame height the network "
                                         "works at (the width of a portrait video; masks are kept at the source "
                                         "size)")
            gpu, gpu_total = status.get("gpu_bytes"), status.get("gpu_total_bytes")
            if isinstance(gpu, (int, float)) and isinstance(gpu_total, (int, float)) and gpu_total > 0:
                text += f" · GPU {gpu / GB:.1f}/{gpu_total / GB:.0f} GB"
                fraction = max(fraction, gpu / gpu_total)
        self.gauge.setValue(round(fraction * 100))
        self.gauge.setFormat(text)
        self._fit()


def _duration(seconds: float) -> str:
    return f"{max(seconds, 1):.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def finished_note(report: PropagationReport, outdated: int = 0, previews: int | None = None) -> str:
    """What a finished run did, for the status bar: a run cancelled during adaptation (or the preview before it)
    says so, not "0 frames"; `outdated` of the frames it made are already out of date (a change during the run,
    or a start from an out-of-date frame: QA pass 21 saw "done" over 24 red frames); `previews` of the frames
    it previewed still show their preview (default: all)."""
    frames, state = len(report.updated), "cancelled" if report.cancelled else "done"
    if report.stopped_at is not None:
        state = f"stopped at frame {report.stopped_at + 1}, annotated meanwhile"
    if report.cancelled and not frames and (report.adapt_seconds or report.previewed):
        n = len(set(report.previewed)) if previews is None else previews
        kept = f"; {_frames(n)} {'keeps its' if n == 1 else 'keep their'} preview" if n else ""
        when = f"while adapting to the video ({report.adapt_seconds:.0f} s)" if report.adapt_seconds else \
            "before adapting to the video"  # QA pass 22: "cancelled: 0 frames at 0.0 fps" during the preview
        return f"Propagation cancelled {when}{kept}"
    kept = len(set(report.reused))  # the run was asked for again after a cancel: it went on from there
    if kept and not frames:  # QA pass 22: "done: 0 frames at 0.0 fps"
        if report.cancelled:  # QA pass 23: before its first new frame
            return f"Propagation cancelled: {_frames(kept)} done before kept, none computed"
        return f"Propagation {state}: all its {_frames(kept)} were done before, and kept"
    note = f" after adapting to the video for {report.adapt_seconds:.0f} s" if report.adapt_seconds else ""
    if kept:
        note += f"; {_frames(kept)} done before kept"
    if outdated:
        note += f"; {outdated} of them out of date (red): propagate again from an annotated frame"
    # frames between two annotated frames are propagated from both and blended: the rate counts every pass (QA
    # pass 91: "1798 frames at 18.5 fps" after a progress of 3596 frames)
    passes = f" (from both sides: {len(report.frames)} propagated)" if len(report.frames) > frames else ""
    return f"Propagation {state}: {_frames(frames)}{passes} at {report.fps:.1f} fps{note}"


def _frames(n: int) -> str:
    return f"{n} frame{'' if n == 1 else 's'}"
