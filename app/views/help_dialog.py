"""F1: every keyboard shortcut and mouse gesture, generated from the one command table."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from ..shortcuts import MOUSE_HELP, KeyMap, groups, key_text
from .screen_fit import fit_to_screen


def shortcuts_html(keys: KeyMap | None = None) -> str:
    """The keys of `keys` (else the table's) and the mouse gestures, as one table."""
    rows = []
    for group, commands in groups(keys).items():
        rows.append(f"<tr><th colspan=2 align=left><br>{escape(group)}</th></tr>")
        for command, command_keys in commands:
            keys_html = " or ".join(f"<kbd>{escape(key_text(k))}</kbd>" for k in command_keys)
            rows.append(f"<tr><td width=180>{keys_html}</td><td>{escape(command.text)}</td></tr>")
    rows.append("<tr><th colspan=2 align=left><br>Mouse</th></tr>")
    rows += [f"<tr><td>{escape(g)}</td><td>{escape(t)}</td></tr>" for g, t in MOUSE_HELP]
    return "<table cellspacing=3>" + "".join(rows) + "</table>"


class HelpDialog(QDialog):
    def __init__(self, keys: KeyMap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        fit_to_screen(self, 560, 640)
        self.browser = QTextBrowser()
        self.browser.setHtml(shortcuts_html(keys))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
