"""The widget-free layer of the app: painting, undo, overlay rendering, objects, shortcut table."""

from __future__ import annotations

import numpy as np
import pytest

from app.document import Document
from app.objects import ObjectTable
from app.overlay import OverlayMode, apply_lut, boundary, composite, label_lut, render
from app.painting import Rect, paint_segment
from app.shortcuts import COMMANDS, clashes, groups, keymap
from app.undo import Edit, UndoHistory
from stm_core.engine.settings import EngineSettings
from stm_core.session import AnnotationSession


def test_paint_segment_touches_only_its_rectangle():
    labels = np.zeros((1080, 1920), np.uint8)
    rect = paint_segment(labels, (100.0, 100.0), (300.0, 120.0), 21, 3, erase=False)
    assert rect is not None and rect.x0 <= 90 and rect.x1 >= 310
    assert labels[100, 100] == 3 and labels[120, 300] == 3 and labels[110, 200] == 3
    outside = labels.copy()
    outside[rect.slices()] = 0
    assert not outside.any()


def test_a_dab_paints_what_its_ring_covers():
    """Sixth GUI QA pass: sizes 1 and 2 both painted 1 px, 3 and 4 a 5-pixel plus, 24 a 23 px disc under a
    24 px ring, wherever the cursor was. Now the pixels whose centres lie inside the ring are painted."""
    def width(diameter: int, at: float) -> int:
        labels = np.zeros((80, 80), np.uint8)
        paint_segment(labels, (at, at), (at, at), diameter, 1, erase=False)
        return int(labels.any(0).sum())
    # even sizes are exact with the cursor between pixels, odd ones on a pixel centre; 1 px always paints
    assert [width(d, 40.5) for d in (1, 2, 3, 4, 24)] == [1, 2, 2, 4, 24]
    assert [width(d, 40.0) for d in (1, 2, 3, 5, 24)] == [1, 1, 3, 5, 23]
    labels = np.zeros((80, 80), np.uint8)
    paint_segment(labels, (10.5, 40.5), (60.5, 40.5), 6, 1, erase=False)
    assert labels[:, 30].sum() == 6 and labels[40, 10:61].all()  # a stroke is as wide as its brush


def test_eraser_only_clears_its_object():
    labels = np.zeros((50, 50), np.uint8)
    labels[:, :25] = 1
    labels[:, 25:] = 2
    paint_segment(labels, (10.0, 25.0), (40.0, 25.0), 9, 1, erase=True)
    assert labels[25, 12] == 0 and labels[25, 30] == 2


def test_paint_outside_frame_is_ignored():
    labels = np.zeros((20, 20), np.uint8)
    assert paint_segment(labels, (-50.0, -50.0), (-40.0, -40.0), 5, 1, erase=False) is None


def test_undo_history_is_per_frame_and_redo_clears_on_new_edit():
    history = UndoHistory(limit=3)
    a, b = np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8)
    for _ in range(5):
        history.push(0, Edit.capture(a, b, Rect(0, 0, 4, 4), True))
    assert history.can_undo(0) and not history.can_undo(1)
    assert [history.take_undo(0) is not None for _ in range(4)] == [True, True, True, False]
    assert history.can_redo(0)
    history.push(0, Edit.capture(a, b, Rect(0, 0, 2, 2), True))
    assert not history.can_redo(0)


def test_overlay_modes():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:8, 2:8] = 1
    objects = ObjectTable()
    objects.add()
    lut = label_lut(objects)
    filled = render(labels, OverlayMode.FILLED, lut)
    assert filled[5, 5, 3] == 255 and filled[0, 0, 3] == 0
    contours = render(labels, OverlayMode.CONTOURS, lut)
    assert contours[5, 5, 3] == 0 and contours[2, 5, 3] == 255
    part = render(labels, OverlayMode.CONTOURS, lut, Rect(2, 2, 6, 6))
    assert np.array_equal(part, contours[2:6, 2:6])
    prob = np.full((10, 10), 200, np.uint8)
    heat = render(labels, OverlayMode.PROBABILITY, lut, probability=prob)
    assert heat[0, 0, 3] > 150
    objects.get(1).visible = False
    assert not render(labels, OverlayMode.FILLED, label_lut(objects))[..., 3].any()
    assert boundary(labels)[2, 2] == 1


