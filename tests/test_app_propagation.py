"""Propagation in the worker thread, through the real window: results, progress, cancel, restart, errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from .conftest import make_frames

WAIT_MS = 60_000


def annotate_first_frame(window) -> None:
    doc = window.document
    doc.begin_stroke((20.0, 30.0), 1, 15, erase=False)
    doc.extend_stroke((30.0, 30.0))
    doc.end_stroke()


def slow_down(session, monkeypatch, delay: float = 0.05) -> None:
    """Make each propagated frame take at least `delay` s, so a cancel reliably lands mid-run."""
    original = session.propagate

    def propagate(start, direction="forward", progress=None, cancel=None, **kwargs):
        def slow_progress(*args):
            time.sleep(delay)
            if progress is not None:
                progress(*args)
        return original(start, direction, slow_progress, cancel, **kwargs)

    monkeypatch.setattr(session, "propagate", propagate)


def propagated_clip(qtbot, app_factory, tmp_path, count: int):
    """A window on a `count`-frame clip with frame 0 painted and propagated forward: (window, document,
    propagation controller)."""
    window = app_factory()
    window.controller.open(make_frames(tmp_path / f"clip{count}", count=count))
    annotate_first_frame(window)
    doc, prop = window.document, window.controller.propagation
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        prop.start("forward")
    return window, doc, prop


@pytest.fixture
def window(app_factory, frame_dir):
    window = app_factory()
    window.controller.open(frame_dir)
    annotate_first_frame(window)
    return window


def test_forward_propagation_fills_every_frame_and_the_view(qtbot, window):
    prop = window.controller.propagation
    shown: list[int] = []
    window.document.labelsChanged.connect(shown.append)
    window.document.seek(2)
    window.document.seek(0)
    progress: list[tuple] = []
    prop.progress.connect(lambda *a: progress.append(a))
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
        assert prop.running
    report = finished.args[0]
    assert report.frames == [1, 2, 3] and not report.cancelled
    assert [p[1] for p in progress] == [1, 2, 3] and all(p[2] == 3 for p in progress)
    assert window.document.result_frames().all()
    qtbot.waitUntil(lambda: not prop.running)
    assert not window.status.progress.isVisible()
    window.document.seek(3)
    assert window.document.labels.shape == (64, 96)
    unc = window.document.uncertainty()
    assert unc[0] == 0 and np.isfinite(unc[1:]).all()


def test_results_appear_on_screen_while_it_runs(qtbot, window):
    """The frame on screen is redrawn when its result arrives."""
    doc = window.document
    doc.seek(1)
    refreshed: list[int] = []
    doc.labelsChanged.connect(refreshed.append)
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=WAIT_MS):
        window.controller.propagation.start("forward", 0)
    assert 1 in refreshed
    assert np.array_equal(doc.labels, doc.session.labels(1))


def test_backward_and_both(qtbot, window):
    doc = window.document
    doc.seek(3)
    doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)
    doc.end_stroke()
    prop = window.controller.propagation
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ShiftModifier)
    assert finished.args[0].frames == [2, 1, 1, 2]  # stops at the annotated frame 0, then runs back from it
    doc.seek(1)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert sorted(finished.args[0].frames) == [2]  # from 1: forward to 2 (3 is annotated), backward to 0 stops


def test_a_stopped_runs_note_stops_saying_it_goes_on_once_untrue(qtbot, app_factory, tmp_path, monkeypatch):
    """QA passes 74 and 76: now that a run's note stays, "F on frame 1 goes on from there" (and "done") stayed
    after a correction (F then starts over, its frames out of date), and the note came back over the next
    video opened."""
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "long", count=12))
    annotate_first_frame(window)
    slow_down(window.document.session, monkeypatch)
    doc, prop = window.document, window.controller.propagation
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward")
        qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
        qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.status.currentMessage().endswith(" · F on frame 1 goes on from there")
    doc.seek(0)
    doc.begin_stroke((20.0, 20.0), 1, 9, erase=False)
    doc.end_stroke()
    assert window.status.currentMessage() == ""
    doc.undo()
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):  # a passing note over the run's note, then a change
        prop.start("forward", 0)
    window.controller.message.emit("Saved")
    doc.seek(0)
    doc.begin_stroke((20.0, 20.0), 1, 9, erase=False)
    doc.end_stroke()
    window.status._note_timer.timeout.emit()
    assert window.status.currentMessage() == ""
    window.controller.message.emit("Saved")
    window.controller.open(make_frames(tmp_path / "other", count=3))
    window.status._note_timer.timeout.emit()
    assert "Propagation" not in window.status.currentMessage()


def test_new_settings_that_stop_a_run_say_how_to_go_on_until_the_next_run(qtbot, app_factory, tmp_path,
                                                                           monkeypatch):
    """QA pass 76: the note went after 6 s, and the stopped run's own note never came (its session replaced)."""
    from dataclasses import replace

    window = app_factory()
    window.controller.open(make_frames(tmp_path / "long", count=12))
    annotate_first_frame(window)
    slow_down(window.document.session, monkeypatch)
    c, prop = window.controller, window.controller.propagation
    prop.start("forward")
    qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
    c.apply_preferences(replace(c.settings.preferences(), max_memory=15))
    qtbot.waitUntil(lambda: not prop.running, timeout=WAIT_MS)
    assert window.status.currentMessage() == "Engine settings applied, masks kept; the propagation was stopped: " \
                                             "press F on frame 1 to go on"
    assert not window.status._note_timer.isActive()


def test_escape_cancels_promptly_and_keeps_results_whole(qtbot, app_factory, tmp_path, monkeypatch):
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "long", count=12))
    annotate_first_frame(window)
    slow_down(window.document.session, monkeypatch)
    prop = window.controller.propagation
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        prop.start("forward")
        qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
        qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    report = finished.args[0]
    assert report.cancelled and 1 <= len(report.frames) < 11
    note = window.status.currentMessage()
    assert note.endswith(" · F on frame 1 goes on from there")
    assert not window.status._note_timer.isActive()  # QA pass 73: how to go on went after 6 s, unread
    window.controller.message.emit("A passing note")  # covers it for a while, then gives it back
    assert window.status.currentMessage() == "A passing note"
    window.status._note_timer.timeout.emit()
    assert window.status.currentMessage() == note
    session = window.document.session
    for frame in range(1, 12):
        labels = session.labels(frame)
        assert (labels is not None) == (frame in report.frames)
        if labels is not None:
            assert labels.shape == (64, 96)
    rates = []
    prop.progress.connect(lambda frame, done, total, fps: rates.append(fps))
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:  # F again goes on from where it stopped
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    again = finished.args[0]
    assert again.reused == report.frames and again.frames == list(range(report.frames[-1] + 1, 12))
    assert len(rates) == 11 and max(rates) < 1 / 0.05  # frames computed at most 20 a second: kept ones not counted
    assert not window.document.stale_frames().any()
    kept = len(report.frames)
    assert window.status.currentMessage().endswith(f"; {kept} frame{'s' if kept > 1 else ''} done before kept")


