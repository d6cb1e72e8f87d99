"""Export through the dialog's controller path: every output, exact round trip, failures keep old files."""

from __future__ import annotations

import errno
import json
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app import export as export_module
from app.export import ExportOptions
from app.objects import default_color
from app.views.export_dialog import ExportDialog
from stm_core.io.masks import read_mask

from .conftest import make_frames, two_objects_propagated

WAIT_MS = 60_000


@pytest.fixture
def window(qtbot, app_factory, frame_dir):
    return two_objects_propagated(qtbot, app_factory(), frame_dir)


def run_export(qtbot, window, options: ExportOptions):
    """Export and wait for the end: the summary (None where the export failed)."""
    finished: list = []
    window.controller.exportFinished.connect(finished.append)
    try:
        with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS,
                              check_params_cb=lambda running: not running):
            window.controller.start_export(options)
    finally:
        window.controller.exportFinished.disconnect(finished.append)
    return finished[0] if finished else None


def on_a_copy(app_factory, frame_dir: Path, copy: Path):
    """Another window on a copy of the clip (the clip itself is open in the first one): another video, with a
    workspace of its own."""
    copy.mkdir()
    for frame in frame_dir.iterdir():
        (copy / frame.name).write_bytes(frame.read_bytes())
    other = app_factory()
    other.controller.open(copy)
    return other


def reimported(app_factory, frame_dir: Path, masks: Path, copy: Path):
    """`on_a_copy`, with `masks` imported."""
    other = on_a_copy(app_factory, frame_dir, copy)
    other.controller.import_mask_folder(masks, as_annotations=True)
    return other


