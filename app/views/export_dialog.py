"""The one export dialog: choose outputs and folder, watch progress; the export runs off the GUI thread."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton, QSpinBox,
                               QVBoxLayout, QWidget)

from ..controller import AppController
from ..export import ExportOptions, ExportSummary
from ..shortcuts import hint
from ..workspace import SUFFIX
from .screen_fit import grow_to_fit

GROW_LIMIT = 100


class ExportDialog(QDialog):
    def __init__(self, controller: AppController, default_folder: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._started: ExportOptions | None = None  # the export this dialog started, until it ends
        self._waited_for: str | None = None  # the note shown that the export waits for a propagation
        self.setWindowTitle("Export masks")
        last = controller.editor.export_choices  # this video's last export, else the defaults
        self._default_folder = default_folder
        self.folder_edit = QLineEdit(_remembered_folder(last.get("folder"), controller.data_dir)
                                     or str(default_folder))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit)
        folder_row.addWidget(browse)
        self.palette_box = QCheckBox("DAVIS palette PNGs, every frame (masks/)", checked=True)
        self.binary_box = QCheckBox("Binary 0/255 mask per object (binary/object_NNN/)")
        self.grow_spin = QSpinBox(minimum=-GROW_LIMIT, maximum=GROW_LIMIT, value=int(last.get("grow", 0)),
                                  prefix="margin ", suffix=" px")  # "grown by -11 px" read wrong (QA 107)
        self.grow_spin.setToolTip("Grow the binary masks by this many pixels, or shrink them where negative: "
                                  "inpainting and matting tools want a margin round the object")
        self.soft_box = QCheckBox("Soft probability per object, 8-bit (soft/object_NNN/)")
        self.video_box = QCheckBox("Overlay video for review (overlay.mp4)")
        self.coco_box = QCheckBox("COCO instance segmentation, RLE masks (coco.json)")
        self.coco_box.setToolTip("One image per frame, one annotation per object in it; objects with the same "
                                 "name share a category, track_id is the object's id")
        ids = [o.id for o in controller.document.objects]
        gaps = ids != list(range(1, len(ids) + 1))
        self.renumber_box = QCheckBox("Number the objects 1..N in the files" +
                                      (f" (ids now {_id_list(ids)})" if gaps else " (their ids already are)"))
        self.renumber_box.setToolTip("DAVIS evaluation tools count objects up to the largest id and score a "
                                     "missing id as a lost object; objects.json records the new numbers, so "
                                     "re-importing the masks gives the same objects")
        self.renumber_box.setEnabled(gaps)
        fps = controller.document.fps or 24.0  # the video's own rate
        fps = last.get("fps", fps)  # or the one chosen at this video's last export
        self.fps_spin = QDoubleSpinBox(minimum=1.0, maximum=120.0, suffix=" fps")
        self.fps_spin.setDecimals(3)  # 24000/1001 as 23.98 drifted 0.6 s an hour (QA pass 22)
        self.fps_spin.setValue(min(max(fps, 1.0), 120.0))
        for key, box in (("palette", self.palette_box), ("binary", self.binary_box), ("soft", self.soft_box),
                         ("video", self.video_box), ("coco", self.coco_box),
                         ("renumber", self.renumber_box)):
            box.setChecked(last.get(key, box.isChecked()))
        self.progress = QProgressBar()
        self.progress.setValue(0)
        stale = int(controller.document.stale_frames().sum()) if controller.document.is_open else 0
        self.result_label = QLabel("Masks are written at the source resolution, named after the frames; "
                                   "each file is replaced atomically." +
                                   (f" {stale} frame{'s are' if stale > 1 else ' is'} out of date (red on the "
                                    "timeline): propagate again first to include your corrections ("
                                    f"{hint(controller.settings.keymap(), 'propagate.both')} on a corrected frame "
                                    "runs both ways)." if stale else ""))
        self.result_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Folder", folder_row)
        binary_row = QHBoxLayout()
        binary_row.addWidget(self.binary_box)
        binary_row.addWidget(self.grow_spin)
        form.addRow("", self.palette_box)
        form.addRow("", binary_row)
        form.addRow("", self.soft_box)
        video_row = QHBoxLayout()
        video_row.addWidget(self.video_box)
        video_row.addWidget(self.fps_spin)
        form.addRow("", video_row)
        form.addRow("", self.coco_box)
        form.addRow("", self.renumber_box)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.open_button = self.buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setToolTip("Show the export's folder in the file manager")
        self.open_button.hide()  # until an export has written there (QA pass 72: it went deep into a hidden folder)
        self.open_button.clicked.connect(self._open_folder)
        self._written: Path | None = None
        self.export_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.result_label)
        layout.addWidget(self.buttons)
        controller.exportProgress.connect(self._on_progress)
        controller.exportFinished.connect(self._on_finished)
        controller.exportFailed.connect(self._on_failed)
        controller.exportRunningChanged.connect(self._on_running)
        controller.propagation.runningChanged.connect(self._on_propagation)
        self._on_running(controller.exporting)

    def options(self) -> ExportOptions:
        """The chosen outputs; ValueError, saying why, for a folder field that names no folder for certain: empty,
        relative (to what, in a desktop program?) or an unknown user's '~name'."""
        text = self.folder_edit.text().strip()
        if not text:
            raise ValueError("Choose a folder to export into.")
        try:
            folder = Path(text).expanduser()
        except RuntimeError:
            raise ValueError(f"Cannot find the home folder in {text}: enter the folder's full path.") from None
        if not folder.is_absolute():
            raise ValueError(f"{text} is not a full path: enter the folder's full path, or choose it with Browse.")
        return ExportOptions(folder, palette=self.palette_box.isChecked(), binary=self.binary_box.isChecked(),
                             soft=self.soft_box.isChecked(), video=self.video_box.isChecked(),
                             fps=self.fps_spin.value(), coco=self.coco_box.isChecked(),
                             renumber=self.renumber_box.isEnabled() and self.renumber_box.isChecked(),
                             grow=self.grow_spin.value())

    def start(self) -> None:
        self.result_label.clear()  # QA pass 111: an earlier note stayed under the questions asked now
        try:
            options = self.options()
        except ValueError as exc:
            self.result_label.setText(str(exc))
            return
        if not options.anything:
            self.result_label.setText("Choose at least one output.")
            return
        blocker = self._controller.export_blocker(in_dialog=True)
        if blocker is not None:
            self.result_label.setText(blocker)
            self._waited_for = blocker if self._controller.propagation.running else None
            return
        other = self._controller.export_of_other_video(options)
        if other is not None and QMessageBox.question(
                self, "Another video's export is in this folder",
                f"The folder holds the export of {other}. This video's files would replace its files of the same "
                "names and lie beside the rest, and tools reading the folder would take them for one video's. "
                "Export into this folder anyway?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel) != QMessageBox.StandardButton.Yes:
            self.result_label.setText("Not exported: choose another folder (Browse) for this video's export.")
            return
        found = self._controller.export_leftovers(options)
        if found:
            answer = QMessageBox.question(
                self, "An earlier export is in this folder",
                "The folder holds files of an earlier export that this one would not rewrite:\n\n" +
                "\n".join(f"• {x}" for x in found) + "\n\nTools reading the folder would take them for part of "
                "this export. Remove them once the export is complete? (No keeps them.)",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.No)
            if answer not in (QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No):
                return
            options = replace(options, remove_leftovers=answer == QMessageBox.StandardButton.Yes)
        self.result_label.setText("Exporting…")
        self._started = options
        self._controller.start_export(options)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def reject(self) -> None:
        """Close, Esc and the window's close button: while exporting they cancel the export (the dialog stays
        to say where it stopped), so no export runs on unseen."""
        if self._controller.exporting:
            self._controller.cancel_export()
        else:
            super().reject()

    def _on_propagation(self, running: bool) -> None:
        """A note that the export must wait for a propagation goes once it has ended (QA pass 110: it stayed after
        "Propagation done", while Export then worked)."""
        if not running and self._waited_for is not None and self.result_label.text() == self._waited_for:
            self.result_label.setText("The propagation has ended: the masks can be exported.")
        self._waited_for = None

    def _on_running(self, running: bool) -> None:
        self.export_button.setEnabled(not running)
        self.close_button.setText("Cancel" if running else "Close")

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_finished(self, summary: ExportSummary) -> None:
        """Also remembers this export's choices for the video's next one (not a failed export's: QA pass 13)."""
        self._say(summary.describe())
        self._written = summary.folder
        self.open_button.show()
        self.close_button.setFocus()  # QA pass 92: focus went to Open folder, and Enter started a file manager
        options, self._started = self._started, None
        if options is not None:
            # the box as ticked, also where this video's ids needed no renumbering
            choices = {k: v for k, v in asdict(options).items() if k != "remove_leftovers"}  # asked each time
            # the workspace's own folder is not remembered as a path: the workspace moves with the setting
            folder = None if options.folder == self._default_folder else str(options.folder)
            self._controller.editor.set_export_choices({**choices, "folder": folder,
                                                        "renumber": self.renumber_box.isChecked()})

    def _open_folder(self) -> None:
        if self._written is not None and not QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._written))):
            QMessageBox.information(self, "Open folder", f"No file manager could be started; the files are in "
                                                         f"{self._written}")

    def _say(self, text: str) -> None:
        """Show `text` below the progress bar, the dialog growing to fit it (QA pass 68: a four-line summary
        squeezed the spin boxes to half their height)."""
        self.result_label.setText(text)
        grow_to_fit(self)

    def _on_failed(self, title: str, message: str) -> None:
        self._started, self._written = None, None
        self.open_button.hide()  # QA pass 74: it stayed, opening an earlier export's folder
        self._say(f"Export failed: {message}")
        QMessageBox.critical(self, f"Export failed: {title}", f"{message}\n\nFiles of an earlier export in "
                                                             "that folder are left as they were.")


def _id_list(ids: list[int], shown: int = 8) -> str:
    """'1, 3, 4' or '2, 3, 4, 5, 6, 7, 8, …, 40' for a checkbox label."""
    listed = ids if len(ids) <= shown else ids[:shown - 1]
    return ", ".join(str(i) for i in listed) + ("" if len(ids) <= shown else f", …, {ids[-1]}")


def _remembered_folder(folder: object, data_dir: Path) -> str | None:
    """The last export's folder, unless it was a workspace's own `export/` (kept as a path by earlier versions):
    the workspace moves between the data folder and the video's folder with the setting, and an export there
    recreated the old place (QA pass 50: beside the video with the setting off, and the move back then
    failed)."""
    if not isinstance(folder, str) or not folder:
        return None
    place = Path(folder)
    workspace = place.parent
    if place.name == "export" and (workspace.name.endswith(SUFFIX) or workspace.parent == data_dir / "workspaces"):
        return None
    return folder