def test_new_run_while_running_replaces_it(qtbot, app_factory, tmp_path, monkeypatch):
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "long", count=10))
    annotate_first_frame(window)
    slow_down(window.document.session, monkeypatch)
    prop = window.controller.propagation
    reports = []
    prop.finished.connect(reports.append)
    prop.start("forward", 0)
    qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
    window.document.seek(1)  # has its result: the progress signal said so
    notes = []
    prop.finished.connect(lambda _: notes.append(window.status.currentMessage()))
    prop.start("both")  # cancels the first, then starts from frame 1
    qtbot.waitUntil(lambda: len(reports) == 2 and not prop.running, timeout=WAIT_MS)
    assert reports[0].cancelled and not reports[1].cancelled
    assert reports[1].start == 1 and reports[1].frames == list(range(2, 10))
    assert not any("cancelled" in note for note in notes)  # QA pass 21: "Propagation cancelled" as it went on


def test_removing_the_object_a_correction_painted_makes_the_runs_frames_current_again(qtbot, app_factory,
                                                                                      tmp_path):
    """QA pass 77: the annotations were back to those the run used, but its frames stayed red, and were saved so."""
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 8)
    other = doc.add_object().id
    doc.seek(0)
    doc.begin_stroke((50.0, 36.0), other, 7, erase=False)
    doc.end_stroke()
    assert doc.stale_frames()[1:].all()
    doc.remove_object(other)
    assert not doc.stale_frames().any()


def test_removing_an_object_during_a_run_waits_for_the_run_not_the_window(qtbot, app_factory, tmp_path,
                                                                         monkeypatch):
    """QA pass 21: Remove during an adaptation step froze the window until the step ended (up to 12 s). Now the
    object goes once the run has stopped, before a run asked for meanwhile starts."""
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "long", count=12))
    doc = window.document
    second = doc.add_object("Second")
    annotate_first_frame(window)
    doc.begin_stroke((70.0, 20.0), second.id, 9, erase=False)
    doc.end_stroke()
    slow_down(doc.session, monkeypatch, delay=0.2)
    prop = window.controller.propagation
    reports = []
    prop.finished.connect(reports.append)
    prop.start("forward")
    qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
    window.controller.remove_object(second.id)
    assert prop.running and second.id in doc.objects  # returned at once: the run stops after its frame
    prop.start("forward", 0)  # asked for before the run stopped: it runs without the object
    qtbot.waitUntil(lambda: len(reports) == 2 and not prop.running, timeout=WAIT_MS)
    assert second.id not in doc.objects and reports[0].cancelled and not reports[1].cancelled
    assert all(second.id not in np.unique(doc.session.labels(i)) for i in range(12))


def test_a_run_both_ways_stopped_by_an_undo_is_asked_for_again_by_its_own_key(qtbot, app_factory, tmp_path,
                                                                              monkeypatch):
    """QA pass 68: after Ctrl+F was stopped by an undo, the note said "press F to propagate again", which goes
    one way only."""
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 12)
    doc.seek(5)
    doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)
    doc.end_stroke()
    slow_down(doc.session, monkeypatch, delay=0.2)
    notes: list[str] = []
    window.controller.message.connect(notes.append)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        qtbot.keyClick(window.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert any("Undo stopped the propagation" in n and "press Ctrl+F on frame 6 to propagate again" in n
               for n in notes), notes


def test_undo_during_a_run_stops_it_and_the_results_from_before_come_back(qtbot, app_factory, tmp_path,
                                                                          monkeypatch):
    """QA pass 22: Ctrl+Z of a correction while its run went on let the run replace, with out-of-date results
    from the undone mask, the results the undo had made current again."""
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 12)
    before = {i: doc.session.labels(i) for i in range(12)}
    other = doc.add_object().id
    doc.seek(2)
    doc.begin_stroke((50.0, 30.0), other, 9, erase=False)  # a correction on frame 3
    doc.end_stroke()
    slow_down(doc.session, monkeypatch, delay=0.2)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
        qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    note = window.status.currentMessage()
    assert finished.args[0].cancelled and "Undo stopped the propagation" in note and "goes on" not in note
    assert not doc.is_annotated(2) and list(np.flatnonzero(doc.stale_frames())) == finished.args[0].frames
    untouched = [i for i in range(1, 12) if i not in finished.args[0].frames]
    assert len(untouched) >= 5 and all(np.array_equal(doc.session.labels(i), before[i]) for i in untouched)


def test_undoing_a_stroke_painted_ahead_of_a_run_lets_the_run_go_on(qtbot, app_factory, tmp_path, monkeypatch):
    """QA pass 91: a stroke painted far ahead of the run left it going (it stops there), but undoing that stroke
    stopped the whole run, though the run never reads a frame annotated after it started."""
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 12)
    doc.seek(0)
    doc.begin_stroke((60.0, 40.0), 1, 9, erase=False)  # a change: the run computes every frame again
    doc.end_stroke()
    slow_down(doc.session, monkeypatch, delay=0.2)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
        qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
        doc.seek(9)
        doc.begin_stroke((50.0, 30.0), doc.add_object().id, 9, erase=False)
        doc.end_stroke()
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert prop.running and not doc.is_annotated(9)
    assert not finished.args[0].cancelled and finished.args[0].frames == list(range(1, 12))
    assert "stopped" not in window.status.currentMessage() and not doc.stale_frames().any()


def test_painting_and_scrubbing_while_propagating(qtbot, app_factory, tmp_path, monkeypatch):
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "long", count=10))
    annotate_first_frame(window)
    doc = window.document
    slow_down(doc.session, monkeypatch)
    prop = window.controller.propagation
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward", 0)
        for frame in (9, 3, 7):
            doc.seek(frame)
            QApplication.processEvents()
        doc.seek(8)
        doc.begin_stroke((80.0, 10.0), 1, 5, erase=False)
        doc.end_stroke()
    assert doc.session.is_annotated(8)
    assert doc.session.labels(8)[10, 80] == 1  # the user's paint is never overwritten by the run


def slowly_running(qtbot, app_factory, tmp_path, monkeypatch):
    """A window on a 10-frame clip ("long") whose slowed forward run from frame 0 has stored its first result
    and goes on: (window, propagation controller)."""
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "long", count=10))
    annotate_first_frame(window)
    slow_down(window.document.session, monkeypatch)
    prop = window.controller.propagation
    prop.start("forward", 0)
    qtbot.waitUntil(lambda: window.document.result_frames()[1], timeout=WAIT_MS)
    return window, prop