def test_export_everything_then_reimport_is_identical(qtbot, window, tmp_path):
    doc = window.document
    session = doc.session
    expected = [session.labels(i) for i in range(4)]
    out = tmp_path / "export dir ü"  # spaces and non-ASCII in the path
    dialog = ExportDialog(window.controller, out, window)
    for box in (dialog.binary_box, dialog.soft_box, dialog.video_box):
        box.setChecked(True)
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS) as finished:
        dialog.export_button.click()
    summary = finished.args[0]
    assert summary.frames == 4 and not summary.cancelled
    assert dialog.progress.value() == 4
    for i, name in enumerate(session.frame_names):
        assert np.array_equal(read_mask(out / "masks" / f"{name}.png"), expected[i])
        for obj in doc.objects:
            binary = read_mask(out / "binary" / f"object_{obj.id:03d}" / f"{name}.png")
            assert np.array_equal(binary.astype(bool), expected[i] == obj.id)
            soft = np.array(Image.open(out / "soft" / f"object_{obj.id:03d}" / f"{name}.png"))
            assert soft.shape == (64, 96) and soft.dtype == np.uint8
    with av.open(str(out / "overlay.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 4 and frames[0].width == 96
    QApplication.processEvents()

    # re-import: the masks come back exactly
    for i in range(4):
        session.set_result(i, np.zeros((64, 96), np.uint8))
    window.controller.import_mask_folder(out / "masks", as_annotations=False)
    for i in range(4):
        assert np.array_equal(session.labels(i), expected[i])
    assert dialog.fps_spin.value() == 24.0  # a frame folder has no rate of its own (a video's is the default)


def test_reimported_masks_bring_their_object_names_and_colours(qtbot, window, app_factory, frame_dir, tmp_path):
    doc = window.document
    doc.rename_object(2, "Rider")
    doc.set_object_color(2, (1, 2, 3))
    run_export(qtbot, window, ExportOptions(tmp_path / "out", palette=True))
    other = on_a_copy(app_factory, frame_dir, tmp_path / "copy")
    assert other.controller.import_mask_folder(tmp_path / "out" / "masks", as_annotations=True)
    rider = other.document.objects.get(2)
    assert (rider.name, rider.color) == ("Rider", (1, 2, 3))


def test_one_objects_exported_masks_come_back_with_its_name_colour_and_id(qtbot, window, app_factory, frame_dir,
                                                                           tmp_path):
    """QA pass 28: a per-object export (binary/object_002) imported as "One object's masks" came back as
    "object_002" in a default colour, though its objects.json lists it."""
    doc = window.document
    doc.rename_object(2, "Rider")
    doc.set_object_color(2, (1, 2, 3))
    run_export(qtbot, window, ExportOptions(tmp_path / "out", palette=False, binary=True))
    other = on_a_copy(app_factory, frame_dir, tmp_path / "copy")
    assert other.controller.import_mask_folder(tmp_path / "out" / "binary" / "object_002", as_annotations=True,
                                               as_new_object=True)
    rider = other.document.objects.get(2)
    assert (rider.name, rider.color) == ("Rider", (1, 2, 3))
    assert np.array_equal(other.document.session.annotation(0) == 2, doc.session.labels(0) == 2)
    doc.set_object_color(2, default_color(2))  # QA pass 94: imported under another id, an object coloured by
    run_export(qtbot, window, ExportOptions(tmp_path / "again", palette=False, binary=True))  # default kept
    assert other.controller.import_mask_folder(tmp_path / "again" / "binary" / "object_002", as_annotations=True,
                                               as_new_object=True)  # its old id's colour, another object's
    added = other.document.objects.get(3)
    assert (added.name, added.color) == ("Rider", default_color(3))


@pytest.mark.parametrize("renumber", [False, True])
def test_one_objects_export_imported_into_its_own_video_gives_that_object_its_masks_back(qtbot, window, tmp_path,
                                                                                        renumber):
    """QA pass 28: re-importing binary/object_002 into the video it came from added a copy of the object, which
    took the object's pixels on every frame; now the object itself gets the exported masks back (found by name
    and colour, or after a rename by the `video_id` a renumbering export lists)."""
    doc, session = window.document, window.document.session
    doc.rename_object(2, "Rider")
    run_export(qtbot, window, ExportOptions(tmp_path / "out", palette=False, binary=True, renumber=renumber))
    if renumber:
        doc.rename_object(2, "Rider on the left")
    exported = {i: session.labels(i).copy() for i in range(session.num_frames)}
    doc.seek(1)
    doc.erase_object_on_frame(2)  # the object lost on one frame (now annotated) and spread over another
    grown = session.labels(2).copy()
    corner = np.zeros(grown.shape, bool)
    corner[:8, :8] = True
    grown[corner & (grown == 0)] = 2
    session.set_result(2, grown)
    before = len(doc.objects)
    assert window.controller.import_mask_folder(tmp_path / "out" / "binary" / "object_002", as_annotations=False,
                                                as_new_object=True)
    assert len(doc.objects) == before and doc.objects.get(2).name.startswith("Rider")
    for i in range(session.num_frames):
        assert np.array_equal(session.labels(i) == 2, exported[i] == 2), i
        assert np.array_equal(session.labels(i) == 1, exported[i] == 1), i  # the other object keeps its pixels
    assert f"as the masks of {doc.objects.get(2).name}, its own ones replaced" in window.status.currentMessage()


def test_disk_full_mid_export_reports_and_keeps_previous_files(qtbot, window, tmp_path, dialogs, monkeypatch):
    out = tmp_path / "out"
    run_export(qtbot, window, ExportOptions(out))
    before = {p.name: p.read_bytes() for p in (out / "masks").iterdir()}
    window.document.session.set_annotation(1, np.full((64, 96), 1, np.uint8))  # so a new export would differ
    calls = {"n": 0}
    real_write = export_module.write_mask

    def write_then_fail(path, labels):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_write(path, labels)

    monkeypatch.setattr(export_module, "write_mask", write_then_fail)
    failures = []
    window.controller.exportFailed.connect(lambda *a: failures.append(a))
    run_export(qtbot, window, ExportOptions(out))
    assert failures and "No space left" in failures[0][1]
    after = {p.name: p.read_bytes() for p in (out / "masks").iterdir()}
    assert set(after) == set(before)  # no temporary leftovers
    assert after["00001.png"] == before["00001.png"]  # the file it failed on is the old one, whole


def test_export_into_unwritable_place_is_an_error(qtbot, window, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    failures = []
    window.controller.exportFailed.connect(lambda *a: failures.append(a))
    run_export(qtbot, window, ExportOptions(blocker / "out"))
    assert failures and failures[0][0] == "Cannot read or write a file"
    assert window.document.session.is_annotated(0)


def test_cancelled_export_keeps_old_video(qtbot, window, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_export(qtbot, window, ExportOptions(out, palette=False, video=True))
    old = (out / "overlay.mp4").read_bytes()

    def progress_then_cancel(session, objects, options, progress, cancel, out_of_date=0, workspace=None, **_):
        return real(session, objects, options, lambda *a: (progress(*a), cancel.set()), cancel)

    real = export_module.export
    monkeypatch.setattr("app.controller.export", progress_then_cancel)
    summary = run_export(qtbot, window, ExportOptions(out, palette=False, video=True))
    assert summary is not None and summary.cancelled
    assert (out / "overlay.mp4").read_bytes() == old
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != export_module.MANIFEST_FILE]


def _blocking_export(monkeypatch):
    """Make the controller's export wait until it is cancelled (an export still running)."""
    def wait_for_cancel(session, objects, options, progress, cancel, out_of_date=0, workspace=None, **_):
        cancel.wait(WAIT_MS / 1000)
        return export_module.ExportSummary(options.folder, 0, 0, True)
    monkeypatch.setattr("app.controller.export", wait_for_cancel)


def test_escape_cancels_a_running_export_and_a_new_dialog_shows_it(qtbot, window, tmp_path, monkeypatch):
    """QA pass 5: Esc hid the dialog while the export ran on unseen, and the next dialog's Export did nothing
    while saying it exported (into the first folder)."""
    _blocking_export(monkeypatch)
    dialog = ExportDialog(window.controller, tmp_path / "a", window)
    dialog.show()
    dialog.activateWindow()  # as the modal dialog is in use: the window that gets the keys
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    dialog.export_button.click()
    assert window.controller.exporting
    second = ExportDialog(window.controller, tmp_path / "b", window)
    assert not second.export_button.isEnabled() and second.close_button.text() == "Cancel"
    second.start()
    assert "already running" in second.result_label.text()
    with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS,
                          check_params_cb=lambda running: not running):
        QTest.keyClick(dialog, Qt.Key.Key_Escape)
    assert dialog.isVisible() and "Cancelled" in dialog.result_label.text()
    QTest.keyClick(dialog, Qt.Key.Key_Escape)  # nothing running: Esc closes
    assert not dialog.isVisible()


def test_no_export_while_a_propagation_runs(qtbot, window, tmp_path, monkeypatch):
    """QA pass 5: exporting during a run wrote background for the frames not reached yet, and said it
    exported them."""
    monkeypatch.setattr(type(window.controller.propagation), "running", property(lambda self: True))
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    dialog.start()
    assert "propagation is running" in dialog.result_label.text()
    assert not window.controller.exporting and not (tmp_path / "out").exists()


def test_frames_without_a_mask_are_counted(qtbot, app_factory, frame_dir, tmp_path):
    other = app_factory()
    other.controller.open(frame_dir)
    other.document.begin_stroke((20.0, 30.0), 1, 15, erase=False)
    other.document.end_stroke()
    summary = run_export(qtbot, other, ExportOptions(tmp_path / "out", coco=True))
    assert summary.without_mask == 3
    assert "3 frames had no mask yet" in summary.describe() and "coco.json leaves them out" in \
        summary.describe()
    coco = json.loads((tmp_path / "out" / "coco.json").read_text())  # QA pass 13: no mask is not "no object"
    assert [image["frame_index"] for image in coco["images"]] == [0]
    one = export_module.ExportSummary(tmp_path, 4, 4, False, without_mask=1, out_of_date=1).describe()
    assert "1 frame had no mask yet and was written as background" in one  # QA pass 24: "1 frames"
    assert "1 frame was out of date (propagated from annotations that changed since: a correction, an undo or a " \
        "cleared frame;" in one  # QA pass 24: after clearing a frame it named a correction as the cause
    assert export_module.ExportSummary(tmp_path, 1, 1, False).describe().startswith(
        f"Exported 1 frame (1 file) to {tmp_path}.")  # QA pass 26: "1 frames (1 files)"
    assert export_module.ExportSummary(tmp_path, 1, 2, True).describe() == \
        f"Cancelled after 1 frame (2 files) written to {tmp_path}."


def test_a_cancelled_export_names_what_it_left_from_an_earlier_one(qtbot, window, tmp_path):
    """QA pass 13: cancelled at frame 2, a re-export left the earlier coco.json and overlay.mp4 beside partly
    new masks, and said only "Cancelled after 2 frames"."""
    out = tmp_path / "out"
    everything = ExportOptions(out, palette=True, video=True, coco=True)
    run_export(qtbot, window, everything)
    cancel = threading.Event()
    summary = export_module.export(window.document.session, list(window.document.objects), everything,
                                   lambda done, total: done == 2 and cancel.set(), cancel)
    assert summary.cancelled and summary.frames == 2
    text = summary.describe()
    assert "masks/ (frames 3-4)" in text and "overlay.mp4" in text and "coco.json" in text, text


def test_an_odd_sized_overlay_video_is_said_to_be_padded(qtbot, app_factory, tmp_path):
    """Seventh GUI QA pass: a 41x31 clip gave a 42x32 overlay.mp4 without a word (the PNGs were 41x31)."""
    from .conftest import make_frames

    other = app_factory()
    other.controller.open(make_frames(tmp_path / "odd", count=2, size=(31, 41)))
    other.document.begin_stroke((20.0, 15.0), 1, 9, erase=False)
    other.document.end_stroke()
    summary = run_export(qtbot, other, ExportOptions(tmp_path / "out", video=True))
    with av.open(str(tmp_path / "out" / "overlay.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (42, 32)
    assert read_mask(tmp_path / "out" / "masks" / "00000.png").shape == (31, 41)
    assert "The overlay video is 42x32: H.264 needs even sizes" in summary.describe()


def test_a_frame_that_cannot_be_read_is_black_in_the_overlay_video_and_the_export_goes_on(qtbot, app_factory,
                                                                                          tmp_path):
    """QA pass 79: one damaged frame stopped an export with the overlay video, its masks half written, and the
    message did not say the export had stopped."""
    from .conftest import damaged_clip

    clip = damaged_clip(tmp_path / "clip", count=4, damaged=2)
    window = app_factory()
    window.controller.open(clip)
    window.document.begin_stroke((20.0, 15.0), 1, 9, erase=False)
    window.document.end_stroke()
    summary = run_export(qtbot, window, ExportOptions(tmp_path / "out", video=True, binary=True))
    assert summary.frames == 4 and summary.unreadable == (2,)
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == [f"0000{i}.png" for i in range(4)]
    assert "The picture of frame 3 could not be read (a damaged file): black in the overlay video; its masks " \
           "are written." in summary.describe()
    with av.open(str(tmp_path / "out" / "overlay.mp4")) as container:
        pictures = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(pictures) == 4 and pictures[2].max() < 16 < pictures[1].max()


def test_the_overlay_of_a_variable_frame_rate_video_keeps_its_timing(qtbot, app_factory, tmp_path):
    """QA pass 33: a phone clip with variable frame rate came out at its average rate, frame 59 at 2.316 s
    instead of 2.367 s, out of step with its sound."""
    from fractions import Fraction

    times = [0.0, 0.04, 0.05, 0.2, 0.25, 0.3, 0.5, 0.52]
    source = tmp_path / "vfr.mp4"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 90000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(t * 90000), Fraction(1, 90000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    window = app_factory()
    window.controller.open(source)
    window.document.begin_stroke((20.0, 15.0), 1, 9, erase=False)
    window.document.end_stroke()
    fps = window.document.session.fps
    run_export(qtbot, window, ExportOptions(tmp_path / "out", video=True, fps=round(fps, 3)))
    with av.open(str(tmp_path / "out" / "overlay.mp4")) as container:
        base = container.streams.video[0].time_base
        shown = [float(f.pts * base) for f in container.decode(video=0)]
    assert shown == pytest.approx(times, abs=1e-3)
    run_export(qtbot, window, ExportOptions(tmp_path / "out", video=True, fps=10.0))  # a rate chosen: constant
    with av.open(str(tmp_path / "out" / "overlay.mp4")) as container:
        base = container.streams.video[0].time_base
        assert [float(f.pts * base) for f in container.decode(video=0)] == pytest.approx([i / 10 for i in range(8)])


def test_reexport_removes_a_deleted_objects_folders_and_the_objects_come_back_whole(qtbot, window, app_factory,
                                                                                     frame_dir, tmp_path):
    """QA pass 5: a removed object's binary/soft folders stayed, looking current; objects.json lost hidden
    objects' visibility and objects without pixels."""
    doc = window.document
    out = tmp_path / "out"
    both = ExportOptions(out, palette=True, binary=True, soft=True)
    run_export(qtbot, window, both)
    assert (out / "binary" / "object_002").is_dir()
    doc.remove_object(2)
    empty = doc.add_object("Not painted yet")
    hidden = doc.add_object("Hidden")
    doc.begin_stroke((50.0, 50.0), hidden.id, 5, erase=False)
    doc.end_stroke()
    doc.set_object_visible(hidden.id, False)
    summary = run_export(qtbot, window, ExportOptions(out, palette=True, binary=True))
    ids = {o.id for o in doc.objects}
    assert {p.name for p in (out / "binary").iterdir()} == {f"object_{i:03d}" for i in ids}
    assert summary.leftovers == ("soft/ (8 files: an output this export does not write)",)  # named
    other = reimported(app_factory, frame_dir, out / "masks", tmp_path / "copy")
    restored = {o.id: (o.name, o.visible) for o in other.document.objects}
    assert restored[empty.id] == ("Not painted yet", True) and restored[hidden.id] == ("Hidden", False)


def test_reexport_removes_only_the_folders_an_earlier_export_wrote(qtbot, window, tmp_path):
    """QA pass 10: an export removed binary/object_009, a folder the user had put there (this program never
    wrote it), without a word. Only folders of objects the earlier export's objects.json lists go, and the
    summary names them."""
    out = tmp_path / "out"
    run_export(qtbot, window, ExportOptions(out, binary=True))
    foreign = out / "binary" / "object_009"
    foreign.mkdir()
    (foreign / "00000.png").write_bytes((out / "binary" / "object_001" / "00000.png").read_bytes())
    window.document.remove_object(2)
    summary = run_export(qtbot, window, ExportOptions(out, binary=True))
    assert sorted(p.name for p in (out / "binary").iterdir()) == ["object_001", "object_009"]
    assert summary.removed == ("binary/object_002",)
    assert "Removed what an earlier export wrote for object ids this one does not write: binary/object_002" \
        in summary.describe()


def test_a_deleted_objects_folder_of_an_export_that_kept_no_record_is_named(qtbot, window, tmp_path):
    """QA pass 61: an older version's export (no record of its files) left binary/object_002 of an object
    deleted since, unnamed, beside an objects.json that no longer lists it."""
    out = tmp_path / "out"
    run_export(qtbot, window, ExportOptions(out, binary=True))
    (out / export_module.MANIFEST_FILE).unlink()  # as an older version left it
    window.document.remove_object(2)
    summary = run_export(qtbot, window, ExportOptions(out, binary=True))
    assert (out / "binary" / "object_002").is_dir() and summary.unrecorded == ("binary/object_002",)
    assert "Kept binary/object_002: folders of objects that an earlier export's objects.json lists" \
        in summary.describe()
    summary = run_export(qtbot, window, ExportOptions(out, binary=True))  # QA pass 65: then kept without a word
    assert summary.unrecorded == ("binary/object_002",) and (out / "binary" / "object_002").is_dir()
    record = json.loads((out / export_module.MANIFEST_FILE).read_text())
    (out / export_module.MANIFEST_FILE).write_text(json.dumps(dict(record, unrecorded=[
        "masks", "../binary/object_002", "binary/object_002"])))  # QA pass 66: a crafted record crashed exports
    assert run_export(qtbot, window, ExportOptions(out, binary=True)).unrecorded == ("binary/object_002",)


def _a_longer_videos_export(qtbot, window, out: Path) -> list[str]:
    """An export of `window` into `out`, made to look like an earlier export of a 10-frame video with a third
    object: frames 00004-00009 in masks/ and binary/object_001/, and binary/object_003/ listed in objects.json.
    Returns the files that stand for the longer video's extra frames."""
    run_export(qtbot, window, ExportOptions(out, palette=True, binary=True))
    extra = []
    for folder in (out / "masks", out / "binary" / "object_001"):
        for i in range(4, 10):
            (folder / f"{i:05d}.png").write_bytes((folder / "00000.png").read_bytes())
            extra.append(f"{folder.relative_to(out)}/{i:05d}.png")
    third = out / "binary" / "object_003"
    third.mkdir()
    for i in range(10):
        (third / f"{i:05d}.png").write_bytes((out / "binary" / "object_001" / "00000.png").read_bytes())
    listing = json.loads((out / "objects.json").read_text())
    (out / "objects.json").write_text(json.dumps(listing + [dict(listing[0], id=3, name="Third")]))
    (out / export_module.MANIFEST_FILE).write_text(json.dumps({  # as that export wrote it
        "outputs": ["masks", *(f"binary/object_{i:03d}" for i in (1, 2, 3))],
        "frames": [f"{i:05d}" for i in range(10)]}))
    return extra


@pytest.mark.parametrize("remove", [True, False])
def test_an_earlier_exports_extra_frames_and_objects_are_removed_when_asked_and_named_when_kept(
        qtbot, window, tmp_path, dialogs, monkeypatch, remove):
    """QA pass 38: a 4-frame export into the folder of a 10-frame one left masks/00004-00009.png and the third
    object's folder there without a word, so a DAVIS evaluator read 10 frames of masks for a 4-frame video.
    The dialog now asks first; kept files are named in the summary."""
    out = tmp_path / "out"
    extra = _a_longer_videos_export(qtbot, window, out)
    from PySide6.QtWidgets import QMessageBox
    answer = QMessageBox.StandardButton.Yes if remove else QMessageBox.StandardButton.No
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda _p, title, text, *a: dialogs.append(
        (title, text)) or answer))
    dialog = ExportDialog(window.controller, out, window)
    dialog.binary_box.setChecked(True)
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS) as finished:
        dialog.export_button.click()
    asked = dialogs[-1][1]
    assert "masks/ (6 frames this video does not have: 00004.png … 00009.png)" in asked
    assert "binary/object_003/ (10 files of an object this export does not write)" in asked
    summary = finished.args[0]
    files = {str(f.relative_to(out)) for f in out.rglob("*.png")}
    if remove:
        assert not files & set(extra) and not (out / "binary" / "object_003").exists()
        assert "Removed an earlier export's files this one did not rewrite: masks/ (6 frames" in summary.describe()
    else:
        assert set(extra) <= files and (out / "binary" / "object_003").is_dir()
        assert "Kept an earlier export's files this one did not rewrite" in summary.describe()
        assert "binary/object_001/ (6 frames this video does not have" in summary.describe()
    assert "Remove" not in str(window.controller.editor.export_choices)  # asked again at each export


def test_an_earlier_exports_outputs_this_one_does_not_write_are_offered_for_removal(qtbot, window, tmp_path,
                                                                                     dialogs):
    """QA pass 40: after an export of every output, a palette-only one into the same folder asked only about
    masks/; binary/, soft/, overlay.mp4 and coco.json stayed, only named. A folder of the user's own stays."""
    out = tmp_path / "out"
    run_export(qtbot, window, ExportOptions(out, palette=True, binary=True, soft=True, video=True, coco=True))
    (out / "notes").mkdir()
    (out / "notes" / "todo.png").write_bytes(b"mine")
    dialog = ExportDialog(window.controller, out, window)
    for box in (dialog.binary_box, dialog.soft_box, dialog.video_box, dialog.coco_box):
        box.setChecked(False)
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS) as finished:
        dialog.export_button.click()  # the dialogs fixture answers Yes: remove them
    asked = dialogs[-1][1]
    for name in ("binary/ (8 files", "soft/ (8 files", "overlay.mp4", "coco.json"):
        assert name in asked
    assert sorted(p.name for p in out.iterdir()) == [export_module.MANIFEST_FILE, "masks", "notes", "objects.json"]
    assert "Removed an earlier export's files this one did not rewrite: binary/ (8 files: an output this export " \
           "does not write); soft/ (8 files: an output this export does not write); overlay.mp4; coco.json." \
           in finished.args[0].describe()


def test_a_users_own_files_are_never_offered_for_removal(qtbot, window, tmp_path, dialogs):
    """QA pass 43: in a project folder that never held an export, Yes deleted the user's own coco.json,
    overlay.mp4 and masks/; in an earlier export's folder, a user's binary/object_001/my_extra.png went too."""
    project = tmp_path / "project"
    (project / "masks").mkdir(parents=True)
    for name in ("coco.json", "overlay.mp4", "masks/gt_a.png", "masks/gt_b.png"):
        (project / name).write_bytes(b"the user's")
    for _ in range(2):  # the second time the folder holds this program's objects.json
        dialog = ExportDialog(window.controller, project, window)
        dialog.palette_box.setChecked(False)
        dialog.binary_box.setChecked(True)
        with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS,
                              check_params_cb=lambda r: not r):
            dialog.export_button.click()
    assert not any(title == "An earlier export is in this folder" for title, _ in dialogs)
    assert all((project / name).read_bytes() == b"the user's"
               for name in ("coco.json", "overlay.mp4", "masks/gt_a.png", "masks/gt_b.png"))
    out = tmp_path / "out"
    _a_longer_videos_export(qtbot, window, out)
    (out / "binary" / "object_001" / "my_extra.png").write_bytes(b"mine")
    dialog = ExportDialog(window.controller, out, window)
    dialog.folder_edit.setText(str(out))  # not the project folder the dialog offers again
    dialog.binary_box.setChecked(True)
    with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS, check_params_cb=lambda r: not r):
        dialog.export_button.click()  # Yes: the earlier export's frames 4-9 go
    assert (out / "binary" / "object_001" / "my_extra.png").read_bytes() == b"mine"
    assert not (out / "binary" / "object_001" / "00009.png").exists()


