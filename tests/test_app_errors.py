"""Bad input never crashes the app or costs work: each case shows a dialog and the session stays usable."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QProgressDialog, QPushButton

from stm_core.io.masks import write_mask

from .conftest import make_frames, require_shared, two_objects_propagated
from .engine_helpers import write_cut_video


def test_unopenable_inputs_show_dialogs(app_factory, tmp_path, dialogs):
    window = app_factory()
    c = window.controller
    (tmp_path / "empty").mkdir()
    (tmp_path / "fake.mp4").write_bytes(b"this is not a video")
    for bad in (tmp_path / "missing", tmp_path / "empty", tmp_path / "fake.mp4"):
        assert not c.open(bad)
    assert len(dialogs) == 3 and all(title == "Cannot read input" for title, _ in dialogs)
    assert window.pages.currentIndex() == 0  # still on the start screen, still alive


def test_failed_open_keeps_the_current_video(app_factory, frame_dir, tmp_path, dialogs):
    window = app_factory()
    c = window.controller
    c.open(frame_dir)
    doc = window.document
    doc.begin_stroke((20.0, 20.0), 1, 9, erase=False)
    doc.end_stroke()
    assert not c.open(tmp_path / "missing")
    assert doc.session.is_annotated(0) and doc.num_frames == 4


def test_corrupt_frame_reports_on_display(app_factory, tmp_path, dialogs):
    frames = make_frames(tmp_path / "clip", count=3)
    data = (frames / "00001.png").read_bytes()
    (frames / "00001.png").write_bytes(data[: len(data) // 3])  # truncated
    window = app_factory()
    if window.controller.open(frames):
        window.document.seek(1)
    assert any("00001" in text for _, text in dialogs)


def test_a_frame_of_another_size_is_said_once_the_folder_is_opened(qtbot, app_factory, tmp_path, dialogs):
    """QA pass 101: the CLI refuses such a folder before any work; the app said so only when a run got there,
    after adapting for minutes."""
    frames = make_frames(tmp_path / "clip", count=4)
    make_frames(tmp_path / "small", count=4, size=(48, 80))
    (frames / "00002.png").write_bytes((tmp_path / "small" / "00002.png").read_bytes())
    window = app_factory()
    assert window.controller.open(frames)
    qtbot.waitUntil(lambda: any("00002.png is 80x48" in text for _, text in dialogs), timeout=10_000)
    assert "A propagation stops before that frame" in dialogs[-1][1]
    dialogs.clear()
    other = make_frames(tmp_path / "fine", count=3)
    assert window.controller.open(other)
    window.controller.wait_for_warm_up()
    qtbot.wait(50)
    assert dialogs == []


def test_a_video_cut_short_opens_with_a_warning(app_factory, tmp_path, dialogs):
    """Found by a QA pass: a truncated mkv opened as 19 of its 30 frames without a word."""
    path = write_cut_video(tmp_path / "cut.mkv")
    window = app_factory()
    assert window.controller.open(path)
    n = window.document.num_frames
    assert 5 < n < 30 and dialogs[-1][0] == "Video opened with a warning"
    assert "a length of 3.0 s but its data ends" in dialogs[-1][1] and f"({n} frames read)" in dialogs[-1][1]
    assert "cut short" in dialogs[-1][1]


def test_mask_imports_with_wrong_size_or_names(app_factory, frame_dir, tmp_path, dialogs):
    window = app_factory()
    c = window.controller
    c.open(frame_dir)
    big = tmp_path / "big.png"
    write_mask(big, np.ones((100, 100), np.uint8))
    assert not c.import_frame_mask(big)
    assert "100x100" in dialogs[-1][1]
    folder = tmp_path / "masks"
    folder.mkdir()
    write_mask(folder / "not_a_frame.png", np.ones((64, 96), np.uint8))
    assert not c.import_mask_folder(folder, as_annotations=True)
    assert "names no frame" in dialogs[-1][1]
    assert window.document.annotated_frames() == []


def test_a_mask_beside_an_objects_json_nested_too_deep_imports_as_without_one(app_factory, frame_dir, tmp_path,
                                                                             dialogs):
    """QA pass 103: Python's JSON reader raises RecursionError, not ValueError, for "[[[[…": the import failed
    with "Unexpected error" where a damaged objects.json is otherwise ignored."""
    window = app_factory()
    window.controller.open(frame_dir)
    folder = tmp_path / "masks"
    folder.mkdir()
    (folder / "objects.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    write_mask(folder / "00000.png", np.ones((64, 96), np.uint8))
    assert window.controller.import_frame_mask(folder / "00000.png")
    assert window.controller.import_mask_folder(folder, as_annotations=True)
    assert (window.document.session.labels(0) == 1).all()


def test_grayscale_mask_for_current_frame_is_undoable(qtbot, app_factory, frame_dir, tmp_path):
    window = app_factory()
    window.controller.open(frame_dir)
    grey = np.zeros((64, 96), np.uint8)
    grey[10:20, 10:30] = 255
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    assert window.controller.import_frame_mask(path)
    doc = window.document
    assert doc.session.labels(0)[15, 15] == 1 and doc.is_annotated(0)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not doc.is_annotated(0)


def test_palette_mask_with_new_labels_adds_objects(app_factory, frame_dir, tmp_path):
    window = app_factory()
    window.controller.open(frame_dir)
    labels = np.zeros((64, 96), np.uint8)
    labels[5:10, 5:10] = 7
    write_mask(tmp_path / "m.png", labels)
    window.controller.import_frame_mask(tmp_path / "m.png")
    assert 7 in window.document.objects


def test_cutie_judo_masks_slightly_off_size_are_resized_with_notice(app_factory, tmp_path, dialogs):
    images = require_shared("data", "cutie-examples", "images", "judo")
    masks = require_shared("data", "cutie-examples", "masks", "judo")
    window = app_factory()
    window.controller.open(images)
    assert window.controller.import_mask_folder(masks, as_annotations=True)
    doc = window.document
    assert doc.annotated_frames() == [0] and doc.entering_frames() == [5, 8, 13]  # they enter when reached
    assert dialogs[-1][0] == "Masks adjusted" and "00005" in dialogs[-1][1] and "resized" in dialogs[-1][1]
    assert len(doc.objects) >= 2


def test_an_import_over_painted_frames_is_asked_for_and_undoable(app_factory, frame_dir, tmp_path, dialogs,
                                                                  monkeypatch):
    """QA pass 12: importing a folder of 0/255 masks as annotated frames replaced frame 0's two painted objects
    with the imported one, without a question and with no undo. Now the window asks first (Cancel imports
    nothing) and Ctrl+Z on the frame brings the painted mask back."""

    window = app_factory()
    window.controller.open(frame_dir)
    doc = window.document
    second = doc.add_object("Second")
    for obj_id, at in ((1, (20.0, 20.0)), (second.id, (60.0, 40.0))):
        doc.begin_stroke(at, obj_id, 9, erase=False)
        doc.end_stroke()
    painted = doc.session.labels(0)
    folder = tmp_path / "masks"
    folder.mkdir()
    binary = np.zeros((64, 96), np.uint8)
    binary[30:50, 10:30] = 255
    for name in ("00000.png", "00003.png"):
        Image.fromarray(binary).save(folder / name)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    monkeypatch.setattr(QMessageBox, "exec", lambda box: 0)  # the import dialog, answered "Annotated frames":
    monkeypatch.setattr(QMessageBox, "clickedButton", lambda box: box.buttons()[0])
    asked, parents = [], []
    monkeypatch.setattr(QMessageBox, "question", staticmethod(
        lambda parent, title, text, *a: asked.append(text) or parents.append(parent)
        or QMessageBox.StandardButton.Cancel))
    window.import_masks_dialog()
    assert "1 annotated frame (1)" in asked[0] and "Ctrl+Z" in asked[0]
    # over the import's progress dialog: under it, once that showed itself, the question was blocked (QA pass 78)
    assert isinstance(parents[0], QProgressDialog)
    assert np.array_equal(doc.session.labels(0), painted) and not doc.session.is_annotated(3)  # cancelled
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: QMessageBox.StandardButton.Yes))
    window.import_masks_dialog()
    assert np.array_equal(doc.session.labels(0), (binary > 0).astype(np.uint8))
    assert doc.session.is_annotated(3)
    doc.undo()
    assert np.array_equal(doc.session.labels(0), painted) and doc.session.is_annotated(0)
    doc.redo()
    assert np.array_equal(doc.session.labels(0), (binary > 0).astype(np.uint8))


def test_drop_a_folder_opens_it(app_factory, frame_dir):
    window = app_factory()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(frame_dir))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.document.num_frames == 4


def test_demo_clip_opens_annotated_and_propagates(qtbot, app_factory):
    window = app_factory()
    demo_button = next(b for b in window.start_screen.findChildren(QPushButton) if "demo" in b.text())
    demo_button.click()
    assert window.pages.currentIndex() == 1
    doc = window.document
    assert doc.num_frames == 40 and doc.frame_size == (270, 480)
    assert doc.annotated_frames() == [0]
    assert [o.name for o in doc.objects] == ["Disc", "Box", "Star"]
    assert set(np.unique(doc.session.labels(0))) == {0, 1, 2, 3}
    QApplication.processEvents()  # QA pass 72: the hint went after 6 s, before a new user had looked
    assert "press F to propagate" in window.status.currentMessage() and not window.status._note_timer.isActive()


def test_a_video_opened_without_masks_says_what_to_do_first_then_next(qtbot, app_factory, frame_dir):
    """QA pass 72: after opening a video nothing said to paint first. QA pass 88: that note stayed after painting."""
    window = app_factory()
    window.controller.open(frame_dir)
    assert window.status.currentMessage().startswith("Paint an object on a frame, then press F to propagate it (a "
                                                     "left drag paints")
    doc = window.document
    doc.seek(2)
    doc.begin_stroke((30.0, 30.0), 1, 9, erase=False)
    doc.end_stroke()
    said = "Frame 3 is annotated: press Ctrl+F to propagate it through the video both ways"
    assert window.status.currentMessage() == said
    doc.seek(0)
    doc.begin_stroke((30.0, 30.0), 1, 9, erase=False)  # said once
    doc.end_stroke()
    assert window.status.currentMessage() == said
    other = app_factory()  # QA pass 90: on the last frame F has nothing to propagate
    other.controller.open(make_frames(frame_dir.parent / "other", count=5))
    other.document.seek(4)
    other.document.begin_stroke((30.0, 30.0), 1, 9, erase=False)
    other.document.end_stroke()
    assert other.status.currentMessage() == "Frame 5 is annotated: press Shift+F to propagate it through the video"
    third = app_factory()  # QA pass 107: masks imported for two frames named only the first
    third.controller.open(make_frames(frame_dir.parent / "third", count=5))
    labels = np.zeros((64, 96), np.uint8)
    labels[20:40, 20:40] = 1
    third.document.import_masks({1: labels, 3: labels}, as_annotations=True)
    assert third.status.currentMessage() == "Frames 2, 4 are annotated: press Ctrl+Shift+F to propagate them " \
                                            "through the video"


def test_a_first_start_without_a_path_opens_the_demo_clip_and_later_ones_the_start_screen(qtbot, app_factory):
    """README: with no argument the app starts on its embedded default, the demo clip; it showed the start screen
    (session 24). Once a video was opened, a start without a path lists the recent videos instead."""
    from main import open_first

    window = app_factory()
    open_first(window.controller, None, False)
    assert window.pages.currentIndex() == 1 and window.document.num_frames == 40
    assert window.document.annotated_frames() == [0]
    window.close()  # saves, and lets the demo's workspace go
    again = app_factory()
    open_first(again.controller, None, False)
    assert again.pages.currentIndex() == 0
    assert again.start_screen.recent.count() == 1
    open_first(again.controller, None, True)
    assert again.pages.currentIndex() == 1
    again.close()
    gone = app_factory()  # QA pass 71: its recent videos on a drive not mounted now, the demo opened
    gone.controller.settings._store.setValue("recent", ["/media/unmounted/shoot.mp4"])
    open_first(gone.controller, None, False)
    assert gone.pages.currentIndex() == 0


def test_read_only_workspace_location_falls_back_to_data_dir(app_factory, tmp_path):
    from dataclasses import replace

    frames = make_frames(tmp_path / "ro" / "clip")
    blocker = frames.with_name("clip.stmws")
    blocker.write_text("a file where the workspace folder would go")
    window = app_factory()
    c = window.controller
    c.settings.set_preferences(replace(c.settings.preferences(), workspace_beside_video=True))
    assert c.open(frames)
    assert c.autosaver.workspace.root.is_relative_to(c.data_dir)
    shutil.rmtree(frames)


def test_unusable_device_is_reported_once_and_settings_kept(app_factory, frame_dir, dialogs, monkeypatch):
    from dataclasses import replace

    from stm_core.errors import StmError
    from stm_core.session import AnnotationSession

    window = app_factory()
    c = window.controller
    c.open(frame_dir)

    def no_cuda(self):
        raise StmError("CUDA was requested but no CUDA device is available: choose the CPU as the device "
                       "(--device cpu, or the Device setting)")

    monkeypatch.setattr(AnnotationSession, "memory_status", no_cuda)
    before = c.settings.preferences()
    old_session = window.document.session
    c.apply_preferences(replace(before, device="cuda", mem_every=3))
    assert dialogs[-1][1].startswith("CUDA was requested")
    assert c.settings.preferences() == before and window.document.session is old_session
    window.status.poll_memory()
    window.status.poll_memory()
    assert sum("CUDA" in text for _, text in dialogs) == 2  # the status poll reports it once, not every second


@pytest.mark.parametrize("case", ["missing", "truncated", "not weights"])
def test_a_weights_file_that_does_not_load_is_refused_when_chosen(app_factory, frame_dir, dialogs, tmp_path, case):
    """QA pass 37: a missing, truncated or foreign weights file was "applied, masks kept" and said only at the
    next F. With no video open it is refused too."""
    from dataclasses import replace

    from PySide6.QtWidgets import QDialog

    from app.views.settings_dialog import SettingsDialog
    from stm_core.model.checkpoint import DEFAULT_WEIGHTS

    weights = tmp_path / "weights.pt"
    if case == "truncated":
        weights.write_bytes(DEFAULT_WEIGHTS.read_bytes()[:100_000])
    elif case == "not weights":
        weights.write_text("not a checkpoint")
    window = app_factory()
    c = window.controller
    before = c.settings.preferences()
    for opened in (False, True):
        if opened:
            c.open(frame_dir)
        c.apply_preferences(replace(before, weights=str(weights)))
        assert dialogs[-1][0] == "Settings not applied" and "weights.pt" in dialogs[-1][1]
        assert dialogs[-1][1].endswith("The previous settings are kept.")
        assert c.settings.preferences() == before
    dialog = SettingsDialog(replace(before, weights=str(weights)), window, c.weights_problem)
    dialog.accept()  # said while the dialog is open, so its other edits are not lost
    assert dialogs[-1][0] == "Settings not usable" and dialog.result() != QDialog.DialogCode.Accepted
    if not torch.cuda.is_available():  # QA pass 73: CUDA was refused after the dialog closed, its edits lost
        dialog = SettingsDialog(replace(before, device="cuda"), window, c.weights_problem)
        dialog.accept()
        assert dialogs[-1] == ("Settings not usable", "CUDA was requested but no CUDA device is available: choose "
                                                      "the CPU as the device (--device cpu, or the Device setting)")
        assert dialog.result() != QDialog.DialogCode.Accepted
    c.apply_preferences(replace(before, weights=str(DEFAULT_WEIGHTS)))  # a good file goes through
    assert c.settings.preferences().weights == str(DEFAULT_WEIGHTS)


def test_the_warning_of_a_weights_file_is_said_in_the_window(app_factory, frame_dir, tmp_path, monkeypatch):
    """QA pass 73: a training run's last.pt is used "with a warning" (README), which reached only the terminal.
    QA pass 97: applied in the settings dialog, "Engine settings applied" replaced it at once."""
    import warnings
    from dataclasses import replace

    import app.controller as controller_module
    from stm_core.model.checkpoint import DEFAULT_WEIGHTS

    mine = tmp_path / "last.pt"
    shutil.copy(DEFAULT_WEIGHTS, mine)
    monkeypatch.setattr(controller_module, "check_weights",
                        lambda settings: warnings.warn("last.pt is a training checkpoint") or "stm-small")
    c = app_factory().controller
    notes: list[str] = []
    c.message.connect(notes.append)
    assert c.weights_problem(replace(c.settings.preferences(), weights=str(mine))) is None
    assert notes == ["last.pt is a training checkpoint"]
    assert c.open(frame_dir)
    guides: list[str] = []
    c.guide.connect(guides.append)
    c.apply_preferences(replace(c.settings.preferences(), weights=str(mine)))
    assert guides[-1] == "Engine settings applied, masks kept · last.pt is a training checkpoint"  # it stays


def test_a_weights_file_replaced_or_deleted_after_its_check_is_checked_again(app_factory, dialogs, tmp_path,
                                                                            monkeypatch):
    """QA pass 40: a file that loaded once was taken on its path alone: truncated after the check, or deleted
    after being applied, it was "applied" and said only at the next F. '~/mine.pt' was "not found"."""
    import shutil
    from dataclasses import replace

    from app.views.settings_dialog import SettingsDialog
    from stm_core.model.checkpoint import DEFAULT_WEIGHTS

    monkeypatch.setenv("HOME", str(tmp_path))
    mine = tmp_path / "mine.pt"
    shutil.copy(DEFAULT_WEIGHTS, mine)
    c = app_factory().controller
    before = c.settings.preferences()
    dialog = SettingsDialog(before, None, c.weights_problem)
    dialog.weights.setText("~/mine.pt")
    assert dialog.preferences().weights == str(mine) and c.weights_problem(dialog.preferences()) is None
    mine.write_bytes(DEFAULT_WEIGHTS.read_bytes()[:100_000])  # replaced after the check, before OK
    assert "mine.pt" in c.weights_problem(dialog.preferences())
    shutil.copy(DEFAULT_WEIGHTS, mine)
    c.apply_preferences(replace(before, weights=str(mine)))
    assert c.settings.preferences().weights == str(mine)
    mine.unlink()
    c.apply_preferences(replace(c.settings.preferences(), mem_every=3))
    assert dialogs[-1][0] == "Settings not applied" and c.settings.preferences().mem_every == before.mem_every
    assert "previous settings are kept" not in dialogs[-1][1]  # QA pass 42: they are this very file
    monkeypatch.chdir(tmp_path)
    dialog.weights.setText("mine.pt")  # QA pass 42: kept as typed, not found after a start elsewhere
    assert dialog.preferences().weights == str(mine)


def test_object_limit_is_a_message(app_factory, frame_dir, dialogs):
    window = app_factory()
    window.controller.open(frame_dir)
    for _ in range(253):
        window.document.objects.add()
    window.objects_panel.add_button.click()
    window.objects_panel.add_button.click()
    assert "254" in dialogs[-1][1] and len(window.document.objects) == 254


def test_per_object_binary_folders_import_as_new_objects_beside_the_others(app_factory, frame_dir, tmp_path,
                                                                          dialogs):
    """QA pass 12: two per-object 0/255 folders (SAM/XMem style, or this program's binary/ export) imported one
    after the other: the second erased the first, since both read as object 1. As new objects, each is added
    to the masks already there, named after its folder."""
    window = app_factory()
    window.controller.open(frame_dir)
    doc = window.document
    truths = {}
    for name, rows in (("car", slice(5, 20)), ("person", slice(30, 50))):
        folder = tmp_path / name
        folder.mkdir()
        mask = np.zeros((64, 96), np.uint8)
        mask[rows, 10:40] = 255
        for frame in ("00000.png", "00002.png"):
            Image.fromarray(mask).save(folder / frame)
        assert window.controller.import_mask_folder(folder, as_annotations=True, as_new_object=True)
        truths[name] = mask > 0
    car, person = (next(o for o in doc.objects if o.name == n) for n in ("car", "person"))
    for frame in (0, 2):
        labels = doc.session.labels(frame)
        assert np.array_equal(labels == car.id, truths["car"]) and np.array_equal(labels == person.id,
                                                                                   truths["person"])
    assert doc.annotated_frames() == [0, 2]
    # QA pass 16: a new object over painted pixels of another took them without a question
    over = tmp_path / "over the car"
    over.mkdir()
    cover = np.zeros((64, 96), np.uint8)
    cover[10:15, 10:40] = 255  # inside the car on frame 0 only; frame 1 has no annotation to cover
    Image.fromarray(cover).save(over / "00000.png")
    Image.fromarray(cover).save(over / "00001.png")
    asked, before, count = [], doc.session.labels(0), len(doc.objects)
    assert not window.controller.import_mask_folder(over, as_annotations=True, as_new_object=True,
                                                    confirm=lambda frames: asked.append(frames) or False)
    assert asked == [[0]] and len(doc.objects) == count and np.array_equal(doc.session.labels(0), before)
    assert window.controller.import_mask_folder(over, as_annotations=True, as_new_object=True,
                                                confirm=lambda frames: True)
    covering = next(o for o in doc.objects if o.name == "over the car")
    assert (doc.session.labels(0) == covering.id).sum() == cover.astype(bool).sum()
    doc.undo()  # on frame 0, the current frame: the painted mask comes back
    assert np.array_equal(doc.session.labels(0), before)
    assert window._confirm_replacing(True, [0, 1])  # the window's question says what the new object does
    assert "The object's masks cover pixels painted for other objects, or change its own painted ones, on 2 " \
           "annotated frames (1, 2)" in dialogs[-1][1]
    several = tmp_path / "several"
    several.mkdir()
    write_mask(several / "00001.png", np.array(np.arange(64 * 96).reshape(64, 96) % 3, np.uint8))
    count = len(doc.objects)
    assert not window.controller.import_mask_folder(several, as_annotations=True, as_new_object=True)
    assert "holds several objects" in dialogs[-1][1] and len(doc.objects) == count


def test_a_new_object_imported_onto_frames_without_masks_waits_there_for_the_others(app_factory, frame_dir,
                                                                                  tmp_path):
    """QA pass 13: a per-object folder imported as a new object onto frames not propagated yet made them
    annotated frames holding that object alone, so the object painted on frame 0 was never tracked there.
    Now it enters there, as Cutie/XMem masks do, and a forward run brings both."""
    window = app_factory()
    window.controller.open(frame_dir)
    doc = window.document
    doc.begin_stroke((20.0, 20.0), 1, 9, erase=False)
    doc.end_stroke()
    folder = tmp_path / "car"
    folder.mkdir()
    car = np.zeros((64, 96), np.uint8)
    car[30:50, 50:80] = 255
    for i in range(4):
        Image.fromarray(car).save(folder / f"{i:05d}.png")
    Image.fromarray(np.zeros_like(car)).save(folder / "00002.png")  # a per-object export's blank: absent there
    assert window.controller.import_mask_folder(folder, as_annotations=True, as_new_object=True)
    new = next(o for o in doc.objects if o.name == "car")
    assert doc.annotated_frames() == [0] and doc.entering_frames() == [1, 3]  # QA pass 15: blank frame 2 too
    assert set(np.unique(doc.session.labels(0)).tolist()) == {0, 1, new.id}
    doc.session.propagate(0, "forward")  # the engine's run, as F starts it (merging the entering objects)
    for i in (1, 3):
        assert np.array_equal(doc.session.labels(i) == new.id, car > 0), i


def test_no_mask_folder_import_while_a_propagation_runs(app_factory, frame_dir, tmp_path, dialogs, monkeypatch):
    """QA pass 13: masks imported as results during a run were overwritten by it on every frame it reached
    afterwards, without a word."""
    window = app_factory()
    window.controller.open(frame_dir)
    folder = tmp_path / "masks"
    folder.mkdir()
    write_mask(folder / "00002.png", np.ones((64, 96), np.uint8))
    monkeypatch.setattr(type(window.controller.propagation), "running", property(lambda self: True))
    assert not window.controller.import_mask_folder(folder, as_annotations=False)
    assert dialogs[-1][0] == "Import refused" and "propagation is running" in dialogs[-1][1]
    assert window.document.session.labels(2) is None


def test_a_long_import_shows_progress_stops_while_read_and_queues_no_copies_to_save(app_factory, tmp_path, dialogs,
                                                                                      monkeypatch):
    """Session 17: 2,000 1080p masks imported as results froze the window for 86 s and took 8 GB, 4 GB of it
    copies queued for the autosave. The import reports each mask (the window shows a progress dialog), can be
    stopped while the masks are read, and the autosave queues snapshots, read when written."""
    import threading
    import tracemalloc

    window = app_factory()
    window.controller.open(make_frames(tmp_path / "clip", count=16, size=(720, 1280)))
    doc, controller = window.document, window.controller
    folder = tmp_path / "masks"
    folder.mkdir()
    masks = {}
    for i in range(16):
        masks[i] = np.zeros((720, 1280), np.uint8)
        masks[i][100:300, 200 + 10 * i:500 + 10 * i] = 1
        write_mask(folder / f"{i:05d}.png", masks[i])
    stages: list[tuple] = []
    assert not controller.import_mask_folder(folder, False, progress=lambda *a: stages.append(a) or len(stages) < 3)
    assert stages == [("Reading masks", n, 16) for n in (1, 2, 3)]
    assert window.status.currentMessage().startswith("Import cancelled: nothing was imported")
    assert not any(doc.session.has_result(i) for i in range(16)) and not dialogs

    release = threading.Event()
    workspace = controller.autosaver.workspace
    write = workspace.write_mask
    monkeypatch.setattr(workspace, "write_mask", lambda *a, **k: release.wait(30) and write(*a, **k))
    stages.clear()
    tracemalloc.start()
    try:
        assert controller.import_mask_folder(folder, False, progress=lambda *a: stages.append(a) or True)
        controller.autosaver.flush()  # 16 frames to save, the writer held at the first
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        release.set()
    assert held < 6 * masks[0].nbytes  # not 16 copies (15 MB)
    assert stages[:16] == [("Reading masks", n, 16) for n in range(1, 17)]
    assert stages[16:] == [("Importing masks", n, 16) for n in range(1, 17)]
    assert controller.autosaver.save_now()
    dialog = QProgressDialog("", "Cancel", 0, 0, window)  # what the window shows of it
    assert window._import_progress(dialog, "Reading masks", 3, 16) and dialog.labelText() == "Reading masks: 3 of 16"
    dialog.cancel()
    assert not window._import_progress(dialog, "Reading masks", 4, 16)
    window._import_progress(dialog, "Importing masks", 1, 16)
    assert dialog.findChild(QPushButton) is None and dialog.value() == 1  # too late to stop: no Cancel button
    for i in (0, 15):
        assert np.array_equal(workspace.read_frame_mask(doc.session.frame_names[i], doc.frame_size), masks[i])


def test_importing_one_objects_masks_reports_each_step_and_stops_before_changing_anything(app_factory, tmp_path,
                                                                                         dialogs):
    """QA pass 26: one object's masks over 800 frames froze the window 16 s after the masks were read (adding
    the object to each frame's mask, and each annotated frame's objects counted afresh, twice). Each step now
    reports progress, and Cancel before the masks go in leaves everything as it was."""
    window = app_factory()
    window.controller.open(make_frames(tmp_path / "clip", count=6, size=(48, 64)))
    doc, controller = window.document, window.controller
    painted = np.zeros((48, 64), np.uint8)
    painted[5:20, 5:20] = 1
    for i in range(6):
        doc.session.set_annotation(i, painted)
    folder = tmp_path / "car"
    folder.mkdir()
    for i in range(6):
        mask = np.zeros((48, 64), np.uint8)
        mask[25:40, 30 + i:50 + i] = 255
        write_mask(folder / f"{i:05d}.png", mask)
    stages: list[tuple] = []

    def stop_at(stage: str, done: int) -> Callable[..., bool]:
        return lambda *a: stages.append(a) or a[:2] != (stage, done)
    assert not controller.import_mask_folder(folder, True, as_new_object=True, progress=stop_at("Adding the object", 4))
    assert stages[6:] == [("Adding the object", n, 6) for n in range(1, 5)]
    assert window.status.currentMessage().startswith("Import cancelled: nothing was imported")
    assert [o.id for o in doc.objects] == [1] and doc.session.object_ids() == [1]
    stages.clear()
    assert controller.import_mask_folder(folder, True, as_new_object=True, progress=stop_at("", 0))
    assert [s[0] for s in stages] == ["Reading masks"] * 6 + ["Adding the object"] * 6 + ["Importing masks"] * 6
    assert doc.session.object_ids() == [1, 2] and np.count_nonzero(doc.session.annotation(3) == 2) == 15 * 20


def test_a_video_moved_while_open_is_said_once_not_per_frame(app_factory, frame_dir, tmp_path, dialogs):
    """QA pass 14: after the video's folder was moved, every frame visited raised its own dialog."""
    from .conftest import make_frames

    folder = make_frames(tmp_path / "video", count=10)
    window = app_factory()
    window.controller.open(folder)
    folder.rename(tmp_path / "moved")
    for frame in (1, 3, 4):  # not read at opening (2, 5 and 7 are, for the workspace's thumbnails)
        window.document.seek(frame)
        window.document.image()
    said = [title for title, _ in dialogs if title in ("Video not found", "Cannot read input")]
    assert said == ["Video not found"]