def test_opening_another_video_during_a_run_says_it_stopped_the_run(qtbot, app_factory, frame_dir, tmp_path,
                                                                    monkeypatch):
    """QA pass 29: Ctrl+Shift+O during a run stopped it without a word."""
    window, prop = slowly_running(qtbot, app_factory, tmp_path, monkeypatch)
    assert window.controller.open(frame_dir)
    assert not prop.running
    assert window.status.currentMessage() == "Opening clip stopped the propagation of long: the frames it made " \
                                             "are saved; propagate there again for the rest"


def test_quitting_during_a_run_asks_first(qtbot, app_factory, tmp_path, monkeypatch, dialogs):
    """QA pass 29: Ctrl+Q during a run closed the window at once, without a word about the run."""
    from PySide6.QtWidgets import QMessageBox

    window, prop = slowly_running(qtbot, app_factory, tmp_path, monkeypatch)
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda parent, title, text, *a: dialogs.append(
        (title, text)) or answers.pop(0)))
    window.actions_by_id["file.quit"].trigger()
    assert window.isVisible() and prop.running  # kept
    window.actions_by_id["file.quit"].trigger()
    assert not window.isVisible() and not prop.running
    assert [title for title, _ in dialogs] == ["Stop the propagation?"] * 2


def test_quitting_while_adapting_says_the_steps_are_lost(qtbot, app_factory, frame_dir, monkeypatch, dialogs):
    """QA passes 39-40: the question said "the frames it made are saved" while the run had made previews alone."""
    from PySide6.QtWidgets import QMessageBox

    from app.settings import AppSettings
    from stm_core.engine.settings import EngineSettings

    monkeypatch.setattr(AppSettings, "engine_settings", lambda self: EngineSettings(
        device="cpu", random_init=True, fast=False, adapt_steps=3, preview_frames=2))
    window = app_factory()
    window.controller.open(frame_dir)
    annotate_first_frame(window)
    session, prop = window.document.session, window.controller.propagation
    original = session.propagate

    def slowly_adapting(*args, adapting, **kwargs):
        return original(*args, adapting=lambda done, steps: (adapting(done, steps), time.sleep(0.5)), **kwargs)
    monkeypatch.setattr(session, "propagate", slowly_adapting)
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda parent, title, text, *a: dialogs.append(
        (title, text)) or QMessageBox.StandardButton.Cancel))
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward", 0)
        qtbot.waitSignal(prop.previewed, timeout=WAIT_MS).wait()  # QA pass 40: from the preview on, not step 1
        window.actions_by_id["file.quit"].trigger()
        assert "adapting the network to this video" in dialogs[-1][1] and "steps taken are lost" in dialogs[-1][1]
    assert not prop.adapting_now and window.isVisible()


def test_propagating_off_the_end_explains(qtbot, app_factory, frame_dir, tmp_path, dialogs):
    """Seventh GUI QA pass: F on a 1-frame video said "Propagation done: 0 frames at 0.0 fps"."""
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "one", count=1))
    annotate_first_frame(window)
    window.controller.propagation.start("both")
    assert dialogs[-1] == ("Nothing to propagate", "Frame 1 is the only frame: there is no frame to propagate to.")
    window.controller.open(frame_dir)
    annotate_first_frame(window)
    window.controller.propagation.start("backward")
    assert dialogs[-1][1] == "Nothing to propagate from frame 1: there is no frame before it."
    assert not window.controller.propagation.running
    window.document.seek(3)
    window.controller.propagation.start("forward", frame=3)
    assert dialogs[-1][1] == "Nothing to propagate from frame 4: there is no frame after it."
    window.document.seek(2)  # eighth QA pass: F just before an annotated frame said "done: 0 frames"
    annotate_first_frame(window)
    window.document.seek(1)
    window.controller.propagation.start("forward", frame=1)
    assert dialogs[-1][1] == "Nothing to propagate from frame 2: frame 3, after it, is annotated."
    window.controller.propagation.start("both", frame=1)
    assert dialogs[-1][1] == ("Nothing to propagate from frame 2: frame 3, after it, is annotated and frame 1, "
                              "before it, is annotated.")
    assert not window.controller.propagation.running


def test_propagating_without_annotation_explains(qtbot, app_factory, frame_dir, dialogs):
    window = app_factory()
    window.controller.open(frame_dir)
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert dialogs and dialogs[-1][0] == "Nothing to propagate"
    assert not window.controller.propagation.running
    annotate_first_frame(window)
    window.document.begin_stroke((25.0, 30.0), 1, 60, erase=True)  # then erased: annotated, all background
    window.document.end_stroke()
    assert window.document.annotated_frames() == [0] and not window.document.session.annotation(0).any()
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert dialogs[-1] == ("Nothing to propagate", "The annotated frames show no object: paint one (an "
                                                   "all-background frame says only where no object is).")
    annotate_first_frame(window)
    window.document.seek(2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert dialogs[-1][0] == "No mask on this frame"


def test_a_run_that_seeks_no_object_makes_background_and_u_says_why_nothing_ranks(qtbot, app_factory, frame_dir,
                                                                                  dialogs):
    """QA pass 58: frames a run made background (no object annotated up to its start) have no uncertainty, and
    U said "No propagated frames yet" right after the run."""
    window = app_factory()
    window.controller.open(frame_dir)
    doc = window.document
    doc.seek(3)
    annotate_first_frame(window)  # the object is painted on frame 4 only
    doc.seek(2)
    annotate_first_frame(window)
    doc.begin_stroke((25.0, 30.0), 1, 60, erase=True)  # frame 3: annotated, all background
    doc.end_stroke()
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=60_000):
        window.controller.propagation.start("backward")
    assert all(doc.session.has_result(i) and not doc.session.labels(i).any() for i in (0, 1))
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    assert window.status.currentMessage() == "No propagated frame has any uncertainty"


def test_engine_error_in_worker_becomes_a_dialog(qtbot, window, dialogs, monkeypatch):
    from stm_core.errors import OutOfMemoryError

    def fail(*args, **kwargs):
        raise OutOfMemoryError("CUDA out of memory while propagating frame 2")

    monkeypatch.setattr(window.document.session, "propagate", fail)
    prop = window.controller.propagation
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        prop.start("forward")
    assert dialogs[-1][0] == "Out of memory" and "memory cap" in dialogs[-1][1]
    assert window.document.session.is_annotated(0)  # work kept