def test_only_the_object_folders_and_frames_an_export_wrote_are_ever_removed(qtbot, window, tmp_path, dialogs,
                                                                              monkeypatch):
    """QA pass 44: a user's own binary/object_002/ (named like frames) went without a question once object 2 was
    removed; a user's binary/object_005/ beside an export's went on Yes; a cancelled export claimed the user's
    coco.json, overlay.mp4 and masks/ as its own."""
    project = tmp_path / "project"
    own = project / "binary" / "object_002"
    own.mkdir(parents=True)
    for i in range(4):
        (own / f"{i:05d}.png").write_bytes(b"mine")
    run_export(qtbot, window, ExportOptions(project, palette=True))
    window.document.remove_object(2)
    run_export(qtbot, window, ExportOptions(project, palette=True, binary=True))
    assert sorted(p.name for p in own.iterdir()) == [f"{i:05d}.png" for i in range(4)]  # not this program's

    out = tmp_path / "out"
    run_export(qtbot, window, ExportOptions(out, palette=True, binary=True))
    beside = out / "binary" / "object_005"
    beside.mkdir()
    (beside / "00000.png").write_bytes(b"mine")
    for name in ("coco.json", "overlay.mp4"):
        (out / name).write_bytes(b"mine")

    def progress_then_cancel(session, objects, options, progress, cancel, out_of_date=0, workspace=None):
        return real(session, objects, options, lambda *a: (progress(*a), cancel.set()), cancel)
    real = export_module.export
    monkeypatch.setattr("app.controller.export", progress_then_cancel)
    run_export(qtbot, window, ExportOptions(out, palette=True, video=True, coco=True))  # cancelled after frame 1
    monkeypatch.setattr("app.controller.export", real)
    dialog = ExportDialog(window.controller, out, window)
    dialog.folder_edit.setText(str(out))
    for box, on in ((dialog.palette_box, True), (dialog.binary_box, False), (dialog.video_box, False),
                    (dialog.coco_box, False)):
        box.setChecked(on)
    with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS, check_params_cb=lambda r: not r):
        dialog.export_button.click()  # the dialogs fixture answers Yes
    assert (beside / "00000.png").read_bytes() == b"mine"
    assert (out / "coco.json").read_bytes() == b"mine" and (out / "overlay.mp4").read_bytes() == b"mine"
    assert not (out / "binary" / "object_001").exists()  # the export's own, offered and removed


