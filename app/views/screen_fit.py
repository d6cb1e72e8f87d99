"""Window and dialog sizes that fit the screen they open on."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

DECORATION = 48
"""Pixels left round a window for the window manager's title bar and frame."""


def fit_to_screen(widget: QWidget, width: int, height: int, minimum: tuple[int, int] | None = None) -> None:
    """Size `widget` to `width` x `height`, or to its screen's free area where that is smaller; a `minimum` the
    screen cannot hold is lowered to it. QA pass 39: on a 1366x768 laptop screen the main window opened at
    1400x900 with its status bar and timeline off-screen, and at 150% scaling its minimum height and the
    shortcut dialogs were taller than the screen, their buttons out of reach."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    area = screen.availableGeometry() if screen is not None else None
    most_w, most_h = (width, height) if area is None else (area.width() - DECORATION, area.height() - DECORATION)
    if minimum is not None:
        widget.setMinimumSize(min(minimum[0], most_w), min(minimum[1], most_h))
    widget.resize(min(width, most_w), min(height, most_h))


def grow_to_fit(widget: QWidget) -> None:
    """Make `widget` as tall as its layout needs at its width, where it is shorter: a label that grew a line
    would be squeezed or cut off instead (QA pass 68: a summary squeezed the spin boxes; QA pass 111: a note
    in the settings showed one line and a half)."""
    layout = widget.layout()
    if layout is not None:
        layout.activate()
    needed = widget.heightForWidth(widget.width()) if widget.hasHeightForWidth() else widget.sizeHint().height()
    if needed > widget.height():
        widget.resize(widget.width(), needed)