def test_a_run_ended_by_an_unreadable_frame_says_so_in_the_status_bar(qtbot, app_factory, tmp_path, dialogs):
    """QA pass 101: after the dialog the status bar showed the frame alone, as if nothing had run."""
    from .conftest import damaged_clip

    clip = damaged_clip(tmp_path / "clip", count=5, damaged=3)
    window = app_factory()
    window.controller.open(clip)
    window.document.begin_stroke((30.0, 30.0), 1, 9, erase=False)
    window.document.end_stroke()
    prop = window.controller.propagation
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        prop.start("forward")
    assert "00003.png" in dialogs[-1][1]
    note = window.status.currentMessage()
    assert note.startswith(f"Propagation stopped by an error ({dialogs[-1][0]}) after 2 frames, which keep")
    assert window.document.result_frames().tolist() == [True, True, True, False, False]


def test_broken_weights_file_is_reported(qtbot, app_factory, frame_dir, dialogs, monkeypatch, tmp_path):
    from app.settings import AppSettings
    from stm_core.engine.settings import EngineSettings

    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    monkeypatch.setattr(AppSettings, "engine_settings", lambda self: EngineSettings(device="cpu", weights=str(broken)))
    window = app_factory()
    window.controller.open(frame_dir)
    window.controller.wait_for_warm_up()  # the warm-up after opening fails quietly: no one asked for the network
    qtbot.wait(50)
    assert not dialogs
    annotate_first_frame(window)
    prop = window.controller.propagation
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        prop.start("forward")
    assert [title for title, _ in dialogs] == ["Model weights problem"]
    assert window.document.is_annotated(0)


def test_opening_a_video_and_new_engine_settings_warm_the_engine_up(qtbot, app_factory, frame_dir, monkeypatch):
    """The network is loaded and run once on a worker thread when a video opens and when engine settings
    change, so the first propagation starts without that wait; it leaves no result and no cached frame."""
    from dataclasses import replace

    from stm_core.session import AnnotationSession

    warmed = []
    original = AnnotationSession.warm_up
    monkeypatch.setattr(AnnotationSession, "warm_up", lambda self: (original(self), warmed.append(self)))
    window = app_factory()
    c = window.controller
    c.open(frame_dir)
    c.wait_for_warm_up()
    assert warmed == [window.document.session]
    c.apply_preferences(replace(c.settings.preferences(), max_memory=7))
    c.wait_for_warm_up()
    session = window.document.session
    assert warmed[-1] is session and len(warmed) == 2
    assert session.memory_status()["cached_frames"] == 0
    assert not any(session.has_result(i) for i in range(session.num_frames))
    annotate_first_frame(window)
    with qtbot.waitSignal(c.propagation.finished, timeout=WAIT_MS):
        c.propagation.start("forward")
    assert window.document.result_frames().all()


def test_clear_memory_and_memory_gauge(qtbot, window):
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=WAIT_MS):
        window.controller.propagation.start("forward")
    window.status.poll_memory()
    assert "RAM" in window.status.gauge.format()
    engine = window.document.session.memory_status()
    # the frames are 64x96: scaled up to 128 px whatever the setting (it said 240 px on a 40x30 clip)
    assert window.status.memory_label.text().startswith("Memory ") and window.status.memory_label.text().endswith(
        f" · {engine['working_height']} px") and engine["working_height"] == 128
    assert engine["precision"] in ("bf16", "fp32")
    assert window.status.device_label.text() == f"{engine['device']} · {engine['precision']}"
    window.status.clear_button.click()
    assert window.document.session.memory_status()["cached_frames"] == 0
    assert window.document.result_frames().all()


def test_worker_thread_is_not_the_gui_thread(qtbot, window, monkeypatch):
    session = window.document.session
    original = session.propagate
    threads = []

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(session, "propagate", spy)
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=WAIT_MS):
        window.controller.propagation.start("forward")
    assert threads and threads[0] is not threading.main_thread()


def test_u_jumps_to_most_uncertain_and_alt_arrows_to_annotated(qtbot, window):
    doc = window.document
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=WAIT_MS):
        window.controller.propagation.start("forward")
    unc = doc.uncertainty()
    qtbot.keyClick(window.canvas, Qt.Key.Key_U)
    assert doc.current_frame == int(np.nanargmax(unc))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert doc.current_frame == 0
    window.timeline.refresh()
    assert np.isfinite(window.timeline._curve.yData[1:]).all() and np.isnan(window.timeline._curve.yData[0])


def test_object_added_mid_video_is_tracked_from_its_frame(qtbot, window):
    """Objects that first appear later: add one after propagating, paint it on frame 2, propagate again."""
    doc = window.document
    prop = window.controller.propagation
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward")
    late = doc.add_object("Late")
    window.editor.select_object(late.id)
    doc.seek(2)
    doc.begin_stroke((70.0, 45.0), late.id, 15, erase=False)
    doc.end_stroke()
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert finished.args[0].frames == [3]
    assert doc.session.object_ids() == [1, late.id]
    assert doc.session.is_annotated(0) and doc.session.is_annotated(2)


def test_probability_overlay_shows_the_soft_result(qtbot, window):
    from app.overlay import HEAT_LUT, OverlayMode

    doc = window.document
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=WAIT_MS):
        window.controller.propagation.start("forward")
    doc.seek(2)
    window.editor.set_overlay_mode(OverlayMode.PROBABILITY)
    prob = doc.session.probability(2, 1)
    assert prob is not None
    assert np.array_equal(window.canvas._overlay.buffer, HEAT_LUT[prob])
    other = doc.add_object().id
    window.editor.select_object(1)
    for obj in (1, other):  # a stroke that may change nothing, then one that annotates the frame (QA pass 21: the
        doc.begin_stroke((80.0, 10.0), obj, 5, erase=False)  # hard mask stayed in the stroke's rectangle, and
        doc.end_stroke()  # the old soft map outside it)
        assert np.array_equal(window.canvas._overlay.buffer, HEAT_LUT[doc.session.probability(2, 1)])
    assert doc.is_annotated()