def test_cancelling_the_question_about_an_earlier_export_exports_nothing(qtbot, window, tmp_path, monkeypatch):
    out = tmp_path / "out"
    extra = _a_longer_videos_export(qtbot, window, out)
    before = {f: f.stat().st_mtime_ns for f in out.rglob("*")}
    from PySide6.QtWidgets import QMessageBox
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a: QMessageBox.StandardButton.Cancel))
    dialog = ExportDialog(window.controller, out, window)
    dialog.export_button.click()
    assert not window.controller.exporting and {f: f.stat().st_mtime_ns for f in out.rglob("*")} == before
    assert all((out / e).exists() for e in extra)


@pytest.mark.parametrize("inside", ["", "masks", "soft/object_001", "annotations"])
def test_no_export_goes_into_the_videos_workspace(qtbot, window, tmp_path, inside):
    """QA pass 38: an export into the workspace folder wrote background PNGs for frames without a mask into its
    masks/, and they reopened as current, empty results. Its `export/` subfolder (the dialog's default) is fine."""
    assert window.controller.save_now()
    workspace = window.controller.autosaver.workspace.root
    saved = sorted((workspace / "masks").iterdir())
    failures = []
    window.controller.exportFailed.connect(lambda *a: failures.append(a))
    run_export(qtbot, window, ExportOptions(workspace / inside, palette=True, soft=True))
    assert failures and "where the app keeps this video's work" in failures[0][1]
    assert sorted((workspace / "masks").iterdir()) == saved
    run_export(qtbot, window, ExportOptions(workspace / "export", palette=True, soft=True))
    assert (workspace / "export" / "masks").is_dir()