def test_the_apps_own_soft_export_imported_as_masks_is_one_object(qtbot, app_factory, frame_dir, tmp_path):
    """QA pass 17: soft/object_001 (beside binary/object_001, easy to pick by mistake) imported as results
    became 250 objects, every grey level one, and replaced every result with no undo. The maps are made as a
    trained network's look (the tests' untrained one gives few levels), in an export's layout."""
    import cv2

    from app.export import ExportOptions

    from .test_io_masks import probability_blob

    window = two_objects_propagated(qtbot, app_factory(), frame_dir)
    doc = window.document
    with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=60_000,
                          check_params_cb=lambda running: not running):
        window.controller.start_export(ExportOptions(tmp_path / "out", palette=False, soft=True))
    soft = tmp_path / "out" / "soft" / "object_001"
    blob = np.round(cv2.resize(probability_blob(16, 24), (96, 64), interpolation=cv2.INTER_NEAREST) * 255)
    for f in soft.iterdir():
        Image.fromarray(blob.astype(np.uint8)).save(f)
    assert window.controller.import_mask_folder(soft, as_annotations=False)
    assert [o.id for o in doc.objects] == [1, 2]
    half = blob >= 128
    for i in range(1, doc.num_frames):
        labels = doc.session.labels(i)
        assert set(np.unique(labels).tolist()) == {0, 1} and ((labels == 1) & half).sum() / half.sum() > 0.9