def test_correction_marks_results_stale_until_propagated_again(qtbot, app_factory, tmp_path):
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 8)
    other = doc.add_object().id  # painting a new label always changes the mask (results here are random)
    doc.seek(7)
    doc.begin_stroke((50.0, 30.0), other, 9, erase=False)
    doc.end_stroke()
    doc.seek(4)
    doc.begin_stroke((50.0, 30.0), other, 9, erase=False)  # a correction in the middle
    doc.end_stroke()
    assert list(np.flatnonzero(doc.stale_frames())) == [1, 2, 3, 5, 6]
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        qtbot.keyClick(window.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert list(np.flatnonzero(doc.stale_frames())) == []


def test_a_run_from_an_out_of_date_frame_makes_out_of_date_results_and_says_so(qtbot, app_factory, tmp_path,
                                                                               monkeypatch):
    """QA pass 21: F on a red frame cleared the red marks of the frames it made from that out-of-date mask, and
    a run whose frames all came out red said only "done". QA pass 72: F there now asks first, offering the
    annotated frame before it."""
    from PySide6.QtWidgets import QMessageBox

    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 8)
    other = doc.add_object().id
    doc.seek(3)
    doc.begin_stroke((50.0, 30.0), other, 9, erase=False)  # a correction: frames 1, 2 and 4-7 out of date
    doc.end_stroke()
    doc.seek(5)
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda _p, _t, text, *a: asked.append(text) or answer[0]))
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert not prop.running and "Yes: propagate from the annotated frame 4 instead. No: from frame 6." in asked[0]
    answer[0] = QMessageBox.StandardButton.No
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert finished.args[0].frames == [6, 7]
    assert list(np.flatnonzero(doc.stale_frames())) == [1, 2, 4, 5, 6, 7]
    assert window.status.currentMessage().endswith("; 2 of them out of date (red): propagate again from an "
                                                   "annotated frame")
    # QA pass 29: the note went after 8 s, unread, and the frame label never named a red frame
    assert not window.status._note_timer.isActive()
    assert window.status.frame_label.text().endswith("· out of date")
    doc.seek(3)
    assert window.status.frame_label.text().endswith("· annotated")
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    doc.seek(5)
    assert window.status.frame_label.text() == "Frame 6 / 8 (00005)"


def test_f_on_a_red_frame_offers_the_annotated_frame_and_f_while_adapting_asks(qtbot, app_factory, tmp_path,
                                                                              dialogs, monkeypatch):
    """QA pass 72: F on a preview frame made 30 frames all out of date, and a second F during the adaptation
    threw its steps away, both without a word."""
    from PySide6.QtWidgets import QMessageBox

    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 8)
    doc.seek(3)
    doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)
    doc.end_stroke()
    doc.seek(5)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:  # Yes: from the annotated frame 4
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert dialogs[-1][0] == "Propagate from an out-of-date frame?" and finished.args[0].start == 3
    assert doc.current_frame == 3 and not doc.stale_frames()[4:].any()
    qtbot.waitUntil(lambda: not prop.running, timeout=WAIT_MS)
    monkeypatch.setattr(type(prop), "adapting_now", property(lambda self: True))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: QMessageBox.StandardButton.Cancel))
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert not prop.running


def test_undoing_a_correction_makes_the_results_from_before_it_current_again(qtbot, app_factory, tmp_path):
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    other = doc.add_object().id
    doc.seek(3)
    doc.begin_stroke((50.0, 30.0), other, 9, erase=False)
    doc.end_stroke()
    assert list(np.flatnonzero(doc.stale_frames())) == [1, 2, 4, 5]
    doc.undo()  # frame 3 is an ordinary frame again, with its old result: nothing is out of date
    assert not doc.is_annotated(3) and not doc.stale_frames().any()
    doc.redo()
    assert list(np.flatnonzero(doc.stale_frames())) == [1, 2, 4, 5]


def test_undoing_a_correction_cancelled_while_adapting_gives_back_what_its_preview_replaced(qtbot, app_factory,
                                                                                          tmp_path, monkeypatch):
    """QA passes 22b and 23: after Esc during a correction's adaptation and an undo, the frames its preview had
    replaced stayed red with the preview, and the results from before the correction were lost."""
    from app.settings import AppSettings
    from stm_core.engine.settings import EngineSettings

    monkeypatch.setattr(AppSettings, "engine_settings", lambda self: EngineSettings(
        device="cpu", random_init=True, fast=False, adapt_steps=2, preview_frames=2))
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    before = {i: doc.session.labels(i) for i in range(6)}
    doc.seek(2)
    doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)  # a correction of the same object: the adapted preview
    doc.end_stroke()
    prop.previewed.connect(lambda frame: frame == 4 and prop.cancel())
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    assert finished.args[0].cancelled and finished.args[0].previewed == [3, 4]
    assert list(np.flatnonzero(doc.stale_frames())) == [1, 3, 4, 5]
    doc.seek(3)  # the frame label calls a preview a preview, and the frames the correction outdated out of date
    assert window.status.frame_label.text().endswith(" · preview (out of date)")
    doc.seek(5)
    assert window.status.frame_label.text().endswith(" · out of date")
    doc.seek(2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not doc.is_annotated(2) and not doc.stale_frames().any()
    assert not doc.is_preview(3)
    assert all(np.array_equal(doc.session.labels(i), before[i]) for i in range(1, 6))
    autosaver = window.controller.autosaver
    assert autosaver.save_now()
    names = doc.session.frame_names
    for frame in (3, 4):  # saved again: a kill now reopens them as they are
        assert np.array_equal(autosaver.workspace.read_frame_mask(names[frame], doc.frame_size), before[frame])


def test_a_preview_noted_after_its_correction_was_undone_gives_back_what_it_replaced(qtbot, app_factory, tmp_path,
                                                                                     monkeypatch):
    """The undo stops the run, but a preview the engine stored before the stop is noted after the undo: it too
    gives the result from before the correction back."""
    from app.settings import AppSettings
    from stm_core.engine.settings import EngineSettings

    monkeypatch.setattr(AppSettings, "engine_settings", lambda self: EngineSettings(
        device="cpu", random_init=True, fast=False, adapt_steps=2, preview_frames=2))
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    before = {i: doc.session.labels(i) for i in range(6)}
    doc.seek(2)
    doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)
    doc.end_stroke()
    stored, undone = threading.Event(), threading.Event()
    original = doc.session.propagate

    def propagate(*args, previewed, **kwargs):
        def held_back(frame: int) -> None:  # frame 4's preview is stored; its note waits for the undo
            if frame == 4:
                stored.set()
                undone.wait(WAIT_MS / 1000)
            previewed(frame)
        return original(*args, previewed=held_back, **kwargs)
    monkeypatch.setattr(doc.session, "propagate", propagate)
    seen: list[int] = []
    prop.previewed.connect(seen.append)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        qtbot.keyClick(window.canvas, Qt.Key.Key_F)
        qtbot.waitUntil(lambda: stored.is_set() and seen == [3], timeout=WAIT_MS)
        qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        undone.set()
    assert seen == [3, 4] and not doc.is_annotated(2) and not doc.stale_frames().any()
    assert all(np.array_equal(doc.session.labels(i), before[i]) for i in range(1, 6))
    # QA pass 26: the note said "2 frames keep their preview" over the results given back
    assert window.status.currentMessage().endswith("Propagation cancelled before adapting to the video")


