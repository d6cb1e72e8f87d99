"""Export through the dialog's controller path: every output, exact round trip, failures keep old files."""

from __future__ import annotations

import errno

import av
import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from app import export as export_module
from app.export import ExportOptions
from app.views.export_dialog import ExportDialog
from stm_core.io.masks import read_mask

WAIT_MS = 60_000


@pytest.fixture
def window(qtbot, app_factory, frame_dir):
    window = app_factory()
    window.controller.open(frame_dir)
    doc = window.document
    second = doc.add_object("Second")
    doc.begin_stroke((20.0, 30.0), 1, 15, erase=False)
    doc.end_stroke()
    doc.begin_stroke((70.0, 20.0), second.id, 9, erase=False)
    doc.end_stroke()
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=WAIT_MS):
        window.controller.propagation.start("forward")
    return window


def run_export(qtbot, window, options: ExportOptions):
    with qtbot.waitSignal(window.controller.exportRunningChanged, timeout=WAIT_MS,
                          check_params_cb=lambda running: not running):
        window.controller.start_export(options)


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
            soft = read_mask(out / "soft" / f"object_{obj.id:03d}" / f"{name}.png", keep_void=True)
            assert soft.shape == (64, 96)
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
    copy = tmp_path / "copy"  # the same frames elsewhere: a new video, with a workspace of its own
    copy.mkdir()
    for frame in frame_dir.iterdir():
        (copy / frame.name).write_bytes(frame.read_bytes())
    other = app_factory()
    other.controller.open(copy)
    assert other.controller.import_mask_folder(tmp_path / "out" / "masks", as_annotations=True)
    rider = other.document.objects.get(2)
    assert (rider.name, rider.color) == ("Rider", (1, 2, 3))


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

    def progress_then_cancel(session, objects, options, progress, cancel):
        return real(session, objects, options, lambda *a: (progress(*a), cancel.set()), cancel)

    real = export_module.export
    monkeypatch.setattr("app.controller.export", progress_then_cancel)
    finished = []
    window.controller.exportFinished.connect(finished.append)
    run_export(qtbot, window, ExportOptions(out, palette=False, video=True))
    assert finished and finished[0].cancelled
    assert (out / "overlay.mp4").read_bytes() == old
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
