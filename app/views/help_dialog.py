"""F1: every keyboard shortcut and mouse gesture, generated from the one command table."""

from __future__ import annotations

from html import escape

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from ..shortcuts import MOUSE_HELP, groups


def shortcuts_html() -> str:
    rows = []
    for group, commands in groups().items():
        rows.append(f"<tr><th colspan=2 align=left><br>{escape(group)}</th></tr>")
        for command in commands:
            keys = " or ".join(f"<kbd>{escape(k)}</kbd>" for k in command.keys)
            rows.append(f"<tr><td width=180>{keys}</td><td>{escape(command.text)}</td></tr>")
    rows.append("<tr><th colspan=2 align=left><br>Mouse</th></tr>")
    rows += [f"<tr><td>{escape(g)}</td><td>{escape(t)}</td></tr>" for g, t in MOUSE_HELP]
    return "<table cellspacing=3>" + "".join(rows) + "</table>"


class HelpDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 640)
        self.browser = QTextBrowser()
        self.browser.setHtml(shortcuts_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