@pytest.mark.parametrize("inside", ["", "masks"])
def test_no_export_goes_into_another_videos_workspace(qtbot, window, app_factory, tmp_path, inside):
    """QA pass 40: an export into another video's workspace was accepted, and that video reopened with this
    one's masks as its current results."""
    other = app_factory()
    assert other.controller.open(make_frames(tmp_path / "other clip")) and other.controller.save_now()
    workspace = other.controller.autosaver.workspace.root
    failures = []
    window.controller.exportFailed.connect(lambda *a: failures.append(a))
    run_export(qtbot, window, ExportOptions(workspace / inside, palette=True, soft=True))
    assert failures and "where the app keeps another video's work" in failures[0][1]
    assert not (workspace / "soft").exists() and not (workspace / "objects.json").exists()


@pytest.mark.parametrize("where", ["frame folder", "a file"])
def test_export_into_the_frame_folder_or_onto_a_file_is_refused(qtbot, window, frame_dir, tmp_path, where):
    """QA pass 10: the app exported masks/, binary/ and overlay.mp4 among the video's own frames (the CLI
    refuses that), and a file chosen as the folder gave "File exists"."""
    target = frame_dir if where == "frame folder" else frame_dir / sorted(p.name for p in frame_dir.iterdir())[0]
    before = sorted(p.name for p in frame_dir.iterdir())
    failures = []
    window.controller.exportFailed.connect(lambda *a: failures.append(a))
    run_export(qtbot, window, ExportOptions(target, palette=True, video=True))
    expected = "holds the video's own frames" if where == "frame folder" else "is a file, not a folder"
    assert failures and expected in failures[0][1]
    assert sorted(p.name for p in frame_dir.iterdir()) == before


@pytest.mark.parametrize("frames_at,video", [("masks", False), ("binary/object_002", False), ("soft", False),
                                             ("overlay.mp4", True), ("nonexistent/..", False)])
def test_no_export_can_write_over_or_delete_the_video_itself(tmp_path, frames_at, video):
    """QA pass 11: frames in proj/masks/ were overwritten by an export into proj, frames in
    out/binary/object_002/ deleted as an earlier export's folder, a source named overlay.mp4 replaced, and
    'clip/nonexistent/..' got past the check for the frame folder itself."""
    out = tmp_path / "out"
    source = (out / frames_at).resolve() if frames_at != "nonexistent/.." else out
    folder = out if frames_at != "nonexistent/.." else out / frames_at
    options = ExportOptions(folder, palette=True, binary=True, soft=True, video=video)
    with pytest.raises(ValueError, match="video"):
        export_module._refuse_unsafe_folder(folder, source, options)
    export_module._refuse_unsafe_folder(out, tmp_path / "elsewhere" / "frames", options)  # fine
    export_module._refuse_unsafe_folder(out, out / "frames", options)  # a folder of its own beside the outputs


@pytest.mark.parametrize("text,says", [("", "Choose a folder"), ("  ", "Choose a folder"),
                                       ("~nosuchuser_qa/out", "home folder"), ("rel_out", "not a full path")])
def test_a_folder_field_that_names_no_folder_for_certain_is_refused(qtbot, window, text, says):
    """QA pass 11: '~nosuchuser/out' raised an uncaught RuntimeError, an empty field exported into the
    program's working directory ('to .'), a relative path resolved against it."""
    dialog = ExportDialog(window.controller, Path("/unused"), window)
    dialog.folder_edit.setText(text)
    started = []
    window.controller.exportRunningChanged.connect(started.append)
    dialog.start()
    assert says in dialog.result_label.text() and not started


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools' decoder
def test_coco_export_decodes_to_the_masks_with_one_category_per_name(qtbot, window, tmp_path):
    """The COCO file, read back by pycocotools' own reader as training code would: every object's mask in
    every frame, boxes and areas that match, objects that share a name in one category, told apart by
    track_id, and frames named by their files."""
    from pycocotools.coco import COCO

    doc = window.document
    twin = doc.add_object(next(iter(doc.objects)).name)  # a second instance of the first object's class
    doc.begin_stroke((80.0, 50.0), twin.id, 5, erase=False)
    doc.end_stroke()
    session = doc.session
    expected = [session.labels(i) for i in range(4)]
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    dialog.palette_box.setChecked(False)
    dialog.coco_box.setChecked(True)
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS) as finished:
        dialog.export_button.click()
    assert finished.args[0].files == 2  # objects.json and coco.json
    coco = COCO(str(tmp_path / "out" / "coco.json"))
    assert [coco.imgs[i + 1]["file_name"] for i in range(4)] == sorted(p.name for p in session.frames.path.iterdir())
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert sorted(names.values()) == sorted({o.name for o in doc.objects})
    seen = 0
    for i in range(4):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1]))
        present = set(np.unique(expected[i]).tolist()) - {0}
        assert {a["track_id"] for a in anns} == present
        for a in anns:
            mask = coco.annToMask(a).astype(bool)
            assert np.array_equal(mask, expected[i] == a["track_id"])
            ys, xs = np.nonzero(mask)
            assert a["area"] == mask.sum() and a["bbox"] == [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1]
            assert names[a["category_id"]] == next(o.name for o in doc.objects if o.id == a["track_id"])
            seen += 1
    assert seen >= 5 and twin.id in {a["track_id"] for a in coco.dataset["annotations"]}


def test_the_dialog_offers_the_videos_last_export_again_also_after_reopening(qtbot, window, app_factory,
                                                                             frame_dir, tmp_path):
    """Re-exporting after corrections is routine: the folder and outputs of the video's last export come back
    (saved in its workspace), instead of the defaults to be chosen again each time."""
    out = tmp_path / "my export"
    dialog = ExportDialog(window.controller, tmp_path / "default", window)
    assert dialog.folder_edit.text() == str(tmp_path / "default") and dialog.palette_box.isChecked()
    dialog.folder_edit.setText(str(out))
    dialog.palette_box.setChecked(False)
    dialog.coco_box.setChecked(True)
    dialog.fps_spin.setValue(12.345)  # three decimals: QA pass 22 saw 23.98 for 24000/1001
    with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS,
                          check_params_cb=lambda running: not running):
        dialog.export_button.click()
    assert (out / "coco.json").is_file() and not (out / "masks").exists()
    failing = ExportDialog(window.controller, tmp_path / "default", window)  # QA pass 13: a failed export's
    (tmp_path / "a file").write_text("not a folder")  # folder was offered next time
    failing.folder_edit.setText(str(tmp_path / "a file" / "out"))
    with qtbot.waitSignal(window.controller.exportFailed, timeout=WAIT_MS):
        failing.export_button.click()
    assert window.controller.autosaver.save_now()
    window.close()
    reopened = app_factory()
    reopened.controller.open(frame_dir)
    again = ExportDialog(reopened.controller, tmp_path / "default", reopened)
    assert again.folder_edit.text() == str(out) and again.fps_spin.value() == 12.345
    assert [b.isChecked() for b in (again.palette_box, again.binary_box, again.soft_box, again.video_box,
                                    again.coco_box)] == [False, False, False, False, True]