def test_object_table_ids_and_json_round_trip():
    table = ObjectTable()
    assert [table.add().id for _ in range(3)] == [1, 2, 3]
    table.remove(2)
    assert table.retired() == [2] and table.add().id == 4  # saved masks may still hold 2's pixels (QA pass 87)
    assert table.ensure({0, 7, 1, 2}) == [2, 7] and table.retired() == []  # masks that name it bring it back
    table.remove(2)
    assert [table.add().id for _ in range(249)][-1] == 254 and table.add().id == 2  # when no other id is free
    for obj_id in range(8, 255):
        table.remove(obj_id)
    table.get(7).name = "Späť 7"
    again = ObjectTable.from_json(table.to_json())
    assert [(o.id, o.name, o.color, o.visible) for o in again] == [(o.id, o.name, o.color, o.visible) for o in table]
    assert table.get(1).color == (128, 0, 0)  # DAVIS palette


def test_shortcut_table_has_no_duplicate_keys_and_covers_the_brief():
    keys = [k for c in COMMANDS for k in c.keys]
    assert len(keys) == len(set(keys))
    for key in ("Left", "Right", "Shift+Left", "Shift+Right", "Home", "End", "Space", "B", "E", "[", "]",
                "F", "Shift+F", "Ctrl+F", "Esc", "Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+S", "Ctrl+E", "F1", "U",
                *map(str, range(1, 10))):
        assert key in keys
    assert sum(len(v) for v in groups().values()) == sum(1 for c in COMMANDS if c.keys)
    assert clashes(keymap()) == []


@pytest.fixture
def document(qtbot, frame_dir):
    doc = Document()
    session = AnnotationSession.open(frame_dir, EngineSettings(device="cpu", random_init=True))
    objects = ObjectTable()
    objects.add()
    objects.add()
    doc.load(session, objects)
    return doc


def test_stroke_commits_annotation_once_and_undo_restores(document):
    session = document.session
    assert not session.is_annotated(0)
    document.begin_stroke((20.0, 20.0), 1, 7, erase=False)
    document.extend_stroke((40.0, 20.0))
    assert not session.is_annotated(0)  # the engine never sees a half-painted stroke
    document.end_stroke()
    assert session.is_annotated(0) and session.labels(0)[20, 30] == 1
    document.begin_stroke((30.0, 20.0), 2, 3, erase=False)
    document.end_stroke()
    assert session.labels(0)[20, 30] == 2
    document.undo()
    assert session.labels(0)[20, 30] == 1 and session.is_annotated(0)
    document.undo()
    assert not session.is_annotated(0) and session.labels(0) is None  # no mask before it: none after undo
    assert not document.result_frames()[0] and not document.labels.any()
    document.redo()
    document.redo()
    assert session.is_annotated(0) and session.labels(0)[20, 30] == 2
    assert not document.can_redo() and document.can_undo()


def test_hidden_objects_are_not_painted_over_and_an_edited_object_shows(document):
    """Sixth GUI QA pass: painting object 2 across hidden object 1 overwrote it unseen, and strokes or Delete
    on a hidden selected object changed it with nothing on screen."""
    document.begin_stroke((20.0, 20.0), 1, 9, erase=False)
    document.end_stroke()
    document.set_object_visible(1, False)
    document.begin_stroke((5.0, 20.0), 2, 5, erase=False)
    document.extend_stroke((40.0, 20.0))
    document.end_stroke()
    labels = document.session.labels(0)
    assert labels[20, 20] == 1 and labels[20, 35] == 2 and labels[20, 8] == 2  # around it, not over it
    document.begin_stroke((20.0, 30.0), 1, 3, erase=False)  # painting the hidden object shows it again
    document.end_stroke()
    assert document.objects.get(1).visible
    document.set_object_visible(2, False)
    document.erase_object_on_frame(2)
    assert document.objects.get(2).visible and 2 not in np.unique(document.session.labels(0))


def test_an_empty_name_is_refused_and_the_views_told(document):
    told = []
    document.objectsChanged.connect(lambda: told.append(document.objects.get(1).name))
    document.rename_object(1, "  ")
    assert told == ["Object 1"]  # the list rebuilds and shows the old name again


def test_replace_labels_rejects_wrong_size(document):
    with pytest.raises(ValueError):
        document.replace_labels(np.zeros((10, 10), np.uint8))


