"""The main window: composes the views around the controller and binds every command of the shortcut table.

It holds no annotation state of its own; it turns menu/keyboard commands into controller calls and shows
the controller's errors as dialogs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QApplication, QCheckBox, QDockWidget, QFileDialog, QInputDialog, QMainWindow,
                               QMessageBox, QProgressDialog, QStackedWidget, QVBoxLayout, QWidget)

from stm_core.io.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from stm_core.session import Direction

from .controller import AppController
from .editor_state import Tool
from .shortcuts import COMMANDS, KeyMap, hint
from .views.canvas import CanvasView
from .views.export_dialog import ExportDialog
from .views.help_dialog import HelpDialog
from .views.menu_keys import MenuBarKeys
from .views.objects_panel import ObjectsPanel
from .views.screen_fit import fit_to_screen
from .views.settings_dialog import SettingsDialog
from .views.shortcuts_dialog import ShortcutsDialog
from .views.space_key import SpaceKey
from .views.start_screen import StartScreen
from .views.status_bar import StatusBar
from .views.timeline import TimelineView
from .views.tool_panel import ToolPanel
from .wording import frame_numbers

APP_NAME = "STM Annotator"
MIN_WIDTH, MIN_HEIGHT = 860, 560
PLAY_FPS = 12
VIDEO_FILTER = f"Videos ({' '.join('*' + s for s in sorted(VIDEO_SUFFIXES))});;All files (*)"
MASK_FILTER = f"Masks ({' '.join('*' + s for s in sorted(IMAGE_SUFFIXES))});;All files (*)"
"""QA pass 49: only PNGs were listed, though JPEG, BMP, TIFF and WebP masks are read too."""
MENUS = (("&File", ("file.open_video", "file.open_folder", "file.demo", None, "file.import_masks",
                   "file.import_frame_mask", None, "file.save", "file.export", None, "file.settings", None,
                   "file.quit")),
         ("&Edit", ("edit.undo", "edit.redo", None, "edit.clear_object", "edit.clear_annotation")),
         ("&View", ("view.overlay_mode", None, "view.fit", "view.zoom_in", "view.zoom_out")),
         ("&Navigate", ("frame.play", None, "frame.prev", "frame.next", "frame.back10", "frame.forward10",
                       "frame.first", "frame.last", "frame.goto", None, "frame.prev_annotated",
                       "frame.next_annotated", "frame.uncertain", "frame.lost")),
         ("&Paint", ("tool.brush", "tool.eraser", "tool.smaller", "tool.larger", None, "tool.keep_others")),
         ("&Objects", ("object.add", "object.toggle_visible", "object.rename", "object.recolour", "object.remove",
                      None,
                      *(f"object.select.{n}" for n in range(1, 10)))),
         ("P&ropagate", ("propagate.forward", "propagate.backward", "propagate.both", "propagate.all",
                         "propagate.cancel", None,
                        "memory.clear")),
         ("&Help", ("help.shortcuts", "help.edit_shortcuts")))


def with_mnemonic(text: str, used: set[str]) -> str:
    """`text` with `&` before a letter no other item of its menu has (`used`, which takes it): the first letter of
    a word where one is free, else any; unchanged where none is."""
    words = [i for i, c in enumerate(text) if c.isalnum() and (i == 0 or not text[i - 1].isalnum())]
    for i in (*words, *range(len(text))):
        if text[i].isalnum() and text[i].lower() not in used:
            used.add(text[i].lower())
            return f"{text[:i]}&{text[i:]}"
    return text


WITHOUT_VIDEO = frozenset({"file.open_video", "file.open_folder", "file.demo", "file.settings", "file.quit",
                           "help.shortcuts", "help.edit_shortcuts", "propagate.cancel"})
"""The commands that mean something with no video open; the others say to open one."""


class MainWindow(QMainWindow):
    def __init__(self, controller: AppController) -> None:
        super().__init__()
        self.controller = controller
        self.document = controller.document
        self.editor = controller.editor
        self._progress_dialog: QProgressDialog | None = None  # while an import or the last save shows progress
        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        # below the minimum the dock covered the canvas and the status bar, unless the screen is smaller still
        fit_to_screen(self, 1400, 900, (MIN_WIDTH, MIN_HEIGHT))

        self.start_screen = StartScreen()
        self.canvas = CanvasView(self.document, self.editor)
        self.timeline = TimelineView(self.document)
        editor_page = QWidget()
        editor_layout = QVBoxLayout(editor_page)
        editor_layout.setContentsMargins(0, 0, 0, 0)
        editor_layout.setSpacing(0)
        editor_layout.addWidget(self.canvas, 1)
        editor_layout.addWidget(self.timeline)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.start_screen)
        self.pages.addWidget(editor_page)
        self.setCentralWidget(self.pages)

        self.tool_panel = ToolPanel(self.editor)
        self.objects_panel = ObjectsPanel(controller)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.tool_panel)
        side_layout.addWidget(self.objects_panel, 1)
        dock = QDockWidget("Tools and objects")
        dock.setObjectName("tools")
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(side)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        dock.hide()  # shown with the first video; the start screen needs no tools
        self.dock = dock
        layout = controller.settings.window_layout()
        if layout is not None:  # size, place and where the dock was put, as the user left them
            self.restoreGeometry(layout[0])
            self.restoreState(layout[1])
            dock.hide()
            fit_to_screen(self, self.width(), self.height())  # as left on a larger screen, or at a smaller scale
        self.status = StatusBar(controller)
        self.setStatusBar(self.status)

        self.play_timer = QTimer(self, interval=1000 // PLAY_FPS)
        self.play_timer.timeout.connect(self._play_step)
        self.actions_by_id = self._build_actions()
        self._show_keys()
        self._build_menus()

        self.start_screen.openVideo.connect(self.open_video_dialog)
        self.start_screen.openFolder.connect(self.open_folder_dialog)
        self.start_screen.openDemo.connect(self.controller.open_demo)
        self.start_screen.openRecent.connect(self._open_recent)
        self.start_screen.set_recent(controller.settings.recent())
        self.space_key = SpaceKey(self, self.canvas, self.start_screen)
        self.tool_panel.editingDone.connect(self.canvas.setFocus)
        self.canvas.spaceTapped.connect(self.toggle_play)
        # QA pass 54: a stroke begun while playing left one dab on the frame it began on, annotated, the rest
        # of the drag lost as frames went by
        self.canvas.pressed.connect(self.play_timer.stop)
        self.canvas.zoomChanged.connect(self.status.set_zoom)
        self.status.cancelRequested.connect(controller.propagation.cancel)
        self.status.clearMemoryRequested.connect(controller.clear_memory)
        controller.error.connect(self.show_error)
        controller.videoOpened.connect(self._on_video_opened)
        self.document.historyChanged.connect(self._update_actions)
        self.document.frameChanged.connect(self._update_actions)
        self._update_actions()

    # ---- commands -----------------------------------------------------------------------------------
    def _handlers(self) -> dict[str, Callable[[], object]]:
        doc, editor, c = self.document, self.editor, self.controller
        handlers: dict[str, Callable[[], object]] = {
            "file.open_video": self.open_video_dialog,
            "file.open_folder": self.open_folder_dialog,
            "file.demo": c.open_demo,
            "file.import_masks": self.import_masks_dialog,
            "file.import_frame_mask": self.import_frame_mask_dialog,
            "file.save": c.save_now,
            "file.export": self.export_dialog,
            "file.settings": self.settings_dialog,
            "file.quit": lambda: self._run_may_stop() and self.close(),
            "edit.undo": self._when_shown(c.undo),
            "edit.redo": self._when_shown(c.redo),
            "edit.clear_object": self._when_shown(self._erase_selected_on_frame),
            "edit.clear_annotation": self._when_shown(self._clear_annotation),
            "frame.prev": lambda: doc.seek(doc.current_frame - 1),
            "frame.next": lambda: doc.seek(doc.current_frame + 1),
            "frame.back10": lambda: doc.seek(doc.current_frame - 10),
            "frame.forward10": lambda: doc.seek(doc.current_frame + 10),
            "frame.first": lambda: doc.seek(0),
            "frame.last": lambda: doc.seek(doc.num_frames - 1),
            "frame.goto": self._go_to_frame,
            "frame.prev_annotated": lambda: self._jump_annotated(-1),
            "frame.next_annotated": lambda: self._jump_annotated(1),
            "frame.uncertain": self._jump_uncertain,
            "frame.lost": self._jump_lost,
            "frame.play": self.toggle_play,
            "tool.brush": lambda: editor.set_tool(Tool.BRUSH),
            "tool.eraser": lambda: editor.set_tool(Tool.ERASER),
            "tool.smaller": editor.shrink_brush,
            "tool.larger": editor.grow_brush,
            "tool.keep_others": lambda: editor.set_keep_others(not editor.keep_others),
            "object.add": c.add_object,
            "object.toggle_visible": self._toggle_visible,
            "object.rename": self.objects_panel.rename_selected,
            "object.recolour": self.objects_panel.recolour_selected,
            "object.remove": self.objects_panel.remove_selected,
            "view.overlay_mode": lambda: editor.set_overlay_mode(editor.overlay_mode.next()),
            "view.fit": self.canvas.fit,
            "view.zoom_in": lambda: self.canvas.zoom_by(1.25),
            "view.zoom_out": lambda: self.canvas.zoom_by(0.8),
            "propagate.forward": lambda: self._propagate("forward"),
            "propagate.backward": lambda: self._propagate("backward"),
            "propagate.both": lambda: self._propagate("both"),
            "propagate.all": self._propagate_all,
            "propagate.cancel": self._escape,
            "memory.clear": c.clear_memory,
            "help.shortcuts": lambda: HelpDialog(self.keys, self).exec(),
            "help.edit_shortcuts": self.shortcuts_dialog,
        }
        for n in range(1, 10):
            handlers[f"object.select.{n}"] = lambda n=n: c.select_object(n)
        for command_id, handler in list(handlers.items()):  # a step or jump ends playback (QA pass 54: it went on)
            if command_id.startswith("frame.") and command_id != "frame.play":
                handlers[command_id] = lambda handler=handler: (self.play_timer.stop(), handler())
        return handlers

    def _build_actions(self) -> dict[str, QAction]:
        """One QAction per command of the table, its keys (the user's, else the table's) bound window-wide."""
        handlers = self._handlers()
        self.keys = self.controller.settings.keymap()
        actions = {}
        for command in COMMANDS:
            action = QAction(command.text, self)
            action.setShortcuts([QKeySequence(k) for k in self.keys[command.id]])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            fn = handlers[command.id] if command.id in WITHOUT_VIDEO else partial(self._on_video, handlers[command.id])
            action.triggered.connect(lambda _=False, fn=fn: fn())
            self.addAction(action)
            actions[command.id] = action
        return actions

    def _on_video(self, handler: Callable[[], object]) -> None:
        """Run a command that needs a video; without one, the status bar says to open one (QA passes 92-93: on the
        start screen Ctrl+E did nothing visible, and U said "No propagated frames yet")."""
        if self.document.is_open:
            handler()
        else:
            self.status.showMessage(f"Open a video first ({hint(self.keys, 'file.open_video')})", 4000)

    def shortcuts_dialog(self) -> None:
        """Edits the stored keys, which another window may have changed since this one bound its own (QA pass
        19: its older keys were written back over them)."""
        self.set_keys(self.controller.settings.keymap())
        dialog = ShortcutsDialog(self.keys, self)
        if dialog.exec():
            self.set_keys(dialog.keys())

    def set_keys(self, keys: KeyMap) -> None:
        """Bind and remember these keys (menus and F1 show them at once)."""
        self.controller.settings.set_keymap(keys)
        self.keys = keys
        for command_id, action in self.actions_by_id.items():
            action.setShortcuts([QKeySequence(k) for k in keys[command_id]])
        self._show_keys()

    def _show_keys(self) -> None:
        for view in (self.tool_panel, self.objects_panel, self.status, self.timeline):
            view.show_keys(self.keys)

    def _build_menus(self) -> None:
        MenuBarKeys(self.menuBar())
        for title, ids in MENUS:
            menu = self.menuBar().addMenu(title)  # Alt and the underlined letter open it
            for command_id in ids:
                if command_id is None:
                    menu.addSeparator()
                else:
                    menu.addAction(self.actions_by_id[command_id])
                if command_id == "file.demo":
                    self.recent_menu = menu.addMenu("Open recent")
                    self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
            used: set[str] = set()  # then the underlined letter picks an item (QA pass 92: none had one)
            for action in menu.actions():
                if not action.isSeparator():
                    action.setText(with_mnemonic(action.text(), used))

    def _open_recent(self, path: str) -> None:
        if not self.controller.open(path):  # e.g. deleted since the list was shown: show the list as it is now
            self.start_screen.set_recent(self.controller.settings.recent())

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for n, path in enumerate(self.controller.settings.recent(), 1):  # numbered: Alt+F, R, then the number
            shown = path.replace("&", "&&")
            self.recent_menu.addAction(f"&{n} {shown}" if n < 10 else shown, lambda p=path: self.controller.open(p))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def _update_actions(self, *_: object) -> None:
        self.actions_by_id["edit.undo"].setEnabled(self.document.can_undo())
        self.actions_by_id["edit.redo"].setEnabled(self.document.can_redo())

    def _seek_or_note(self, frame: int | None, note: str) -> None:
        if frame is None:
            self.status.showMessage(note, 4000)
        else:
            self.document.seek(frame)

    def _go_to_frame(self) -> None:
        """A frame by its number: on a long video the timeline holds several frames a pixel (QA pass 42: frame
        1234 of 3,000 took 123 presses of Shift+Right)."""
        if not self.document.is_open:
            return
        last = self.document.num_frames
        text, ok = QInputDialog.getText(self, "Go to frame", f"Frame (1–{last}):",
                                        text=str(self.document.current_frame + 1))
        if not ok:
            return
        # typed as text: a number spin box turned 999 into 9 and -5 into 5 without a word (QA pass 43); plain
        # digits only, not what int() also takes ('+7', '1_0', other scripts' digits: QA pass 44)
        typed = text.strip()
        frame = int(typed) if re.fullmatch(r"[0-9]{1,9}", typed) else 0
        if not typed:
            self.statusBar().showMessage(f"Enter a frame number from 1 to {last}.", 5000)
        elif not 1 <= frame <= last:
            shown = typed if len(typed) <= 12 else typed[:12] + "…"
            self.statusBar().showMessage(f"There is no frame {shown}: the frames are 1 to {last}.", 5000)
        else:
            self.document.seek(frame - 1)

    def _jump_uncertain(self) -> None:
        """Seek to the next frame down the uncertainty ranking, saying where it stands (QA pass 54: U went round
        the ranking, or stayed on its only frame, without a word)."""
        found = self.document.next_uncertain()
        if found is None:  # QA pass 58: frames a run made background without the network have no uncertainty
            propagated = int(self.document.result_frames().sum()) > len(self.document.annotated_frames())
            self.status.showMessage("No propagated frame has any uncertainty" if propagated
                                    else "No propagated frames yet", 4000)
            return
        frame, rank, count = found
        self.document.seek(frame)
        self.status.showMessage(f"Frame {frame + 1}: " + ("the only propagated frame with an uncertainty" if count == 1
                                else f"{_ordinal(rank)} most uncertain of {count} propagated frames"), 6000)

    def _jump_lost(self) -> None:
        """Seek to the next frame where objects vanish, and name them (the timeline's lanes show the gap)."""
        here = self.document.current_frame
        found = self.document.next_lost()
        if found is None:
            self.status.showMessage("No object is lost in any frame with an up-to-date mask", 4000)
            return
        frame, objects = found
        self.document.seek(frame)
        names = ", ".join(o.name for o in objects)  # first: a narrow window's status bar elides the end
        where = " (the only such frame)" if frame == here else " (from the start again)" if frame < here else ""
        self.status.showMessage(f"{names} lost on frame {frame + 1}{where}: the mask before it shows "
                                f"{'them' if len(objects) > 1 else 'it'}", 6000)

    def _when_shown(self, edit: Callable[[], object]) -> Callable[[], None]:
        """`edit` of the current frame, refused while its picture is still decoding: the last frame's picture and
        mask are on screen (QA pass 36: Ctrl+Z right after End undid the far frame's whole annotation unseen)."""
        def guarded() -> None:
            if self.document.picture_pending:
                self.status.showMessage(f"Frame {self.document.current_frame + 1} is still being decoded: edit it "
                                        "once its picture is shown", 4000)
                return
            edit()
        return guarded

    def _erase_selected_on_frame(self) -> None:
        if self.editor.selected_object is not None:
            self.document.erase_object_on_frame(self.editor.selected_object)

    def _clear_annotation(self) -> None:
        doc = self.document
        if not doc.is_open or not doc.is_annotated():
            self.status.showMessage("This frame has no annotation to clear", 4000)
            return
        answer = QMessageBox.question(
            self, "Clear annotation", f"Clear the annotation of frame {doc.current_frame + 1}?\n\nIts painted mask "
            "is discarded and cannot be brought back with Undo. The frame shows its propagated result again, if "
            "it had one, and the next propagation runs over it like any other frame.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)  # Enter keeps it: it cannot be undone (QA pass 88)
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.clear_annotation()

    def _jump_annotated(self, step: int) -> None:
        note = "No annotated frame " + ("before" if step < 0 else "after") + " this one"
        self._seek_or_note(self.document.neighbour_annotated(step), note)

    def _toggle_visible(self) -> None:
        obj_id = self.editor.selected_object
        obj = self.document.objects.get(obj_id) if obj_id is not None else None
        if obj is not None:
            self.document.set_object_visible(obj.id, not obj.visible)

    def _may_stop_adapting(self) -> bool:
        """Whether a run asked for may replace the running one: asked where that one is adapting."""
        return not self.controller.propagation.adapting_now or QMessageBox.question(
            self, "Stop the adaptation?", "The running propagation is adapting the network to this video. "
            "Starting another stops it: the steps taken are lost, and the new run adapts again.\n\nStop it "
            "and start the new run?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel) == QMessageBox.StandardButton.Yes

    def _propagate_all(self) -> None:
        """Every frame without an up-to-date mask, from the annotated frames around it."""
        if self._may_stop_adapting():
            self.controller.propagation.start_all()

    def _propagate(self, direction: Direction) -> None:
        """Propagate from the current frame, asking first where that would waste or outdate work (QA pass 72: a
        second F during the adaptation threw its steps away without a word, and F on a preview frame made 30
        frames that were all out of date)."""
        doc, runs = self.document, self.controller.propagation
        if not self._may_stop_adapting():
            return
        frame = doc.current_frame
        if not doc.is_open or doc.is_annotated(frame) or not doc.stale_frames()[frame]:
            runs.start(direction)
            return
        annotated = doc.annotated_frames()
        before = [a for a in annotated if a < frame] if direction != "backward" else []
        after = [a for a in annotated if a > frame] if direction != "forward" else []
        source = min([*before[-1:], *after[:1]], key=lambda a: abs(a - frame), default=None)
        text = f"Frame {frame + 1}'s mask is out of date (a preview, or propagated from annotations that changed " \
               "since): propagating from it makes masks that are out of date too."
        buttons = QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel
        if source is not None:
            text += f"\n\nYes: propagate from the annotated frame {source + 1} instead. No: from frame {frame + 1}."
            buttons |= QMessageBox.StandardButton.Yes
        else:
            text += f"\n\nNo: propagate from frame {frame + 1} anyway."
        answer = QMessageBox.question(self, "Propagate from an out-of-date frame?", text, buttons,
                                      QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes and source is not None:
            doc.seek(source)
            runs.start(direction, source)
        elif answer == QMessageBox.StandardButton.No:
            runs.start(direction)

    def _escape(self) -> None:
        """Esc stops whatever runs: propagation first, else playback."""
        if self.controller.propagation.running:
            self.controller.propagation.cancel()
        self.play_timer.stop()

    # ---- playback -----------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.play_timer.stop()
        elif self.document.is_open:
            if self.document.current_frame >= self.document.num_frames - 1:
                self.document.seek(0)
            self.play_timer.start()

    def _play_step(self) -> None:
        doc = self.document
        if doc.current_frame >= doc.num_frames - 1:
            self.play_timer.stop()
        else:
            doc.seek(doc.current_frame + 1)

    # ---- dialogs ------------------------------------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        QMessageBox.warning(self._message_parent(), title, message)

    def _message_parent(self) -> QWidget:
        """Where a message box goes: over the progress dialog that is up (or shows itself after its delay, from
        within the box's own event loop) while an import or the last save runs. Under it, the box was blocked by
        its modality, and only Esc on the progress dialog freed it (QA pass 78)."""
        return self._progress_dialog or self

    @contextmanager
    def _progress(self, dialog: QProgressDialog) -> Iterator[QProgressDialog]:
        """`dialog` as the window's progress dialog until the block ends, then closed."""
        self._progress_dialog = dialog
        try:
            yield dialog
        finally:
            self._progress_dialog = None
            dialog.close()
            dialog.deleteLater()

    def _browse_from(self) -> str:
        """Where file dialogs start: beside the open video (a folder of frames or a video file), else beside the
        last one opened, else the home folder (QA pass 29: the program's working folder)."""
        recent = self.controller.settings.recent()
        source = self.controller.source if self.document.is_open and self.controller.source else \
            Path(recent[0]) if recent else None
        return str(source.parent if source is not None else Path.home())

    def open_video_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self._browse_from(), VIDEO_FILTER)
        if path:
            self.controller.open(path)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder of frames", self._browse_from())
        if folder:
            self.controller.open(folder)

    def import_masks_dialog(self) -> None:
        if not self.document.is_open:
            return
        blocker = self.controller.import_blocker()
        if blocker is not None:  # said before the user picks a folder, not after
            self.show_error("Import refused", blocker)
            return
        folder = QFileDialog.getExistingDirectory(self, "Import masks (images named after the frames)",
                                                  self._browse_from())
        if not folder:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Import masks",
                          "Import these masks as annotated frames (they join the engine's memory and are never "
                          "overwritten by propagation) or as ordinary results (propagation may replace them)?\n\n"
                          "Tick the box below for masks of one object (0 and 255, one folder per object): they "
                          "become a new object, or that object again where they were exported from this video, "
                          "and the other objects stay.", parent=self)
        as_annotations = box.addButton("Annotated frames", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Results", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        # short: a check box does not wrap, and the long label was cut off (QA pass 78)
        new_object = QCheckBox("One object's masks (0/255)")
        box.setCheckBox(new_object)
        box.exec()
        if box.clickedButton() is not cancel:
            dialog = QProgressDialog("Reading masks…", "Cancel", 0, 0, self)
            dialog.setWindowTitle("Import masks")
            dialog.setWindowModality(Qt.WindowModality.WindowModal)  # setValue then keeps the window painted
            dialog.setMinimumDuration(500)  # shown only where an import takes a while (a long video's masks)
            dialog.setAutoReset(False)
            with self._progress(dialog):
                self.controller.import_mask_folder(folder, box.clickedButton() is as_annotations,
                                                   confirm=partial(self._confirm_replacing, new_object.isChecked()),
                                                   as_new_object=new_object.isChecked(),
                                                   progress=partial(self._import_progress, dialog))

    @staticmethod
    def _import_progress(dialog: QProgressDialog, stage: str, done: int, total: int) -> bool:
        """Show an import's progress; False once the user pressed Cancel (heeded until the masks are imported)."""
        if stage == "Importing masks" and not dialog.property("importing"):
            dialog.setProperty("importing", True)
            dialog.setCancelButton(None)  # importing: too late to stop without leaving half an import
        dialog.setLabelText(f"{stage}: {done} of {total}")
        dialog.setMaximum(total)
        dialog.setValue(done)
        return not dialog.wasCanceled()

    def _confirm_replacing(self, new_object: bool, frames: list[int]) -> bool:
        """Painted annotations are the user's work: an import over them is asked for, once, with the way back."""
        shown = frame_numbers(frames, most=12)
        plural = "s" if len(frames) > 1 else ""
        what = f"The object's masks cover pixels painted for other objects, or change its own painted ones, on " \
               f"{len(frames)} annotated frame{plural} ({shown}); the imported masks win there." if new_object else \
               f"The imported masks replace the painted masks of {len(frames)} annotated frame{plural} " \
               f"({shown}); objects they do not show are erased there."
        answer = QMessageBox.question(
            self._message_parent(), "Replace annotated frames?",
            f"{what}\n\n{hint(self.keys, 'edit.undo')} on such a frame brings its painted mask back.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def import_frame_mask_dialog(self) -> None:
        if not self.document.is_open:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Import mask for this frame", self._browse_from(),
                                              MASK_FILTER)
        if path:
            self.controller.import_frame_mask(path)

    def export_dialog(self) -> None:
        workspace = self.controller.autosaver.workspace
        if not self.document.is_open or workspace is None:
            return
        # default inside the workspace: never next to a dataset that may be shared or read-only
        dialog = ExportDialog(self.controller, workspace.root / "export", self)
        dialog.exec()
        dialog.deleteLater()  # else every dialog opened so far would still answer the controller's signals

    def settings_dialog(self) -> None:
        dialog = SettingsDialog(self.controller.settings.preferences(), self, self.controller.weights_problem)
        if dialog.exec():
            self.controller.apply_preferences(dialog.preferences())

    # ---- window -------------------------------------------------------------------------------------
    def _on_video_opened(self, path: str) -> None:
        self.pages.setCurrentIndex(1)
        self.dock.show()
        self.setWindowTitle(f"{Path(path).name} — {APP_NAME}")
        self.start_screen.set_recent(self.controller.settings.recent())
        self.canvas.setFocus()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.controller.open(paths[0])

    def _save_before_closing(self) -> bool | None:
        """Write everything pending, with progress while it takes long (QA pass 28: 1,800 imported 1080p masks
        blocked closing for 30 s with no word, then were reported as a full disk). True: all written; False:
        a write failed; None: the user stopped waiting to keep the window open."""
        saver = self.controller.autosaver
        if saver.save_now(timeout=0.5):
            return True
        total = max(saver.pending(), 1)
        dialog = QProgressDialog("Saving your work before closing…", "Keep the window open", 0, total, self)
        dialog.setWindowTitle("Saving")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        with self._progress(dialog):
            while (left := saver.pending()) and not saver.has_failed():
                if dialog.wasCanceled():
                    return None
                dialog.setLabelText(f"Saving your work before closing: {left} file{'s' * (left != 1)} to write")
                dialog.setValue(max(total - left, 0))
                QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
                time.sleep(0.05)
        return saver.save_now()

    def _run_may_stop(self) -> bool:
        """Asked before quitting stops a running propagation (QA pass 29: Ctrl+Q ended one without a word)."""
        if not self.controller.propagation.running:
            return True
        text = "A propagation is running. Quitting stops it: the frames it made are saved. After reopening, " \
               "propagating again from its start computes them again; from the last frame it made, it goes on " \
               "from there."  # QA pass 75: "does the rest" promised what a restart cannot keep
        if self.controller.propagation.adapting_now:  # QA pass 39: "the frames it made" were previews alone
            text = "A propagation is adapting the network to this video. Quitting stops it: the steps taken are " \
                   "lost, and propagating again after reopening adapts again (the preview frames stay marked out " \
                   "of date until then). A finished adaptation is kept with the work."
        text += "\n\nQuit anyway?"
        answer = QMessageBox.question(
            self, "Stop the propagation?", text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if event.spontaneous() and not self._run_may_stop():  # the window's close button (Ctrl+Q asked already)
            event.ignore()
            return
        saved = self._save_before_closing() if self.document.is_open else True
        if saved is None:  # the user chose to keep the window open
            event.ignore()
            return
        if not saved:
            answer = QMessageBox.warning(
                self, "Work not saved", "Some of your work could not be written to the workspace (the disk is full "
                "or the folder is not writable), so closing now loses it. Keep the window open, free some space or "
                f"fix the folder, and press {hint(self.keys, 'file.save')}; or close anyway.",
                QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Close:
                event.ignore()
                return
        self.play_timer.stop()
        self.controller.settings.set_window_layout(self.saveGeometry(), self.saveState())
        self.controller.shutdown()
        super().closeEvent(event)


def _ordinal(n: int) -> str:
    """'1st', '2nd', '3rd', '11th', '22nd'."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