def test_a_correction_painted_during_a_run_ends_it_there_and_outdates_what_it_made(qtbot, app_factory, tmp_path,
                                                                                    monkeypatch):
    """The run's memory predates the correction: it stops at the corrected frame, and the frames it still
    delivers are marked for propagating again."""
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "clip10", count=10))
    annotate_first_frame(window)
    doc, prop = window.document, window.controller.propagation
    slow_down(doc.session, monkeypatch)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS) as finished:
        prop.start("forward", 0)
        qtbot.waitSignal(prop.progress, timeout=WAIT_MS).wait()
        doc.seek(7)
        doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)
        doc.end_stroke()
    done = finished.args[0].frames
    assert done[-1] == 6 and not doc.session.has_result(8)  # stopped at the corrected frame 7
    stale = set(np.flatnonzero(doc.stale_frames()).tolist())
    assert stale and stale <= set(done) and max(done) in stale  # delivered after the correction, so stale
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward", 0)
    assert not doc.stale_frames().any()


def test_importing_masks_as_annotated_frames_outdates_their_neighbours(qtbot, app_factory, tmp_path):
    from stm_core.io.masks import write_mask

    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    masks = tmp_path / "masks"
    masks.mkdir()
    for name in ("00000", "00003"):
        write_mask(masks / f"{name}.png", np.zeros((64, 96), np.uint8))
    messages = []
    window.controller.message.connect(messages.append)
    assert window.controller.import_mask_folder(masks, as_annotations=False)
    assert messages[-1].startswith("Imported 1 mask;") and "1 annotated frame kept its annotation" in messages[-1]
    assert doc.session.labels(0).any()  # the annotated frame kept its annotation
    assert window.controller.import_mask_folder(masks, as_annotations=True)
    assert doc.annotated_frames() == [0, 3]
    assert list(np.flatnonzero(doc.stale_frames())) == [1, 2, 4, 5]