def test_next_uncertain_walks_the_ranking(document, monkeypatch):
    unc = np.array([0.0, 0.5, 0.7, 0.9])
    monkeypatch.setattr(document, "uncertainty", lambda: unc)
    assert document.next_uncertain() == (3, 1, 3)
    document.seek(3)
    assert document.next_uncertain() == (2, 2, 3)
    document.seek(2)
    assert document.next_uncertain() == (1, 3, 3)
    document.seek(1)
    assert document.next_uncertain() == (3, 1, 3)  # round again: the rank says so
    document.seek(2)  # reached by scrubbing, not by U: the most uncertain again (QA pass 21: the one after it)
    assert document.next_uncertain() == (3, 1, 3)


def test_next_lost_finds_where_an_object_vanishes_and_names_it(document):
    """L: the next frame whose mask lacks an object the nearest earlier mask shows (a frame without a mask
    is no evidence either way), wrapping around; an object never found is never "lost"."""
    session = document.session
    first, second = list(document.objects)
    both = np.zeros((64, 96), np.uint8)
    both[5:20, 5:20] = first.id
    both[30:50, 40:60] = second.id
    session.set_annotation(0, both)
    session.set_result(2, np.where(both == second.id, 0, both))  # frame 1 has no mask
    session.set_result(3, both)
    assert document.object_areas().tolist() == [[225, 400], [-1, -1], [225, 0], [225, 400]]
    assert document.next_lost() == (2, [second])
    document.seek(2)
    assert document.next_lost() == (2, [second])  # the only one: found again after wrapping around
    session.set_annotation(0, np.where(both == first.id, 0, both))  # counted anew when annotated anew
    assert document.object_areas()[0].tolist() == [0, 400]
    session.set_result(2, both)
    assert document.next_lost() is None


def test_remove_object_clears_it_everywhere(document):
    document.begin_stroke((20.0, 20.0), 2, 9, erase=False)
    document.end_stroke()
    document.remove_object(2)
    assert 2 not in document.objects and document.session.labels(0) is None  # nothing else was painted there
    assert not document.can_undo()


def test_a_frame_left_with_nothing_painted_by_removing_an_object_is_no_longer_annotated(qtbot, document):
    """QA pass 29: a result painted over with only a new object, which was then removed, stayed an annotated
    frame holding the old result: every later run stopped there and the frames after it stayed red."""
    session = document.session
    result = np.zeros((64, 96), np.uint8)
    result[10:30, 10:30] = 1
    for frame in (1, 2):  # as a propagation stores and notes them
        session.set_result(frame, result)
        document.note_result(frame, document.annotation_key())

    def paint(frame: int, obj: int, erase: bool = False) -> None:
        document.seek(frame)
        document.begin_stroke((15.0, 15.0) if erase else (60.0, 40.0), obj, 7, erase=erase)
        document.end_stroke()
    paint(1, 2)
    paint(3, 2)  # painted with the object alone, on a frame without a result
    assert document.annotated_frames() == [1, 3] and document.stale_frames()[2]
    notes: list[str] = []
    document.note.connect(notes.append)
    assert document.unannotated_by_removing(2) == [1, 3]  # known before, for the question (QA pass 78)
    assert document.unannotated_by_removing(1) == []
    document.remove_object(2)
    assert document.annotated_frames() == [] and not document.stale_frames().any()
    assert np.array_equal(session.labels(1), result) and session.labels(3) is None
    assert notes == ["Frames 2, 4 are no longer annotated: nothing painted was left there once the object was "
                     "removed"]
    paint(2, 3)
    paint(2, 1, erase=True)  # a correction besides the object: the frame stays annotated
    assert document.unannotated_by_removing(3) == []
    document.remove_object(3)
    assert document.annotated_frames() == [2] and (session.labels(2) != result).any()


