"""Settings: device, model and weights, memory schedule, processing resolution, workspace location."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QMessageBox, QPushButton, QSpinBox, QWidget)

from ..settings import DEVICES, MODELS, PROCESS_HEIGHTS, RANGES, RECOMMENDED_HEIGHT, Preferences
from .screen_fit import grow_to_fit


class SettingsDialog(QDialog):
    """Edits a copy of the preferences; `preferences()` reads the result after `exec()`."""

    def __init__(self, prefs: Preferences, parent: QWidget | None = None,
                 check: Callable[[Preferences], str | None] = Preferences.missing_weights) -> None:
        """`check` says why chosen preferences cannot run (None: they can); OK is refused while it says so."""
        super().__init__(parent)
        self._check = check
        self.setWindowTitle("Settings")
        self.device = QComboBox()
        for device in DEVICES:
            self.device.addItem({"auto": "Automatic (CUDA if present)", "cpu": "CPU", "cuda": "CUDA GPU"}[device],
                                device)
        self.device.setCurrentIndex(DEVICES.index(prefs.device))
        self.model = QComboBox()
        for key, name in MODELS.items():
            self.model.addItem(name, key)
        self.model.setCurrentIndex(list(MODELS).index(prefs.model))
        self.weights = QLineEdit(prefs.weights)
        self.weights.setPlaceholderText("weights shipped with the program")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights)
        weights_row.addWidget(browse)
        self.mem_every = QSpinBox(minimum=RANGES["mem_every"][0], maximum=RANGES["mem_every"][1],
                                  value=prefs.mem_every, suffix=" frames")
        self.mem_every.setToolTip("Every N-th propagated frame joins the memory (the STM paper uses 5)")
        self.max_memory = QSpinBox(minimum=RANGES["max_memory"][0], maximum=RANGES["max_memory"][1],
                                   value=prefs.max_memory, suffix=" frames")
        self.max_memory.setToolTip("Cap on memory frames; annotated frames stay (past the cap, the first and those "
                                   "nearest the run's start), the oldest others go. Lower it if propagation runs "
                                   "out of memory.")
        self.resolution = QComboBox()
        for height, name in PROCESS_HEIGHTS.items():
            self.resolution.addItem(name, height)
        self.resolution.setCurrentIndex(list(PROCESS_HEIGHTS).index(prefs.process_height))
        self.resolution.setToolTip("Run the network at this frame height (the width of a portrait video; frames "
                               "under 128 px are scaled up to it); masks are always stored and exported at the "
                               "source size")
        self.adapt_steps = QSpinBox(minimum=RANGES["adapt_steps"][0], maximum=RANGES["adapt_steps"][1],
                                    value=prefs.adapt_steps,
                                    suffix=" steps", specialValueText="Recommended by the model")
        self.adapt_steps.setToolTip("Before propagating, fine-tune the network on warped copies of the annotated "
                                    "frames: much more accurate on unfamiliar videos, 0.5-2 s a step for one object "
                                    "on a 2-core CPU, continued with half the steps after a correction. 0 turns it "
                                    "off; recommended: 60 steps for the shipped model, off for the official one")
        self.beside = QCheckBox("Keep each video's workspace next to it (<video>.stmws)",
                                checked=prefs.workspace_beside_video)
        self.beside.setToolTip("Otherwise workspaces live in the user data folder; a video's workspace moves "
                               "the next time it is opened")
        form = QFormLayout(self)
        form.addRow("Device", self.device)
        form.addRow("Model", self.model)
        form.addRow("Weights file", weights_row)
        form.addRow("Memory every", self.mem_every)
        form.addRow("Memory cap", self.max_memory)
        form.addRow("Processing resolution", self.resolution)
        form.addRow("Adapt to the video", self.adapt_steps)
        self.height_note = QLabel(wordWrap=True)
        form.addRow("", self.height_note)
        for signal in (self.resolution.currentIndexChanged, self.adapt_steps.valueChanged,
                       self.model.currentIndexChanged, self.weights.textChanged):
            signal.connect(self._note_height)
        self._note_height()
        form.addRow("", self.beside)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _note_height(self) -> None:
        """Says what a large working height costs the shipped model without adaptation (QA pass 110: at the
        source size its masks covered most of the frame, and nothing here had said so)."""
        height = self.resolution.currentData()
        shipped = self.model.currentData() == "stm-small" and not self.weights.text().strip()
        self.height_note.setText(
            "Without adaptation the shipped model works best at its own height (about 240 px): larger ones lose "
            "much (DAVIS J&F 0.68 at 176-240 px, 0.49 at 360 px, 0.35 at 480 px). Adaptation teaches it the "
            "video's scale." if shipped and self.adapt_steps.value() == 0 and height not in (RECOMMENDED_HEIGHT, 240)
            else "")
        self.height_note.setVisible(bool(self.height_note.text()))
        grow_to_fit(self)

    def accept(self) -> None:
        """Settings that cannot run (a device this machine lacks, no weights for the official model, a file that
        does not load) are asked for here, so the other edits are not lost (QA pass 19: the controller refused the
        whole change after the dialog had closed)."""
        problem = self._check(self.preferences())
        if problem is not None:
            QMessageBox.warning(self, "Settings not usable", problem)
            return
        super().accept()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model weights", self.weights.text(),
                                              "PyTorch checkpoints (*.pth *.pt);;All files (*)")
        if path:
            self.weights.setText(path)
            if path.lower().endswith(".pth"):  # the official checkpoint is STM_weights.pth, a ResNet-50 STM
                self.model.setCurrentIndex(list(MODELS).index("stm-r50"))

    def preferences(self) -> Preferences:
        return Preferences(device=self.device.currentData(), model=self.model.currentData(),
                           weights=_full_path(self.weights.text()), mem_every=self.mem_every.value(),
                           max_memory=self.max_memory.value(), process_height=self.resolution.currentData(),
                           adapt_steps=self.adapt_steps.value(), workspace_beside_video=self.beside.isChecked())


def _full_path(text: str) -> str:
    """A typed path as the file system knows it, whatever folder the program starts in next: '~/mine.pt' was
    "weights file not found" (QA pass 40), and 'rel.pt' was after a start elsewhere (QA pass 42)."""
    text = text.strip()
    try:
        return str(Path(text).expanduser().absolute()) if text else ""
    except RuntimeError:  # '~unknown_user': left as typed, said as not found
        return text
