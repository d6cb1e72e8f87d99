"""Space anywhere in the main window: a tap plays or pauses, a hold pans the canvas with the left button.

Space used to reach the canvas only when the canvas had the keyboard focus. With the focus in the objects list
(where objects 10 and up are picked), holding Space started playback through the window's shortcut and the
drag meant to pan painted a stroke on whatever frame playback had reached (sixth GUI QA pass). This filter
takes Space before any widget or shortcut sees it, except where Space is text (a name field, a number box)
and except in dialogs and on the start screen, where it presses the focused button.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

from .canvas import CanvasView

_TEXT_INPUTS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)
_SPACE_EVENTS = (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress, QEvent.Type.KeyRelease)


class SpaceKey(QObject):
    """Installed on the application; routes `window`'s Space presses and releases to `canvas`, except those of
    `spared` and its children (the start screen: QA pass 39 found its buttons could not be pressed with Space)."""

    def __init__(self, window: QWidget, canvas: CanvasView, spared: QWidget) -> None:
        super().__init__(window)
        self._window, self._canvas, self._spared = window, canvas, spared
        QApplication.instance().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() not in _SPACE_EVENTS or not isinstance(event, QKeyEvent) \
                or event.key() != Qt.Key.Key_Space or event.modifiers() != Qt.KeyboardModifier.NoModifier:
            return False
        if not isinstance(watched, QWidget) or watched.window() is not self._window \
                or isinstance(watched, _TEXT_INPUTS):  # a dialog, or Space typed as text
            return False
        if watched is self._spared or self._spared.isAncestorOf(watched):
            return False
        if event.type() == QEvent.Type.ShortcutOverride:
            event.accept()  # no shortcut fires: the key press comes here next
        elif event.type() == QEvent.Type.KeyPress:
            self._canvas.hold_space()
        elif not event.isAutoRepeat():
            self._canvas.release_space()
        return True
