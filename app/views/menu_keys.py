"""The arrow keys, Return and Escape for the menu bar while it has the keyboard (after a tap of Alt)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QMenuBar

_MENU_KEYS = {Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Return,
              Qt.Key.Key_Enter, Qt.Key.Key_Escape}


class MenuBarKeys(QObject):
    """Installed on a menu bar: while it has the focus, its navigation keys go to it rather than to the window's
    shortcuts (QA pass 39: Alt, then Right stepped a frame instead of moving to the next menu)."""

    def __init__(self, bar: QMenuBar) -> None:
        super().__init__(bar)
        bar.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and isinstance(watched, QMenuBar) and watched.hasFocus() and Qt.Key(event.key()) in _MENU_KEYS:
            event.accept()  # no shortcut fires: the key press reaches the menu bar
        return False