def test_an_imported_mask_of_a_new_object_adds_it_to_the_frame(qtbot, app_factory, tmp_path):
    """Cutie/XMem-style masks for objects that enter mid-video hold only the new object: importing one as an
    annotated frame keeps the objects already on that frame."""
    from stm_core.io.masks import write_mask

    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    before = doc.session.labels(4)
    entering = np.zeros((64, 96), np.uint8)
    entering[50:60, 80:90] = 2
    (tmp_path / "masks").mkdir()
    write_mask(tmp_path / "masks" / "00004.png", entering)
    assert window.controller.import_mask_folder(tmp_path / "masks", as_annotations=True)
    expected = np.where(entering > 0, 2, np.where(before == 2, 0, before))
    assert doc.is_annotated(4) and np.array_equal(doc.session.labels(4), expected)
    doc.seek(5)  # the same for one mask of a new object imported onto the current frame
    before = doc.session.labels(5)
    write_mask(tmp_path / "third.png", entering * 3 // 2)
    assert doc.stale_frames()[5]  # out of date since frame 4 was annotated: the object waits there for a run
    assert window.controller.import_frame_mask(tmp_path / "third.png")  # (QA pass 94: the old mask was annotated)
    assert np.array_equal(doc.session.labels(5), np.where(entering > 0, 3, before))
    assert not doc.is_annotated(5) and doc.entering_frames() == [5]


def test_objects_imported_before_propagating_enter_where_the_run_reaches_them(qtbot, app_factory, tmp_path):
    """Sixth GUI QA pass: Cutie/XMem masks imported before any propagation became annotated frames holding
    only the entering object, so the objects already tracked were erased on those frames for good."""
    from stm_core.io.masks import write_mask

    window = app_factory()
    clip = make_frames(tmp_path / "clip", count=6)
    window.controller.open(clip)
    annotate_first_frame(window)
    doc, prop = window.document, window.controller.propagation
    messages: list[str] = []
    window.controller.message.connect(messages.append)
    (tmp_path / "masks").mkdir()
    masks = {}
    for frame, obj in ((2, 2), (4, 3)):
        masks[frame] = np.zeros((64, 96), np.uint8)
        masks[frame][50:60, 70 + 4 * obj:80 + 4 * obj] = obj
        write_mask(tmp_path / "masks" / f"{frame:05d}.png", masks[frame])
    assert window.controller.import_mask_folder(tmp_path / "masks", as_annotations=True)
    assert doc.entering_frames() == [2, 4] and doc.annotated_frames() == [0]
    assert "enter on frames 3, 5" in messages[-1]
    window.timeline.refresh()
    assert list(window.timeline.entering.getData()[0]) == [2, 4]  # hollow marks where they enter
    doc.seek(2)
    assert set(np.unique(doc.labels)) == {0, 2}  # shown on its frame until a run reaches it
    window.close()  # saved: a reopened workspace still knows where they enter

    window = app_factory()
    window.controller.open(clip)
    doc, prop = window.document, window.controller.propagation
    assert doc.entering_frames() == [2, 4] and doc.annotated_frames() == [0]
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward", 0)
    assert doc.annotated_frames() == [0, 2, 4] and doc.entering_frames() == []
    window.timeline.refresh()
    assert len(window.timeline.entering.getData()[0]) == 0
    for frame, obj in ((2, 2), (4, 3)):  # joined to the run's result there (the engine test checks the rest)
        assert np.array_equal(doc.session.annotation(frame) == obj, masks[frame] > 0)
    assert 2 not in np.unique(doc.session.labels(1)) and 3 not in np.unique(doc.session.labels(3))
    assert not doc.stale_frames().any()  # the run's own results are current, before and after each entry


def test_objects_imported_onto_an_out_of_date_result_wait_for_the_next_run(qtbot, app_factory, tmp_path):
    """QA pass 64: imported onto a frame whose result a correction had made out of date, entering objects joined
    that result at once, and the stale mask became an annotation, never propagated over again."""
    from stm_core.io.masks import write_mask

    window = app_factory()
    clip = make_frames(tmp_path / "clip", count=6)
    window.controller.open(clip)
    annotate_first_frame(window)
    doc, prop = window.document, window.controller.propagation
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward", 0)
    doc.seek(0)
    doc.begin_stroke((60.0, 20.0), 1, 9, erase=False)  # a correction: the results after it are out of date
    doc.end_stroke()
    assert doc.stale_frames()[3]
    qtbot.waitUntil(lambda: not prop.running, timeout=WAIT_MS)  # the run's thread ends after its report
    entering = np.zeros((64, 96), np.uint8)
    entering[50:60, 80:90] = 2
    (tmp_path / "masks").mkdir()
    write_mask(tmp_path / "masks" / "00003.png", entering)
    assert window.controller.import_mask_folder(tmp_path / "masks", as_annotations=True)
    assert doc.entering_frames() == [3] and doc.annotated_frames() == [0]
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward", 0)
    assert doc.annotated_frames() == [0, 3] and not doc.stale_frames().any()


def test_a_backward_run_over_a_frame_where_objects_enter_keeps_them_through_reopening(qtbot, app_factory, tmp_path):
    """Eighth QA pass: a backward run gave the frame where imported objects wait a result, and saving wrote that
    result over them; after reopening they were gone for good."""
    from stm_core.io.masks import write_mask

    window = app_factory()
    clip = make_frames(tmp_path / "clip", count=6)
    window.controller.open(clip)
    annotate_first_frame(window)
    doc, prop = window.document, window.controller.propagation
    entering = np.zeros((64, 96), np.uint8)
    entering[50:60, 80:90] = 2
    (tmp_path / "masks").mkdir()
    write_mask(tmp_path / "masks" / "00002.png", entering)
    assert window.controller.import_mask_folder(tmp_path / "masks", as_annotations=True)
    doc.seek(4)
    annotate_first_frame(window)  # frame 4 annotated too
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("backward", 4)
    assert doc.entering_frames() == [2] and doc.session.has_result(2)
    result = doc.session.labels(2)
    assert np.array_equal(result == 2, entering == 2)  # shown on their frame over the run's result
    window.close()

    window = app_factory()
    window.controller.open(clip)
    doc = window.document
    assert doc.entering_frames() == [2] and np.array_equal(doc.session.entering_labels(2), entering)
    qtbot.waitUntil(lambda: doc.session.has_result(2), timeout=10_000)
    assert np.array_equal(doc.session.labels(2), result)
    doc.seek(2)  # ninth QA pass: a touch-up there started from the result alone, and they were gone for good
    doc.begin_stroke((10.0, 10.0), doc.add_object().id, 5, erase=False)  # a new object: surely a change
    doc.end_stroke()
    assert doc.is_annotated(2) and np.array_equal(doc.session.annotation(2) == 2, entering == 2)


def test_a_preview_then_adaptation_steps_show_before_the_adapted_frames(qtbot, app_factory, frame_dir,
                                                                          monkeypatch):
    from app.settings import AppSettings
    from stm_core.engine.settings import EngineSettings

    monkeypatch.setattr(AppSettings, "engine_settings", lambda self: EngineSettings(
        device="cpu", random_init=True, fast=False, adapt_steps=3, preview_frames=2))
    window = app_factory()
    window.controller.open(frame_dir)
    annotate_first_frame(window)
    doc, prop = window.document, window.controller.propagation
    events: list[tuple] = []
    prop.previewed.connect(lambda frame: events.append(("preview", frame, doc.session.has_result(frame),
                                                        bool(doc.stale_frames()[frame]), doc.is_preview(frame))))
    prop.adapting.connect(lambda done, steps: events.append(("adapt", done, steps, window.status.progress.text())))
    prop.progress.connect(lambda frame, done, total, fps: events.append(("frame", done)))
    notes: list[str] = []  # sixth GUI QA pass: a busy bar drew none of these
    prop.started.connect(lambda *_: notes.append(window.status.progress.text()))
    prop.previewed.connect(lambda frame: notes.append(window.status.progress.text()))
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward", 0)
    assert notes == ["Propagating forward from 1…", "Preview to frame 2, adapting next…",
                     "Preview to frame 3, adapting next…"]
    assert events[:2] == [("preview", 1, True, True, True), ("preview", 2, True, True, True)]  # stale until redone
    assert [e[:3] for e in events[2:5]] == [("adapt", 1, 3), ("adapt", 2, 3), ("adapt", 3, 3)]
    assert events[3][3].startswith("Adapting 2/3 · ") and events[3][3].endswith(" left")
    assert [e for e in events[5:]] == [("frame", 1), ("frame", 2), ("frame", 3)]
    assert not doc.stale_frames().any() and not any(doc.is_preview(i) for i in range(doc.num_frames))


def test_clearing_a_frames_annotation_lets_propagation_run_over_it(qtbot, app_factory, tmp_path, dialogs,
                                                                  monkeypatch):
    """QA pass 10: a frame annotated by an import, or left empty by removing every object, stopped every
    forward run there, and nothing could make it an ordinary frame again. Shift+Delete (after a confirmation
    that Enter declines: it cannot be undone, QA pass 88) clears it: the workspace forgets it and the next run
    covers it."""
    from PySide6.QtWidgets import QMessageBox

    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    doc.seek(3)
    doc.begin_stroke((50.0, 30.0), doc.add_object().id, 9, erase=False)  # a new object: always a change
    doc.end_stroke()
    doc.replace_labels(np.zeros_like(doc.labels))  # then an empty annotation
    assert doc.is_annotated(3) and doc.can_undo()
    answer_yes = QMessageBox.question
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *args: args[4]))  # Enter: the default
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete, Qt.KeyboardModifier.ShiftModifier)
    assert doc.is_annotated(3) and doc.can_undo()
    monkeypatch.setattr(QMessageBox, "question", staticmethod(answer_yes))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete, Qt.KeyboardModifier.ShiftModifier)
    assert dialogs and dialogs[-1][0] == "Clear annotation"
    assert not doc.is_annotated(3) and not doc.can_undo() and doc.annotated_frames() == [0]
    autosaver = window.controller.autosaver
    assert autosaver.save_now()
    assert not (autosaver.workspace.root / "annotations" / "00003.png").exists()
    doc.seek(0)
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward")
    assert not doc.stale_frames().any() and all(doc.session.has_result(i) for i in range(6))
    doc.seek(2)
    asked = len(dialogs)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete, Qt.KeyboardModifier.ShiftModifier)  # nothing to clear
    assert len(dialogs) == asked and "no annotation" in window.status.currentMessage()


def test_the_immediate_save_of_an_edit_holds_the_stale_marks_it_causes(qtbot, app_factory, tmp_path, dialogs):
    """QA pass 11: killed 0.3 s after clearing an annotation, the reopened workspace showed the cleared frame's
    old result as current: the save made at once ran before the frames were marked stale."""
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    saved = []
    doc.maskStored.connect(lambda frame, urgent: urgent and saved.append(set(np.flatnonzero(doc.stale_frames()))))
    new = doc.add_object().id  # painting a new object always changes the mask
    for frame in (5, 3):
        doc.seek(frame)
        doc.begin_stroke((50.0, 30.0), new, 9, erase=False)
        doc.end_stroke()
    doc.undo()
    doc.redo()
    doc.clear_annotation()  # frame 3's result came from before frame 5 was annotated: out of date
    assert saved == [{1, 2, 3, 4}, {1, 2, 4}, {1, 2, 3, 4}, {1, 2, 4}, {1, 2, 3, 4}]