def test_an_imports_messages_go_over_its_progress_dialog_and_its_question_fits(app_factory, frame_dir, tmp_path,
                                                                               monkeypatch):
    """QA pass 78: the progress dialog showed itself over the "Masks adjusted" warning, whose OK then did
    nothing: only Esc on the progress dialog freed the window."""
    window = app_factory()
    window.controller.open(frame_dir)
    folder = tmp_path / "masks"
    folder.mkdir()
    narrow = np.zeros((64, 95), np.uint8)  # a pixel narrower than the frames: adjusted, with a warning
    narrow[30:50, 10:30] = 1
    Image.fromarray(narrow, "L").save(folder / "00000.png")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    boxes = []

    def shown(box):  # QA pass 78: the check box's long label was cut off: it does not wrap
        box.show()
        QApplication.processEvents()
        boxes.append(box.checkBox().width() >= box.checkBox().sizeHint().width())
        return 0
    monkeypatch.setattr(QMessageBox, "exec", shown)
    monkeypatch.setattr(QMessageBox, "clickedButton", lambda box: box.buttons()[0])
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a: warned.append((title, parent)) or QMessageBox.StandardButton.Ok))
    window.import_masks_dialog()
    assert boxes == [True] and [title for title, _ in warned] == ["Masks adjusted"]
    assert isinstance(warned[0][1], QProgressDialog)
    window.show_error("Later", "no import running")
    assert warned[-1] == ("Later", window)