def test_qt_binding_does_not_leak_bool_references(qtbot):
    """PySide6 6.12.0 drops a reference to True on every Signal.emit(): on Python < 3.12 the app then aborts
    after a few thousand signals (pyproject excludes it). Guard against such a binding being installed."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        ping = Signal(int)

    emitter = Emitter()
    emitter.ping.connect(lambda _: None)
    before = sys.getrefcount(True)
    for i in range(200):
        emitter.ping.emit(i)
    assert sys.getrefcount(True) - before > -50


def test_processing_height_preference_maps_to_engine_settings():
    from app.settings import RECOMMENDED_HEIGHT, Preferences

    assert Preferences().engine_settings().process_height is None  # the weights' recommended height
    assert Preferences(process_height=0).engine_settings().process_height == 0  # source size
    assert Preferences(process_height=360).engine_settings().process_height == 360
    assert Preferences().process_height == RECOMMENDED_HEIGHT
    assert Preferences(weights="").engine_settings().weights is None  # shipped weights
    assert Preferences(adapt_steps=12).engine_settings().adapt_steps == 12
    assert Preferences().engine_settings().adapt_steps is None  # the weights decide


def test_the_finished_note_tells_a_cancelled_adaptation_from_a_run():
    from app.views.status_bar import finished_note
    from stm_core.session import PropagationReport

    cancelled = PropagationReport(0, "forward", cancelled=True, seconds=30.0, adapt_seconds=29.2, previewed=[1, 2])
    assert finished_note(cancelled) == ("Propagation cancelled while adapting to the video (29 s); "
                                        "2 frames keep their preview")
    done = PropagationReport(0, "forward", frames=[1, 2], seconds=3.0, adapt_seconds=1.0)
    assert finished_note(done) == "Propagation done: 2 frames at 1.0 fps after adapting to the video for 1 s"
    # QA pass 22: cancelled during the preview, and every frame kept: "0 frames at 0.0 fps"; "1 frames"
    preview = PropagationReport(0, "forward", cancelled=True, seconds=0.6, previewed=[1])
    assert finished_note(preview) == "Propagation cancelled before adapting to the video; 1 frame keeps its preview"
    kept = PropagationReport(0, "forward", seconds=0.01, reused=[1, 2, 3, 3, 2, 1])  # a run and its run back
    assert finished_note(kept) == "Propagation done: all its 3 frames were done before, and kept"
    stopped = PropagationReport(0, "forward", cancelled=True, seconds=0.01, reused=[1, 2])  # QA pass 23
    assert finished_note(stopped) == "Propagation cancelled: 2 frames done before kept, none computed"
    went_on = PropagationReport(0, "forward", frames=[3], seconds=1.0, reused=[1, 2])
    assert finished_note(went_on) == "Propagation done: 1 frame at 1.0 fps; 2 frames done before kept"
    stopped = PropagationReport(0, "forward", frames=[1, 2], seconds=2.0, stopped_at=3)
    assert finished_note(stopped) == "Propagation stopped at frame 4, annotated meanwhile: 2 frames at 1.0 fps"
    # seventh CLI QA pass: a run and the run back over the same frames counted each frame twice
    blended = PropagationReport(0, "forward", frames=[1, 2, 3, 3, 2, 1], seconds=3.0)
    # and QA pass 91: the rate, of every pass, read as that of the frames
    assert finished_note(blended) == "Propagation done: 3 frames (from both sides: 6 propagated) at 2.0 fps"
    assert blended.updated == [1, 2, 3]
    one = PropagationReport(0, "forward", frames=[1], cancelled=True, seconds=0.2)  # QA pass 14: "1 frames"
    assert finished_note(one) == "Propagation cancelled: 1 frame at 5.0 fps"


def test_a_hand_edited_setting_out_of_range_falls_back_to_the_defaults(tmp_path):
    """Eighth QA pass: engine/mem_every=0 in the settings file made every open fail with a settings error; ninth:
    values far beyond what the dialog offers were kept."""
    from PySide6.QtCore import QSettings

    from app.settings import AppSettings, Preferences

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    for key, value in (("mem_every", 0), ("max_memory", -3), ("adapt_steps", 100000), ("mem_every", "9" * 20)):
        store.setValue(f"engine/{key}", value)
        assert AppSettings(store).preferences() == Preferences()
        assert AppSettings(store).engine_settings().mem_every >= 1
        store.remove(f"engine/{key}")


def test_stored_shortcuts_that_cannot_be_used_give_the_tables_keys(tmp_path):
    """A key map from a hand edit or another version: unreadable, clashing, an unknown command, no key."""
    from PySide6.QtCore import QSettings

    from app.settings import AppSettings
    from app.shortcuts import keymap

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings = AppSettings(store)
    for stored in ("{not json", '["D"]', '{"frame.next": ["D"], "frame.prev": ["D"]}', '{"frame.next": "D"}',
                   '{"frame.next": [""]}', '{"frame.next": ["Right", 5]}'):
        store.setValue("shortcuts", stored)
        assert settings.keymap() == keymap()
    store.setValue("shortcuts", '{"frame.next": ["F"]}')  # the user's key, taken from the table's command
    assert settings.keymap() == dict(keymap(), **{"frame.next": ("F",), "propagate.forward": ()})
    store.setValue("shortcuts", '{"frame.next": ["D"], "no.such.command": ["Q"], "frame.first": []}')
    assert settings.keymap() == dict(keymap(), **{"frame.next": ("D",), "frame.first": ()})


def test_editor_state_round_trips_and_ignores_what_a_hand_edit_broke(qtbot):
    from app.editor_state import EditorState

    state = EditorState()
    state.set_brush_size(40)
    state.set_export_choices({"folder": "/x/out", "coco": True, "fps": 25, "palette": False})
    again = EditorState()
    again.apply_json(state.to_json())
    assert again.to_json() == state.to_json() and again.export_choices["fps"] == 25
    again.apply_json({"brush_size": "huge", "export": {"folder": 3, "coco": "yes", "fps": True, "video": True,
                                                       "unknown": 1}})
    assert again.brush_size == 40 and again.export_choices == {"video": True}
    again.apply_json({"export": ["not", "a", "dict"]})
    assert again.export_choices == {}
    again.apply_json({"opacity": float("nan"), "export": {"fps": float("nan")}})  # QA pass 15: NaN stopped the panel
    assert again.opacity == state.opacity and again.export_choices == {}


def test_redo_is_dropped_when_a_result_replaces_the_mask_it_was_painted_on(document):
    """QA pass 16: a stroke undone on a frame without a mask, then a propagation's result there, then redo:
    the stroke's whole rectangle from before was pasted over the new result, and the frame became annotated."""
    session = document.session
    document.seek(2)
    document.begin_stroke((10.0, 10.0), 1, 3, erase=False)
    document.extend_stroke((85.0, 55.0))
    document.end_stroke()
    document.undo()
    assert document.can_redo() and not session.is_annotated(2)
    result = np.zeros((64, 96), np.uint8)
    result[20:40, 30:60] = 2
    session.set_result(2, result)
    document.note_result(2, document.annotation_key())
    assert not document.can_redo()
    document.redo()
    assert np.array_equal(session.labels(2), result) and not session.is_annotated(2)