def test_the_overlay_video_shows_hidden_objects_too(qtbot, window, tmp_path):
    """QA pass 16: an object hidden on screen was left out of overlay.mp4 (the other outputs hold it)."""
    run_export(qtbot, window, ExportOptions(tmp_path / "shown", palette=False, video=True))
    window.document.set_object_visible(2, False)
    run_export(qtbot, window, ExportOptions(tmp_path / "hidden", palette=False, video=True))
    frames = []
    for folder in ("shown", "hidden"):
        with av.open(str(tmp_path / folder / "overlay.mp4")) as container:
            frames.append([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    # alike to within the encoder's rounding (once in a full run under load, two encodes of the same frames
    # differed); an object left out differs by half its colour over its whole area
    assert len(frames[0]) == len(frames[1]) and all(np.abs(a.astype(int) - b).mean() < 0.5 for a, b in zip(*frames))


def test_a_renumbered_export_writes_the_objects_as_1_to_n_and_reimports_as_the_same_objects(
        qtbot, window, app_factory, frame_dir, tmp_path):
    """DAVIS evaluation tools count objects up to the largest id: with object 1 removed, masks holding ids 2
    and 3 would be scored as three objects, one of them lost in every frame."""
    doc = window.document
    third = doc.add_object("Third")
    doc.begin_stroke((50.0, 50.0), third.id, 7, erase=False)
    doc.end_stroke()
    doc.remove_object(1)
    session = doc.session
    expected = [session.labels(i) for i in range(4)]
    out = tmp_path / "out"
    dialog = ExportDialog(window.controller, out, window)
    assert dialog.renumber_box.isEnabled() and "(ids now 2, 3)" in dialog.renumber_box.text()
    for box in (dialog.binary_box, dialog.soft_box, dialog.coco_box, dialog.renumber_box):
        box.setChecked(True)
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS):
        dialog.export_button.click()
    assert [o.id for o in doc.objects] == [2, 3]  # the files are renumbered, not the video's objects
    assert sorted(p.name for p in (out / "binary").iterdir()) == ["object_001", "object_002"]
    for i, name in enumerate(session.frame_names):
        renumbered = np.select([expected[i] == 2, expected[i] == 3], [1, 2], 0)
        assert np.array_equal(read_mask(out / "masks" / f"{name}.png"), renumbered)
        for new, old in ((1, 2), (2, 3)):
            binary = read_mask(out / "binary" / f"object_{new:03d}" / f"{name}.png")
            assert np.array_equal(binary.astype(bool), expected[i] == old)
            prob = session.probability(i, old)  # the source object's soft map, else its hard mask
            prob = (expected[i] == old).astype(np.uint8) * 255 if prob is None else prob
            assert np.array_equal(np.array(Image.open(out / "soft" / f"object_{new:03d}" / f"{name}.png")), prob)
    coco = json.loads((out / "coco.json").read_text(encoding="utf-8"))
    assert {a["track_id"] for a in coco["annotations"]} == {1, 2}
    listed = json.loads((out / "objects.json").read_text(encoding="utf-8"))
    assert [(o["id"], o["name"], o["video_id"]) for o in listed] == [(1, "Second", 2), (2, "Third", 3)]
    # QA pass 19: re-imported into this video, the files' 1 and 2 became the video's 1 and 2, swapping objects
    assert window.controller.import_mask_folder(out / "masks", as_annotations=False)
    assert [(o.id, o.name) for o in doc.objects] == [(2, "Second"), (3, "Third")]
    for i in range(4):
        assert np.array_equal(session.labels(i), expected[i])
    doc.rename_object(2, "Renamed")  # QA pass 20: a rename or a removal since the export swapped them again
    doc.remove_object(3)
    assert window.controller.import_mask_folder(out / "masks", as_annotations=False)
    assert [(o.id, o.name) for o in doc.objects] == [(2, "Renamed"), (3, "Third")]
    for i in range(1, 4):  # frame 0 is annotated: results leave it as it is
        assert np.array_equal(session.labels(i), expected[i])
    other = reimported(app_factory, frame_dir, out / "masks", tmp_path / "copy")
    assert [(o.id, o.name) for o in other.document.objects] == [(1, "Second"), (2, "Third")]
    again = ExportDialog(window.controller, out, window)  # remembered; shown as not needed where ids are 1..N
    assert again.renumber_box.isChecked()
    assert not ExportDialog(other.controller, out, other).renumber_box.isEnabled()


def test_a_renumbered_export_of_objects_never_renamed_reimports_as_the_same_objects(qtbot, window, app_factory,
                                                                                    frame_dir, tmp_path):
    """QA pass 93: with every object as it was added (default names and colours), nothing told this video's
    renumbered export from another's: re-imported, object 3's pixels went to the removed object 2. The export
    now names the work it came from."""
    doc = window.document
    labels = np.zeros(doc.frame_size, np.uint8)
    labels[5:20, 5:30], labels[25:40, 40:60], labels[45:60, 70:90] = 1, 2, 3
    doc.import_masks({i: labels for i in range(1, 4)}, as_annotations=False)
    doc.remove_object(2)
    expected = [doc.session.labels(i) for i in range(4)]
    assert run_export(qtbot, window, ExportOptions(tmp_path / "out", renumber=True)) is not None
    listed = json.loads((tmp_path / "out" / "objects.json").read_text(encoding="utf-8"))
    assert [(o["id"], o["name"], o["video_id"]) for o in listed] == [(1, "Object 1", 1), (2, "Object 3", 3)]
    window.close()
    again = app_factory()  # the work keeps its name in the workspace
    assert again.controller.open(frame_dir)
    again.controller.wait_for_loading()
    qtbot.waitUntil(lambda: not again.document.loading_frames(), timeout=WAIT_MS)
    doc = again.document
    assert again.controller.import_mask_folder(tmp_path / "out" / "masks", as_annotations=False)
    assert [(o.id, o.name) for o in doc.objects] == [(1, "Object 1"), (3, "Object 3")]
    assert all(np.array_equal(doc.session.labels(i), expected[i]) for i in range(1, 4))


def test_a_renumbered_export_imported_into_a_copy_with_a_renamed_object_keeps_its_numbers(
        qtbot, window, app_factory, frame_dir, tmp_path):
    """QA pass 104: in a copy of the clip whose object 1 the user had renamed, the export of the other work was
    taken as this video's own and its files' 1, 2 went onto ids 2, 3."""
    doc = window.document
    labels = np.zeros(doc.frame_size, np.uint8)
    labels[5:20, 5:30], labels[25:40, 40:60], labels[45:60, 70:90] = 1, 2, 3
    doc.import_masks({i: labels for i in range(4)}, as_annotations=True)
    doc.remove_object(2)  # files 1, 2 are the video's 1, 3
    assert run_export(qtbot, window, ExportOptions(tmp_path / "out", renumber=True)) is not None
    other = on_a_copy(app_factory, frame_dir, tmp_path / "copy")
    other.document.rename_object(1, "MyCar")
    assert other.controller.import_mask_folder(tmp_path / "out" / "masks", as_annotations=True)
    assert set(np.unique(other.document.session.labels(1)).tolist()) == {0, 1, 2}


def test_one_frame_of_a_renumbered_export_imported_gives_each_object_its_own_pixels(qtbot, window, tmp_path):
    """QA pass 102: one mask of a renumbered export, imported for the current frame, put the files' 1..N on the
    video's 1..N (object 3's pixels on the removed object 2, brought back), where the folder import maps them."""
    doc = window.document
    labels = np.zeros(doc.frame_size, np.uint8)
    labels[5:20, 5:30], labels[25:40, 40:60], labels[45:60, 70:90] = 1, 2, 3
    doc.import_masks({i: labels for i in range(4)}, as_annotations=True)
    doc.rename_object(3, "Third")
    doc.remove_object(2)
    expected = doc.session.labels(2).copy()
    assert run_export(qtbot, window, ExportOptions(tmp_path / "out", renumber=True)) is not None
    doc.seek(2)
    doc.erase_object_on_frame(3)
    assert window.controller.import_frame_mask(tmp_path / "out" / "masks" / f"{doc.frame_name(2)}.png")
    assert np.array_equal(doc.session.labels(2), expected)
    assert [(o.id, o.name) for o in doc.objects] == [(1, "Object 1"), (3, "Third")]


def test_one_exported_mask_imported_into_another_video_brings_the_names_and_colours_it_shows(
        qtbot, window, app_factory, frame_dir, tmp_path):
    """QA pass 102: the folder import named the objects as the export's objects.json lists them, the one-mask
    import left them "Object 2" in the default colour."""
    doc = window.document
    doc.rename_object(2, "Rider")
    doc.set_object_color(2, (1, 2, 3))
    third = doc.add_object("Elsewhere")  # listed, but not on the imported frame: not added by it
    doc.seek(3)
    doc.begin_stroke((50.0, 50.0), third.id, 7, erase=False)
    doc.end_stroke()
    run_export(qtbot, window, ExportOptions(tmp_path / "out", palette=True))
    other = on_a_copy(app_factory, frame_dir, tmp_path / "copy")
    assert other.controller.import_frame_mask(tmp_path / "out" / "masks" / f"{doc.frame_name(0)}.png")
    rider = other.document.objects.get(2)
    assert (rider.name, rider.color) == ("Rider", (1, 2, 3))
    assert third.id not in other.document.objects


@pytest.mark.parametrize("grow", [4, -2])
def test_binary_masks_grow_or_shrink_by_the_chosen_pixels(qtbot, window, tmp_path, grow):
    """Inpainting and matting tools want a margin round the object (the gui-anchors' export wish list)."""
    import cv2

    doc = window.document
    doc.begin_stroke((48.0, 32.0), 1, 21, erase=False)  # a disc big enough to shrink
    doc.end_stroke()
    session = doc.session
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    dialog.palette_box.setChecked(False)
    dialog.binary_box.setChecked(True)
    dialog.grow_spin.setValue(grow)
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS):
        dialog.export_button.click()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(grow) + 1,) * 2)
    for i, name in enumerate(session.frame_names):
        for obj in doc.objects:
            exact = (session.labels(i) == obj.id).astype(np.uint8)
            expected = (cv2.dilate if grow > 0 else cv2.erode)(exact, disc).astype(bool)
            written = read_mask(tmp_path / "out" / "binary" / f"object_{obj.id:03d}" / f"{name}.png").astype(bool)
            assert np.array_equal(written, expected)
            if exact.any() and not exact.all():  # a mask that fills the frame has no room to grow
                assert (written.sum() > exact.sum()) == (grow > 0)
    assert ExportDialog(window.controller, tmp_path / "out", window).grow_spin.value() == grow  # remembered


