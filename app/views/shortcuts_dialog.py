"""Change the keyboard shortcuts: a key and an alternative per command, checked for clashes before they apply
(another keyboard layout, a left-handed grip, a habit from another tool)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QKeySequenceEdit, QLabel,
                               QLineEdit,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..shortcuts import COMMANDS, KeyMap, clashes, keymap
from .screen_fit import fit_to_screen

PORTABLE = QKeySequence.SequenceFormat.PortableText


class ShortcutsDialog(QDialog):
    """Edits a copy of a key map; `keys()` reads the result after `exec()` (OK only while nothing clashes)."""

    def __init__(self, keys: KeyMap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        fit_to_screen(self, 760, 680)
        self.table = QTableWidget(len(COMMANDS), 3)
        self.table.setHorizontalHeaderLabels(["Command", "Key", "Alternative"])
        self.table.verticalHeader().hide()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            self.table.setColumnWidth(column, 150)
        self._editors: dict[str, tuple[QKeySequenceEdit, QKeySequenceEdit]] = {}
        for row, command in enumerate(COMMANDS):
            item = QTableWidgetItem(f"{command.group}: {command.text}")
            item.setFlags(item.flags() & ~item.flags().ItemIsEditable)
            self.table.setItem(row, 0, item)
            pair = (self._key_edit(), self._key_edit())
            for column, edit in enumerate(pair, start=1):
                self.table.setCellWidget(row, column, edit)
            self._editors[command.id] = pair
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #c0392b")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                        | QDialogButtonBox.StandardButton.RestoreDefaults)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.set_keys(keymap()))
        hint = QLabel("Click a field and press the key; its × clears it. A tap of Space always plays and a hold "
                      "pans; Esc and Enter close this dialog (Restore Defaults gives Esc back to Cancel "
                      "propagation).")
        hint.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(hint)
        layout.addWidget(self.table)
        layout.addWidget(self.problems)
        layout.addWidget(self.buttons)
        self.set_keys(keys)

    def _key_edit(self) -> QKeySequenceEdit:
        edit = QKeySequenceEdit()
        edit.setMaximumSequenceLength(1)  # one key press, as every shortcut of the table is
        edit.setClearButtonEnabled(True)
        edit.keySequenceChanged.connect(self._check)
        for receiver in (edit, *edit.findChildren(QLineEdit)):  # the field's line edit has the keyboard focus
            receiver.installEventFilter(self)
        return edit

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Esc and Enter in a key field close the dialog as they do elsewhere, instead of being taken as the
        field's key (QA pass 39: the dialog could only be left by tabbing through some 100 fields)."""
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent) \
                or event.modifiers() not in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier):
            return False
        if event.key() == Qt.Key.Key_Escape:
            self.reject()
            return True
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled():
                self.accept()
            return True
        return False

    def set_keys(self, keys: KeyMap) -> None:
        for command_id, pair in self._editors.items():
            own = keys.get(command_id, ())
            for edit, key in zip(pair, (*own, "", "")):
                edit.blockSignals(True)
                edit.setKeySequence(QKeySequence(key))
                edit.blockSignals(False)
        self._check()

    def keys(self) -> KeyMap:
        return {command_id: tuple(dict.fromkeys(e.keySequence().toString(PORTABLE) for e in pair
                                                if not e.keySequence().isEmpty()))
                for command_id, pair in self._editors.items()}

    def _check(self) -> None:
        problems = clashes(self.keys())
        self.problems.setText("\n".join(problems))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problems)