def test_out_of_date_frames_are_hatched_on_the_timeline(qtbot, app_factory, tmp_path):
    """QA: the out-of-date marks, a flat red, read like the lane of object 1, whose DAVIS colour is dark red.
    They are hatched: the blue of the frames with masks shows between the red lines."""
    from PySide6.QtCore import QPointF

    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    doc.seek(2)
    doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)  # a correction: the results around it are out of date
    doc.end_stroke()
    assert list(np.flatnonzero(doc.stale_frames())) == [1, 3, 4, 5]
    timeline = window.timeline
    timeline.resize(400, timeline.height())
    timeline.refresh()
    image = timeline.grab().toImage()
    at = timeline.mapFromScene(timeline.getPlotItem().vb.mapViewToScene(QPointF(4, 0.06)))
    strip = {image.pixelColor(x, y).getRgb()[:3] for x in range(at.x() - 8, at.x() + 8) for y in (at.y() - 1, at.y())}
    red = {c for c in strip if c[0] > 200 and c[1] < 120 and c[2] < 120}
    blue = {c for c in strip if c[2] > c[0] + 30}
    assert red and blue, strip  # red lines, and the blue of a frame with a mask between them


def test_after_a_run_one_way_from_a_correction_the_note_names_the_red_frames_on_its_other_side(qtbot, app_factory,
                                                                                                tmp_path):
    """QA pass 88: after F from a corrected frame, the frames before it stayed out of date, and the run's note did
    not say so (the export dialog did, later)."""
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, 6)
    doc.seek(3)
    doc.begin_stroke((50.0, 30.0), 1, 9, erase=False)
    doc.end_stroke()
    assert doc.stale_frames()[1:3].all()
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("forward")
    assert window.status.currentMessage().endswith(
        " · 2 frames before frame 4 still out of date: Shift+F there propagates them")
    with qtbot.waitSignal(prop.finished, timeout=WAIT_MS):
        prop.start("backward")
    assert "still out of date" not in window.status.currentMessage()


def test_catch_up_runs_cover_every_stretch_that_needs_a_mask_once():
    from app.propagation import catch_up_runs

    needed = np.zeros(12, bool)
    assert catch_up_runs([0, 5, 9], needed) == []
    needed[[2, 10]] = True
    assert catch_up_runs([0, 5, 9], needed) == [(0, "forward"), (9, "forward")]
    needed[[1, 7]] = True
    assert catch_up_runs([3, 5, 9], needed) == [(3, "backward"), (5, "forward"), (9, "forward")]
    needed[4] = True
    assert catch_up_runs([3, 5, 9], needed) == [(3, "both"), (5, "forward"), (9, "forward")]
    assert catch_up_runs([], needed) == []


def test_propagate_all_brings_every_stretch_up_to_date_in_one_go(qtbot, app_factory, tmp_path, monkeypatch):
    """After corrections in several places, one key instead of a run from each annotated frame."""
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, count=12)
    for frame in (4, 9):  # two corrections: the stretches around them are out of date
        doc.seek(frame)
        doc.begin_stroke((60.0, 40.0), 1, 7, erase=False)
        doc.end_stroke()
    assert doc.stale_frames().sum() == 12 - 3
    started = []
    prop.started.connect(lambda direction, start: started.append((start, direction)))
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        qtbot.keyClick(window.canvas, Qt.Key.Key_F,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert started == [(0, "forward"), (4, "forward"), (9, "forward")]
    assert doc.result_frames().all() and not doc.stale_frames().any()
    assert window.status.currentMessage().startswith("Propagation done: 9 frames (from both sides: 16 propagated)")
    with qtbot.waitSignal(prop.failed, timeout=WAIT_MS) as said:  # nothing left
        prop.start_all()
    assert said.args == ["Nothing to propagate", "Every frame has an up-to-date mask."]
    doc.seek(6)  # a cancel ends the catch-up, and says how to go on
    doc.begin_stroke((60.0, 40.0), 1, 7, erase=False)
    doc.end_stroke()
    doc.seek(2)
    doc.begin_stroke((60.0, 40.0), 1, 7, erase=False)
    doc.end_stroke()
    slow_down(doc.session, monkeypatch, 0.3)
    started.clear()
    prop.start_all()
    qtbot.waitUntil(lambda: bool(started), timeout=WAIT_MS)
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        prop.cancel()
    assert started == [(0, "forward")] and doc.stale_frames().any()
    assert window.status.currentMessage().endswith("Ctrl+Shift+F goes on")
    notes = []
    window.controller.message.connect(notes.append)
    started.clear()
    prop.start_all()
    qtbot.waitUntil(lambda: bool(started), timeout=WAIT_MS)
    doc.seek(6)  # QA pass 108: an undo's note named Ctrl+F on the catch-up's first run
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        window.controller.undo()
    assert any(n.startswith("Undo stopped the propagation") and n.endswith("press Ctrl+Shift+F to propagate again")
               for n in notes)


def test_propagate_all_asked_during_a_run_replaces_it_and_runs_every_stretch(qtbot, app_factory, tmp_path,
                                                                           monkeypatch):
    window, doc, prop = propagated_clip(qtbot, app_factory, tmp_path, count=10)
    for frame in (3, 7):
        doc.seek(frame)
        doc.begin_stroke((60.0, 40.0), 1, 7, erase=False)
        doc.end_stroke()
    slow_down(doc.session, monkeypatch, 0.1)
    doc.seek(3)
    prop.start("backward")
    started = []
    prop.started.connect(lambda direction, start: started.append((start, direction)))
    with qtbot.waitSignal(prop.runningChanged, timeout=WAIT_MS, check_params_cb=lambda running: not running):
        prop.start_all()
    assert started == [(0, "forward"), (3, "forward"), (7, "forward")]
    assert doc.result_frames().all() and not doc.stale_frames().any()
    assert window.status.currentMessage().startswith("Propagation done: 7 frames")


def test_a_run_cancelled_while_adapting_says_how_to_start_it_again(window):
    """QA pass 107: "Propagation cancelled while adapting to the video (45 s)", and no word of what next."""
    from stm_core.session import PropagationReport

    prop = window.controller.propagation
    prop._run_key = window.document.annotation_key()  # as a run started from the annotations as they are
    window.status._on_finished(PropagationReport(0, "forward", cancelled=True, seconds=30.0, adapt_seconds=29.2,
                                                 previewed=[1, 2]))
    assert window.status.currentMessage().endswith(" · F on frame 1 starts it again")
