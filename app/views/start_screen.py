"""Shown when no video is open: open a video, a frame folder, the demo clip or a recent item."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget


class StartScreen(QWidget):
    openVideo = Signal()
    openFolder = Signal()
    openDemo = Signal()
    openRecent = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("<h1>STM Annotator</h1><p>Paint a mask on one frame, propagate it through the video, "
                       "correct where it drifts, export.</p><p>Drop a video file or a folder of frames "
                       "anywhere in this window, or:</p>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        for text, signal in (("Open video…", self.openVideo), ("Open frame folder…", self.openFolder),
                             ("Try the demo clip", self.openDemo)):
            button = QPushButton(text)
            button.setMinimumHeight(40)
            button.setAutoDefault(True)  # Return presses the focused button, as Space does
            button.setMaximumWidth(360)
            button.clicked.connect(signal)
            layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        self.recent = QListWidget()
        self.recent.setMaximumWidth(560)
        self.recent.setMaximumHeight(180)
        self.recent.itemActivated.connect(lambda item: self.openRecent.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.recent_label = QLabel("Recent (double-click, or Enter):")
        layout.addSpacing(16)
        layout.addWidget(self.recent_label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.recent, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for path in paths:
            item = QListWidgetItem(f"{Path(path).name}    —    {path}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.recent.addItem(item)
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