def test_masks_that_hold_no_object_are_said_to_when_imported(app_factory, frame_dir, tmp_path, dialogs):
    """QA pass 79: a folder of all-background masks was imported as annotated frames without a word (the
    command line refuses it)."""
    window = app_factory()
    window.controller.open(frame_dir)
    folder = tmp_path / "blank"
    folder.mkdir()
    for name in ("00000.png", "00002.png"):
        Image.fromarray(np.zeros((64, 96), np.uint8), "L").save(folder / name)
    assert window.controller.import_mask_folder(folder, as_annotations=True)
    assert dialogs[-1] == ("Masks hold no object", f"The masks in {folder} are all background: frames 1, 3 now show "
                           "no object, as annotations, and propagating from there makes background. Ctrl+Z on such "
                           "a frame undoes it.")
    assert window.document.annotated_frames() == [0, 2]


def test_settings_say_what_a_large_height_costs_the_shipped_model_without_adaptation(app_factory):
    """QA pass 110: at the source size, adaptation off, the shipped model's masks covered most of the frame, and
    the settings had said nothing."""
    from dataclasses import replace

    from app.settings import PROCESS_HEIGHTS, RECOMMENDED_HEIGHT
    from app.views.settings_dialog import SettingsDialog

    c = app_factory().controller
    dialog = SettingsDialog(replace(c.settings.preferences(), adapt_steps=0), None, c.weights_problem)
    assert dialog.height_note.isHidden()  # the recommended height
    dialog.resolution.setCurrentIndex(list(PROCESS_HEIGHTS).index(0))
    assert not dialog.height_note.isHidden() and "0.35 at 480 px" in dialog.height_note.text()
    dialog.adapt_steps.setValue(60)  # adaptation on: it learns the video's scale
    assert dialog.height_note.isHidden()
    dialog.adapt_steps.setValue(0)
    dialog.weights.setText("/somewhere/else.pt")  # other weights: unknown
    assert dialog.height_note.isHidden()
    dialog.weights.setText("")
    dialog.resolution.setCurrentIndex(list(PROCESS_HEIGHTS).index(RECOMMENDED_HEIGHT))
    assert dialog.height_note.isHidden()
    dialog.show()  # QA pass 111: shown while the dialog was open, the note had a line and a half
    dialog.resolution.setCurrentIndex(list(PROCESS_HEIGHTS).index(480))
    QApplication.processEvents()
    assert dialog.height_note.height() >= dialog.height_note.heightForWidth(dialog.height_note.width())
    dialog.close()