def test_exporting_out_of_date_frames_is_said_before_and_after(qtbot, window, tmp_path):
    """QA pass 17: an export right after a correction wrote the frames propagated before it (red on the
    timeline) without a word."""
    doc = window.document
    doc.seek(2)
    doc.begin_stroke((60.0, 40.0), doc.add_object("New").id, 9, erase=False)  # a correction: the results
    doc.end_stroke()  # around it are out of date
    stale = int(doc.stale_frames().sum())
    assert stale > 0
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    assert f"{stale} frame{'s are' if stale > 1 else ' is'} out of date" in dialog.result_label.text()
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS) as finished:
        dialog.export_button.click()
    assert finished.args[0].out_of_date == stale and "out of date" in dialog.result_label.text()


def test_a_killed_exports_temporaries_go_with_the_next_export_and_no_other_file(qtbot, window, tmp_path):
    """QA pass 47: kill -9 mid-export left hidden temporaries (a half overlay video, soft PNGs) in the folder
    for good, and a later export that removed soft/ said so while its folder stayed, holding one."""
    out = tmp_path / "out"
    run_export(qtbot, window, ExportOptions(out, soft=True, video=True))
    left = [out / ".overlay.mp4.445408d5.tmp.mp4", out / "soft" / "object_001" / ".00002.png.12c24d00.tmp.png",
            out / "masks" / ".00001.png.0a1b2c3d.tmp.png"]
    mine = [out / ".notes.tmp", out / "notes.12345678.tmp.txt", out / "soft" / "object_001" / ".hidden.png"]
    for path in left + mine:
        path.write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    outside = tmp_path / "elsewhere" / ".a.png.0a1b2c3d.tmp.png"
    outside.write_bytes(b"x")
    manifest = json.loads((out / ".stm-export.json").read_text())
    manifest["outputs"].append("../elsewhere")
    (out / ".stm-export.json").write_text(json.dumps(manifest))
    run_export(qtbot, window, ExportOptions(out))
    assert not any(p.exists() for p in left) and all(p.exists() for p in mine) and outside.exists()


def test_the_default_export_folder_follows_the_workspace_when_it_moves(qtbot, app_factory, frame_dir):
    """QA pass 50: exported into the workspace's export/ beside the video, then the setting switched off: the
    dialog still offered clip.stmws/export, recreating it beside the video, and the workspace no longer moved
    back when the setting was switched on again."""
    from dataclasses import replace

    window = two_objects_propagated(qtbot, app_factory(), frame_dir)
    c = window.controller
    for beside in (True, False, True):
        c.settings.set_preferences(replace(c.settings.preferences(), workspace_beside_video=beside))
        assert c.open(frame_dir)
        root = c.autosaver.workspace.root
        assert root.name.endswith(".stmws") == beside
        dialog = ExportDialog(c, root / "export", window)
        assert dialog.folder_edit.text() == str(root / "export")
        qtbot.waitUntil(lambda: c.export_blocker() is None, timeout=WAIT_MS)  # the saved results loaded
        with qtbot.waitSignal(c.exportFinished, timeout=WAIT_MS):
            dialog.export_button.click()
        dialog.close()
    c.editor.set_export_choices({**c.editor.export_choices, "folder": str(root.with_name("old.stmws") / "export")})
    assert ExportDialog(c, root / "export", window).folder_edit.text() == str(root / "export")  # an earlier version's