def test_a_result_that_arrives_during_a_stroke_that_changes_nothing_is_shown_when_it_ends(document):
    """QA pass 17: an eraser drag held on a frame without a mask while the run's result for it arrived: the
    window went on showing no mask, and the next touch-up there annotated the frame from that blank view,
    wiping the result's objects."""
    session = document.session
    document.seek(2)
    document.begin_stroke((10.0, 10.0), 1, 5, erase=True)  # nothing to erase yet
    result = np.zeros((64, 96), np.uint8)
    result[20:40, 30:60] = 2
    session.set_result(2, result)
    document.note_result(2, document.annotation_key())
    document.extend_stroke((20.0, 10.0))
    document.end_stroke()
    assert np.array_equal(document.labels, result) and not session.is_annotated(2)
    document.begin_stroke((80.0, 60.0), 1, 3, erase=False)  # a touch-up in a corner keeps the result's object
    document.end_stroke()
    assert session.is_annotated(2) and (session.labels(2) == 2).sum() == (result == 2).sum()


def test_a_stroke_that_repaints_a_result_as_it_is_annotates_the_frame_and_undoes(document):
    """QA pass 68: painting over a propagated result with its own object changed no pixel, so the frame stayed
    unannotated with nothing said; the docs promise every finished stroke makes the frame annotated."""
    session = document.session
    result = np.zeros((64, 96), np.uint8)
    result[10:50, 10:80] = 1
    session.set_result(2, result)
    document.note_result(2, document.annotation_key())
    document.seek(2)
    document.begin_stroke((30.0, 30.0), 1, 9, erase=False)
    document.extend_stroke((50.0, 30.0))
    document.end_stroke()
    assert session.is_annotated(2) and np.array_equal(session.annotation(2), result)
    document.undo()
    assert not session.is_annotated(2) and np.array_equal(session.labels(2), result)
    document.seek(3)  # a frame with no mask: an eraser drag over nothing leaves it without one
    document.begin_stroke((30.0, 30.0), 1, 9, erase=True)
    document.end_stroke()
    assert not session.is_annotated(3)


