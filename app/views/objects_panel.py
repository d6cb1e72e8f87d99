"""The objects list: select, add, remove, rename (F2 or double-click), recolour and hide objects at any time."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QColorDialog, QHBoxLayout, QLabel, QListView, QListWidget,
                               QListWidgetItem, QMessageBox, QPushButton, QStyledItemDelegate, QStyleOptionViewItem,
                               QVBoxLayout, QWidget)

from ..controller import AppController
from ..objects import TrackedObject
from ..shortcuts import TEXT, KeyMap, hint, keymap
from ..wording import frame_numbers

ID_ROLE = Qt.ItemDataRole.UserRole


SWATCH = QSize(26, 16)


def _swatch(color: tuple[int, int, int], obj_id: int) -> QIcon:
    """The object's colour with its id written on it: the id is what keys 1-9 select and what the exported
    masks hold, and names say nothing about it once objects are renamed or ids have gaps."""
    pixmap = QPixmap(SWATCH)
    pixmap.fill(QColor(*color))
    painter = QPainter(pixmap)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    painter.setPen(QColor(0, 0, 0) if luminance > 140 else QColor(255, 255, 255))
    font = painter.font()
    font.setPixelSize(11)
    font.setBold(True)
    painter.setFont(font)
    painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, str(obj_id))
    painter.end()
    return QIcon(pixmap)


class _FittingRows(QStyledItemDelegate):
    """Rows no wider than the list, so that a long name ends in an ellipsis instead of running past the panel's
    edge under a scroll bar (QA pass 92: names cut mid-word)."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        hint = super().sizeHint(option, index)
        view = self.parent()
        return QSize(min(hint.width(), view.viewport().width()), hint.height()) if isinstance(view, QListView) \
            else hint


class ObjectsPanel(QWidget):
    """One row per object: a checkbox for visibility, the colour swatch with the id on it, the name."""

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._doc = controller.document
        self._editor = controller.editor
        self._updating = False
        self._keys: KeyMap = keymap()  # the keys named in tips, until the window gives the user's
        self.list = QListWidget()
        self.list.setIconSize(SWATCH)
        self.list.setItemDelegate(_FittingRows(self.list))
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)  # rows follow the panel's width
        self.list.setEditTriggers(QListWidget.EditTrigger.DoubleClicked | QListWidget.EditTrigger.EditKeyPressed)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_item_changed)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        self.color_button = QPushButton("Colour…")
        for button in (self.add_button, self.remove_button, self.color_button):
            buttons.addWidget(button)  # their tips name their keys: `show_keys`
        self.add_button.clicked.connect(controller.add_object)
        self.remove_button.clicked.connect(self.remove_selected)
        self.color_button.clicked.connect(self.recolour_selected)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.keys_label = QLabel()
        self.keys_label.setWordWrap(True)
        self.keys_label.setStyleSheet("color: gray")
        layout.addWidget(self.list)
        layout.addWidget(self.keys_label)
        layout.addLayout(buttons)
        self._doc.objectsChanged.connect(self._rebuild)
        self._doc.sessionChanged.connect(self._rebuild)
        self._editor.changed.connect(self._sync_selection)

    def show_keys(self, keys: KeyMap) -> None:
        self._keys = keys
        for button, command in ((self.add_button, "object.add"), (self.remove_button, "object.remove"),
                                (self.color_button, "object.recolour")):
            button.setToolTip(f"{TEXT[command].rstrip('…')} ({hint(keys, command)})")
        digits = [hint(keys, f"object.select.{n}") for n in (1, 9)]
        select = "Keys 1–9 select" if digits == ["1", "9"] else f"Keys {digits[0]}…{digits[1]} select objects 1–9"
        self.keys_label.setText(f"{select} · {hint(keys, 'object.add')} adds · {hint(keys, 'object.toggle_visible')} "
                                f"hides · {hint(keys, 'object.rename')} or double-click renames")
        self._rebuild()

    def _rebuild(self) -> None:
        self._updating = True
        self.list.clear()
        for obj in self._doc.objects:
            item = QListWidgetItem(_swatch(obj.color, obj.id), obj.name)
            item.setData(ID_ROLE, obj.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if obj.visible else Qt.CheckState.Unchecked)
            key = self._keys.get(f"object.select.{obj.id}", ())
            item.setToolTip(f"{obj.name}\nObject {obj.id}" + (f" (key {key[0]})" if key else "") +
                            " · double-click to rename · checkbox shows/hides it")
            self.list.addItem(item)
        self._updating = False
        self._sync_selection()

    def _sync_selection(self) -> None:
        selected = self._editor.selected_object
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(ID_ROLE) == selected and self.list.currentItem() is not item:
                self._updating = True
                self.list.setCurrentItem(item)
                self._updating = False
        has = selected is not None
        self.remove_button.setEnabled(has)
        self.color_button.setEnabled(has)

    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None and not self._updating:
            self._editor.select_object(item.data(ID_ROLE))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._updating:
            return
        # read everything first: either change rebuilds the list and deletes `item`
        obj_id, name, visible = item.data(ID_ROLE), item.text(), item.checkState() == Qt.CheckState.Checked
        self._doc.rename_object(obj_id, name)
        self._doc.set_object_visible(obj_id, visible)

    def rename_selected(self) -> None:
        """Edit the selected object's name in its row, as a double-click does."""
        if self.list.state() == QAbstractItemView.State.EditingState:
            return  # QA pass 51: a second F2 committed the name, the list was rebuilt and its item deleted
        self.list.setFocus()
        if (item := self.list.currentItem()) is not None and self._selected() is not None:
            self.list.editItem(item)

    def _selected(self) -> TrackedObject | None:
        obj_id = self._editor.selected_object
        return self._doc.objects.get(obj_id) if obj_id is not None else None

    def remove_selected(self) -> None:
        """Remove the selected object from every frame, once the user confirms."""
        if (obj := self._selected()) is None:
            return
        text = f"Remove “{_short(obj.name)}” from every frame? This cannot be undone."
        if frames := self._doc.unannotated_by_removing(obj.id):  # QA pass 78: said only afterwards
            several = len(frames) > 1
            becomes = "they become ordinary frames" if several else "it becomes an ordinary frame"
            text += f"\n\nFrame{'s' if several else ''} {frame_numbers(frames)} then hold{'' if several else 's'} " \
                    f"nothing else painted: {becomes}, which propagation fills."
        answer = QMessageBox.question(self, "Remove object", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)  # Enter keeps it: it cannot be undone
        if answer == QMessageBox.StandardButton.Yes:
            self._controller.remove_object(obj.id)

    def recolour_selected(self) -> None:
        """Choose the selected object's display colour."""
        if (obj := self._selected()) is None:
            return
        color = QColorDialog.getColor(QColor(*obj.color), self, f"Colour of {_short(obj.name)}")
        if color.isValid():
            self._doc.set_object_color(obj.id, (color.red(), color.green(), color.blue()))


def _short(name: str, most: int = 60) -> str:
    """A name as a dialog shows it: a long one (names may be pasted paragraphs) would stretch it off screen."""
    return name if len(name) <= most else name[:most - 1] + "…"
