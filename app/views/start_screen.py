"""Shown when no video is open: open a video, a frame folder, the demo clip or a recent item."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget


RECENT_MAX_WIDTH = 700
"""Less than the smallest main window is wide (752 px); longer lines are shortened in the middle."""


_LIST_KEYS = frozenset({Qt.Key.Key_Home, Qt.Key.Key_End, Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_PageUp,
                        Qt.Key.Key_PageDown, Qt.Key.Key_Up, Qt.Key.Key_Down})


class _RecentList(QListWidget):
    """The recent videos, whose navigation keys move in the list: the window's frame shortcuts took them (QA
    pass 95: Home and Right said "Open a video first" instead)."""

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() in _LIST_KEYS and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            event.accept()  # delivered to the list as a key press, not as the shortcut
            return True
        return super().event(event)


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
        self.recent = _RecentList()
        self.recent.setMaximumHeight(180)
        self.recent.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # the name and the path's end stay readable
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
            item.setToolTip(path)
            self.recent.addItem(item)
        # as wide as its longest line, within what the smallest window holds: it kept its default 256 px, and
        # the paths were cut off behind a scroll bar (QA pass 78)
        metrics = self.recent.fontMetrics()
        widest = max((metrics.horizontalAdvance(self.recent.item(i).text()) for i in range(self.recent.count())),
                     default=0)
        self.recent.setFixedWidth(min(max(widest + 40, 360), RECENT_MAX_WIDTH))
        self.recent.setVisible(bool(paths))
        self.recent_label.setVisible(bool(paths))
