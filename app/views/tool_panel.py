"""Tool, brush size and overlay controls, mirroring the editor state both ways."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QSlider, QSpinBox,
                               QToolButton, QWidget)

from ..editor_state import MAX_BRUSH, MIN_BRUSH, EditorState, Tool
from ..overlay import OverlayMode
from ..shortcuts import KeyMap, hint

MODE_NAMES = {OverlayMode.FILLED: "Filled", OverlayMode.CONTOURS: "Contours",
              OverlayMode.PROBABILITY: "Probability (selected object)"}


class ToolPanel(QWidget):
    editingDone = Signal()
    """Enter or Esc in the size box: the window gives the keyboard back to the canvas and its shortcuts (sixth
    GUI QA pass: after typing a size, arrows, F and ] did nothing until the canvas was clicked)."""

    def __init__(self, editor: EditorState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._editor = editor
        self.brush_button = QToolButton(text="Brush (B)", checkable=True)
        self.eraser_button = QToolButton(text="Eraser (E)", checkable=True)
        group = QButtonGroup(self)
        for button in (self.brush_button, self.eraser_button):
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            group.addButton(button)
        self.brush_button.clicked.connect(lambda: editor.set_tool(Tool.BRUSH))
        self.eraser_button.clicked.connect(lambda: editor.set_tool(Tool.ERASER))
        tools = QHBoxLayout()
        tools.addWidget(self.brush_button)
        tools.addWidget(self.eraser_button)

        self.size_spin = QSpinBox(minimum=MIN_BRUSH, maximum=MAX_BRUSH, suffix=" px")
        self.size_spin.setToolTip("Brush diameter in frame pixels")
        self.size_spin.valueChanged.connect(editor.set_brush_size)
        self.keep_box = QCheckBox("Keep other objects (K)")
        self.keep_box.setToolTip("The brush paints only over the background and the selected object, so an object "
                                 "can be painted up to its neighbours without cutting into them")
        self.keep_box.toggled.connect(editor.set_keep_others)
        self.mode_combo = QComboBox()
        for mode, name in MODE_NAMES.items():
            self.mode_combo.addItem(name, mode)
        self.mode_combo.setToolTip("Overlay mode")
        self.mode_combo.currentIndexChanged.connect(lambda i: editor.set_overlay_mode(self.mode_combo.itemData(i)))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
        self.opacity_slider.setToolTip("Overlay opacity")
        self.opacity_slider.valueChanged.connect(lambda v: editor.set_opacity(v / 100.0))

        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 6)
        form.addRow("Tool", tools)
        form.addRow("Size", self.size_spin)
        form.addRow("", self.keep_box)
        form.addRow("Overlay", self.mode_combo)
        form.addRow("Opacity", self.opacity_slider)
        for widget in (self.size_spin, self.keep_box, self.mode_combo, self.opacity_slider, self.brush_button,
                       self.eraser_button):
            widget.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # keep arrows and digits for the window's shortcuts
        self.size_spin.installEventFilter(self)
        editor.changed.connect(self._sync)
        self._sync()

    def show_keys(self, keys: KeyMap) -> None:
        """Name the user's keys on the buttons and in the tips."""
        self.brush_button.setText(f"Brush ({hint(keys, 'tool.brush')})")
        self.eraser_button.setText(f"Eraser ({hint(keys, 'tool.eraser')})")
        self.keep_box.setText(f"Keep other objects ({hint(keys, 'tool.keep_others')})")
        self.size_spin.setToolTip(f"Brush diameter in frame pixels ({hint(keys, 'tool.smaller')} and "
                                  f"{hint(keys, 'tool.larger')})")
        self.mode_combo.setToolTip(f"Overlay mode ({hint(keys, 'view.overlay_mode')} cycles)")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is not self.size_spin or not isinstance(event, QKeyEvent) \
                or event.key() not in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape):
            return False
        if event.type() == QEvent.Type.ShortcutOverride:  # Esc would otherwise cancel a propagation instead
            event.accept()
            return True
        if event.type() == QEvent.Type.KeyPress:
            if event.key() == Qt.Key.Key_Escape:  # the size shown goes back to the one in use
                self._sync()
            else:
                self.size_spin.interpretText()
            self.editingDone.emit()
            return True
        return False

    def _sync(self) -> None:
        e = self._editor
        (self.brush_button if e.tool is Tool.BRUSH else self.eraser_button).setChecked(True)
        for widget, setter, value in ((self.size_spin, self.size_spin.setValue, e.brush_size),
                                      (self.mode_combo, self.mode_combo.setCurrentIndex,
                                       list(MODE_NAMES).index(e.overlay_mode)),
                                      (self.opacity_slider, self.opacity_slider.setValue, round(e.opacity * 100)),
                                      (self.keep_box, self.keep_box.setChecked, e.keep_others)):
            widget.blockSignals(True)
            setter(value)
            widget.blockSignals(False)