def test_a_result_noted_after_its_frame_was_annotated_leaves_it_current(document):
    """QA pass 17: a stroke released on frame k after the run stored k's result, before its note arrived:
    the annotated frame was marked out of date (red under the green triangle)."""
    session = document.session
    document.seek(3)
    old_key = document.annotation_key()  # the run started from these annotations
    document.begin_stroke((10.0, 10.0), 1, 5, erase=False)
    document.end_stroke()
    session.set_result(3, np.zeros((64, 96), np.uint8))
    document.note_result(3, old_key)
    assert session.is_annotated(3) and not document.stale_frames()[3]


def test_painting_a_frame_the_run_has_not_reached_says_the_other_objects_count_as_absent(document):
    """QA pass 17: object 12 painted on frame 21 before propagating annotated that frame with it alone: the
    horse and rider, tracked from frame 0, were absent there for good, without a word."""
    notes = []
    document.note.connect(notes.append)
    document.begin_stroke((20.0, 20.0), 1, 9, erase=False)  # object 1 annotated on frame 0: nothing to say
    document.end_stroke()
    assert notes == []
    document.seek(3)  # no mask yet
    new = document.add_object("Latecomer")
    document.begin_stroke((70.0, 40.0), new.id, 7, erase=False)
    document.end_stroke()
    assert len(notes) == 1 and notes[0].startswith("Frame 4 had no mask yet")
    assert "Object 1 counts as absent there. To keep it," in notes[0]
    document.begin_stroke((75.0, 40.0), new.id, 7, erase=False)  # the frame has a mask now: said once
    document.end_stroke()
    assert len(notes) == 1


def test_the_review_videos_blend_is_the_float_blend_to_within_one_level():
    """QA pass 75: blending in float32 over every pixel took 100-170 ms a 1080p frame; the integer blend must
    look the same: filled masks at the opacity, solid contours, hidden objects and background untouched."""
    from dataclasses import replace

    from app.objects import TrackedObject, default_color

    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, (90, 120)).astype(np.uint8)
    objects = [TrackedObject(i, f"o{i}", default_color(i)) for i in range(1, 5)]
    objects[2] = replace(objects[2], visible=False)
    lut = label_lut(objects)
    for opacity in (0.5, 0.3, 1.0):
        fill = apply_lut(lut, labels).astype(np.float32)
        edge = apply_lut(lut, boundary(labels)).astype(np.float32)
        alpha, edge_alpha = fill[..., 3:4] / 255.0 * opacity, edge[..., 3:4] / 255.0
        expected = (frame * (1.0 - alpha) + fill[..., 2::-1] * opacity) * (1.0 - edge_alpha) + edge[..., 2::-1]
        got = composite(frame, labels, lut, opacity)
        assert np.abs(got.astype(int) - np.clip(expected + 0.5, 0, 255).astype(int)).max() <= (opacity != 0.5)
    assert np.array_equal(composite(frame, np.zeros((90, 120), np.uint8), lut), frame)


def test_a_big_picture_is_decoded_off_the_gui_thread_even_when_it_is_the_next_frame(qtbot):
    """QA pass 105: a 4K PNG (one frame to decode) took 0.2-0.6 s on the GUI thread a step, and held arrow keys
    went on stepping for 12 s after they were let go."""
    import numpy as np

    from app.frame_pictures import FramePictures

    class Session:
        def __init__(self, size):
            self.frame_size = size

        def frame_decode_cost(self, frame):
            return 0 if frame == 0 else 1  # frame 0 is cached

        def frame(self, frame):
            return np.zeros((*self.frame_size, 3), np.uint8)

    pictures = FramePictures()
    small, big = Session((1080, 1920)), Session((2160, 3840))
    pictures.fetch(small, 1)
    assert not pictures.pending(small, 1)  # decoded on the GUI thread when shown
    pictures.fetch(big, 0)
    assert not pictures.pending(big, 0)  # cached
    with qtbot.waitSignal(pictures.ready, timeout=5000):
        pictures.fetch(big, 1)
        assert pictures.pending(big, 1)
    assert pictures.picture(big, 1).shape == (2160, 3840, 3)
    pictures.close()