def test_a_long_summary_grows_the_dialog_instead_of_squeezing_it(qtbot, window, tmp_path):
    """QA pass 68: a four-line summary squeezed the spin boxes to two thirds of their height."""
    from app.export import ExportSummary

    dialog = ExportDialog(window.controller, tmp_path / "default", window)
    dialog.show()
    qtbot.waitExposed(dialog)
    height = dialog.grow_spin.height()
    dialog._on_finished(ExportSummary(tmp_path / "a long way" / ("folder " * 12) / "export", 319, 320, False, 0,
                                      out_of_date=119))
    QApplication.processEvents()
    assert dialog.grow_spin.height() == height and dialog.result_label.height() >= \
        dialog.result_label.heightForWidth(dialog.result_label.width())



def test_the_dialog_opens_the_folder_an_export_wrote(qtbot, window, tmp_path, monkeypatch):
    """QA pass 72: the default folder lies deep in a hidden data folder, and nothing opened it."""
    from PySide6.QtGui import QDesktopServices

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url.toLocalFile()) or True))
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    dialog.show()
    assert not dialog.open_button.isVisible()
    with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS,
                          check_params_cb=lambda running: not running):
        dialog.export_button.click()
    assert dialog.open_button.isVisible()
    dialog.open_button.click()
    assert opened == [str(tmp_path / "out")]
    (tmp_path / "a file").write_text("not a folder")  # QA pass 74: after a failed export it opened the earlier one
    dialog.folder_edit.setText(str(tmp_path / "a file" / "out"))
    with qtbot.waitSignal(window.controller.exportFailed, timeout=WAIT_MS):
        dialog.export_button.click()
    assert not dialog.open_button.isVisible()



def test_the_dialog_names_the_key_that_brings_out_of_date_frames_up_to_date(qtbot, window, tmp_path):
    """QA pass 72: "propagate again first" named no key, and F from a correction redoes only the frames after it."""
    doc = window.document
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=WAIT_MS):
        window.controller.propagation.start("forward", 0)
    qtbot.waitUntil(lambda: not window.controller.propagation.running, timeout=WAIT_MS)
    doc.seek(2)
    doc.begin_stroke((30.0, 30.0), 1, 9, erase=False)
    doc.end_stroke()
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    assert "out of date (red on the timeline)" in dialog.result_label.text()
    assert "(Ctrl+F on a corrected frame runs both ways)" in dialog.result_label.text()


def test_a_video_encoder_that_cannot_start_closes_its_file(tmp_path, monkeypatch):
    """QA pass 80: a PyAV without libx264 raised from `add_stream` and left the opened mp4 open."""
    import app.export as export

    closed: list[bool] = []

    class Container:
        def add_stream(self, *args, **kwargs):
            raise ValueError("unknown encoder 'libx264'")

        def close(self):
            closed.append(True)
    monkeypatch.setattr(export.av, "open", lambda *args: Container())
    with pytest.raises(ValueError, match="libx264"):
        export._VideoEncoder(tmp_path / "overlay.mp4", (48, 64), 25.0)
    assert closed == [True]


def test_after_an_export_enter_closes_the_dialog_instead_of_opening_the_folder(qtbot, window, tmp_path, monkeypatch):
    """QA pass 92: as the export ended the focus went to Open folder, so the next Enter started a file manager."""
    from PySide6.QtGui import QDesktopServices

    opened: list = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    dialog.show()
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    dialog.export_button.setFocus()
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS):
        QTest.keyClick(dialog.export_button, Qt.Key.Key_Space)  # Export, from the keyboard
    qtbot.waitUntil(lambda: dialog.open_button.isVisible() and dialog.close_button.text() == "Close")
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    assert not opened and not dialog.isVisible()


def test_a_video_without_saved_work_is_not_offered_the_last_videos_export_folder(qtbot, window, tmp_path):
    """QA pass 110: a newly opened video's export dialog offered the previous video's export folder, and its
    export went there, over that video's files. The previous video keeps its own folder."""
    from .conftest import make_frames

    first = window.controller.source
    window.document.begin_stroke((20.0, 15.0), 1, 9, erase=False)
    window.document.end_stroke()
    dialog = ExportDialog(window.controller, tmp_path / "default_a", window)
    dialog.folder_edit.setText(str(tmp_path / "out_a"))
    with qtbot.waitSignal(window.controller.exportFinished, timeout=WAIT_MS):
        dialog.export_button.click()
    assert window.controller.open(make_frames(tmp_path / "other", count=2))
    assert ExportDialog(window.controller, tmp_path / "default_b", window).folder_edit.text() == \
        str(tmp_path / "default_b")
    assert window.controller.open(first)
    assert ExportDialog(window.controller, tmp_path / "default_a", window).folder_edit.text() == \
        str(tmp_path / "out_a")


def test_exporting_into_another_videos_export_asks_first(qtbot, window, tmp_path, dialogs, monkeypatch):
    """QA pass 110: a second video's export went into the first one's folder, over its files, without a word
    (the question asked was only about files it would not rewrite)."""
    from PySide6.QtWidgets import QMessageBox

    from app.export import other_videos_export

    from .conftest import make_frames

    first = window.controller.source
    out = tmp_path / "out"

    def export_here(answer: QMessageBox.StandardButton | None = None) -> ExportDialog:
        if answer is not None:
            monkeypatch.setattr(QMessageBox, "question", staticmethod(
                lambda parent, title, text, *args, **kwargs: dialogs.append((title, text)) or answer))
        dialog = ExportDialog(window.controller, tmp_path / "default", window)
        dialog.folder_edit.setText(str(out))
        if answer == QMessageBox.StandardButton.Cancel:
            dialog.export_button.click()
        else:  # until the export has ended whole (after its summary), so the next may start
            with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS,
                                  check_params_cb=lambda running: not running):
                dialog.export_button.click()
        return dialog

    window.document.begin_stroke((20.0, 15.0), 1, 9, erase=False)
    window.document.end_stroke()
    export_here()
    first_masks = {f.name: f.read_bytes() for f in (out / "masks").iterdir()}
    export_here()  # the same video again: nothing to ask
    assert not [t for t, _ in dialogs if "Another video" in t]
    assert window.controller.open(make_frames(tmp_path / "other", count=2))
    dialog = export_here(QMessageBox.StandardButton.Cancel)
    asked = [text for title, text in dialogs if "Another video" in title]
    assert len(asked) == 1 and first.name in asked[0], dialogs
    assert "Not exported" in dialog.result_label.text()
    assert {f.name: f.read_bytes() for f in (out / "masks").iterdir()} == first_masks  # untouched
    export_here(QMessageBox.StandardButton.Yes)  # asked, and answered: it goes ahead
    assert other_videos_export(out, None) == "other"  # the folder is the second video's export now


def test_the_note_that_an_export_waits_for_a_propagation_goes_when_it_ends(qtbot, window, tmp_path, monkeypatch):
    """QA pass 110: "A propagation is running… export when it has finished" stayed after "Propagation done"."""
    prop = window.controller.propagation
    monkeypatch.setattr(type(prop), "running", property(lambda self: True))
    dialog = ExportDialog(window.controller, tmp_path / "out", window)
    dialog.export_button.click()
    assert "A propagation is running" in dialog.result_label.text()
    assert "close this dialog and cancel it (Esc)" in dialog.result_label.text()  # QA 111: Esc closes the dialog
    monkeypatch.setattr(type(prop), "running", property(lambda self: False))
    prop.runningChanged.emit(False)
    assert dialog.result_label.text() == "The propagation has ended: the masks can be exported."
    dialog.result_label.setText("something else")  # a later note is left alone
    prop.runningChanged.emit(False)
    assert dialog.result_label.text() == "something else"
