"""The real main window driven with mouse and keyboard events: open, paint, undo, navigate, objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QKeySequence, QWheelEvent
from PySide6.QtWidgets import QApplication, QPushButton, QWidget

from app.editor_state import Tool
from app.overlay import OverlayMode
from app.views.canvas import MAX_ZOOM
from app.shortcuts import COMMANDS, key_text
from app.views.help_dialog import shortcuts_html


def viewport_point(window, x: float, y: float) -> QPoint:
    """Where frame pixel (x, y) is on the canvas viewport."""
    return window.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


def stroke(qtbot, window, points, button=Qt.MouseButton.LeftButton, modifier=Qt.KeyboardModifier.NoModifier):
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, button, modifier, viewport_point(window, *points[0]))
    for p in points[1:]:
        qtbot.mouseMove(viewport, viewport_point(window, *p))
    qtbot.mouseRelease(viewport, button, modifier, viewport_point(window, *points[-1]))


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(window.canvas, k, modifier)


@pytest.fixture
def window(app_factory, frame_dir):
    window = app_factory()
    assert window.controller.open(frame_dir)
    QApplication.processEvents()
    return window


def test_start_screen_then_open_folder(app_factory, frame_dir):
    window = app_factory()
    assert window.pages.currentIndex() == 0
    assert window.controller.open(frame_dir)
    assert window.pages.currentIndex() == 1
    assert window.document.num_frames == 4 and window.document.frame_size == (64, 96)
    assert frame_dir.name in window.windowTitle()
    assert window.objects_panel.list.count() == 1  # a fresh video starts with one object, selected
    assert window.editor.selected_object == 1


def test_the_recent_list_is_as_wide_as_its_paths_within_the_window(qtbot):
    """QA pass 78: the list kept Qt's default 256 px, and a path was cut off behind a scroll bar."""
    from app.views.start_screen import RECENT_MAX_WIDTH, StartScreen

    screen = StartScreen()
    qtbot.addWidget(screen)
    path = "/home/annotator/projects/davis/cutie-examples/images/judo"
    screen.set_recent([path])
    screen.resize(1232, 700)
    screen.show()
    qtbot.waitExposed(screen)
    item = screen.recent.item(0)
    assert screen.recent.viewport().width() >= screen.recent.fontMetrics().horizontalAdvance(item.text())
    assert item.toolTip() == path
    screen.set_recent(["/a/" + "very-long-folder-name/" * 20 + "clip.mp4"])
    assert screen.recent.width() == RECENT_MAX_WIDTH  # longer ones are shortened in the middle


def test_the_recent_lists_keys_move_in_the_list_not_through_frames(qtbot, app_factory, tmp_path):
    """QA pass 95: on the start screen, Home and Right in the recent list were the window's frame shortcuts (and
    said "Open a video first")."""
    window = app_factory()
    recent = window.start_screen.recent
    window.start_screen.set_recent([str(tmp_path / f"clip{i}") for i in range(3)])
    window.show()
    qtbot.waitExposed(window)
    recent.setFocus()
    recent.setCurrentRow(2)
    window.status.clearMessage()
    qtbot.keyClick(recent, Qt.Key.Key_Home)
    assert recent.currentRow() == 0
    qtbot.keyClick(recent, Qt.Key.Key_End)
    assert recent.currentRow() == 2 and window.status.currentMessage() == ""


@pytest.mark.parametrize("key", [Qt.Key.Key_Space, Qt.Key.Key_Return])
def test_the_start_screens_buttons_press_from_the_keyboard(qtbot, app_factory, key):
    """QA pass 39: Tab to "Try the demo clip", then Space or Return, did nothing (Space went to play and pan)."""
    window = app_factory()
    button = next(b for b in window.start_screen.findChildren(QPushButton) if b.text() == "Try the demo clip")
    button.setFocus()
    pressed = []
    window.start_screen.openDemo.connect(lambda: pressed.append(True))
    qtbot.keyClick(button, key)
    assert pressed == [True]
    qtbot.waitUntil(lambda: window.pages.currentIndex() == 1, timeout=30_000)


def test_after_a_tap_of_alt_the_arrow_keys_move_in_the_menu_bar_not_the_video(qtbot, window):
    """QA pass 39: Alt, then Right stepped a frame; the menus had no Alt+letter either."""
    bar = window.menuBar()
    assert [a.text() for a in bar.actions()][:3] == ["&File", "&Edit", "&View"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Alt)  # a tap: the menu bar takes the keyboard
    qtbot.waitUntil(bar.hasFocus)
    qtbot.keyClick(bar, Qt.Key.Key_Right)
    assert window.document.current_frame == 0
    qtbot.keyClick(bar, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not bar.hasFocus())
    for menu in (a.menu() for a in bar.actions()):  # QA pass 92: no item had an underlined letter either
        texts = [a.text() for a in menu.actions() if not a.isSeparator()]
        letters = [t[t.index("&") + 1].lower() for t in texts if "&" in t]
        assert len(letters) == len(set(letters)) == len(texts), texts
    assert window.actions_by_id["file.export"].text() == "&Export…"
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.document.current_frame == 1


def test_ctrl_g_goes_to_a_frame_by_its_number(qtbot, window, monkeypatch):
    """QA pass 42: on 3,000 frames the timeline holds about 3 frames a pixel, and frame 1234 took 123 presses."""
    from PySide6.QtWidgets import QInputDialog

    asked, typed = [], ["3", "999", "-5", "x", "+2", "1_0", "١٠", " ", "9" * 40]
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(
        lambda parent, title, label, text="", *a: asked.append((label, text)) or (typed.pop(0), True)))
    key(qtbot, window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert asked == [("Frame (1–4):", "1")] and window.document.current_frame == 2  # numbered from 1
    for wrong in ("999", "-5", "x", "+2", "1_0", "١٠"):  # QA pass 43: a spin box made 999 frame 9, unsaid
        key(qtbot, window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
        assert window.document.current_frame == 2
        assert window.statusBar().currentMessage() == f"There is no frame {wrong}: the frames are 1 to 4."
    key(qtbot, window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)  # QA pass 44: "no frame :"
    assert window.statusBar().currentMessage() == "Enter a frame number from 1 to 4."
    key(qtbot, window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert window.statusBar().currentMessage() == f"There is no frame {'9' * 12}…: the frames are 1 to 4."


def test_mouse_stroke_paints_the_mask_and_annotates_the_frame(qtbot, window):
    doc = window.document
    window.editor.set_brush_size(5)
    stroke(qtbot, window, [(20, 30), (35, 30), (50, 30)])
    labels = doc.session.labels(0)
    assert labels[30, 20] == 1 and labels[30, 35] == 1 and labels[30, 50] == 1
    assert labels[10, 10] == 0
    assert doc.is_annotated(0)
    overlay = window.canvas._overlay.buffer
    assert overlay[30, 35, 3] == 255 and overlay[10, 10, 3] == 0  # the view shows what was painted

    stroke(qtbot, window, [(35, 30), (36, 30)], button=Qt.MouseButton.RightButton)  # right drag erases
    assert doc.session.labels(0)[30, 35] == 0 and doc.session.labels(0)[30, 20] == 1


def test_shift_click_draws_a_straight_line(qtbot, window):
    window.editor.set_brush_size(3)
    stroke(qtbot, window, [(10, 10)])
    stroke(qtbot, window, [(60, 10)], modifier=Qt.KeyboardModifier.ShiftModifier)
    assert window.document.session.labels(0)[10, 10:61].all()


def test_undo_redo_keys(qtbot, window):
    doc = window.document
    window.editor.set_brush_size(5)
    stroke(qtbot, window, [(20, 20), (40, 20)])
    stroke(qtbot, window, [(20, 40), (40, 40)])
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.session.labels(0)[40, 30] == 0 and doc.session.labels(0)[20, 30] == 1
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not doc.is_annotated(0)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert doc.is_annotated(0) and doc.session.labels(0)[20, 30] == 1
    assert window.canvas._overlay.buffer[20, 30, 3] == 255


def test_keyboard_navigation(qtbot, window):
    doc = window.document
    key(qtbot, window, Qt.Key.Key_Right)
    assert doc.current_frame == 1
    key(qtbot, window, Qt.Key.Key_End)
    assert doc.current_frame == 3
    key(qtbot, window, Qt.Key.Key_Left)
    assert doc.current_frame == 2
    key(qtbot, window, Qt.Key.Key_Home)
    assert doc.current_frame == 0
    key(qtbot, window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert doc.current_frame == 3  # +10, clamped
    assert "Frame 4 / 4" in window.status.frame_label.text()


def test_space_plays_and_stops(qtbot, window):
    key(qtbot, window, Qt.Key.Key_Space)
    assert window.play_timer.isActive()
    qtbot.waitUntil(lambda: window.document.current_frame == 3, timeout=3000)
    qtbot.waitUntil(lambda: not window.play_timer.isActive(), timeout=3000)


def test_frame_keys_never_scroll_the_picture(qtbot, window):
    """QA pass 31: where the window's shortcuts did not take them (a window not yet active), the arrow keys
    scrolled half the frame out of view."""
    from PySide6.QtGui import QKeyEvent

    canvas = window.canvas
    canvas.zoom_by(4.0, QPointF(canvas.viewport().width() / 2, canvas.viewport().height() / 2))
    bars = (canvas.horizontalScrollBar(), canvas.verticalScrollBar())
    before = [bar.value() for bar in bars]
    for k in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_End, Qt.Key.Key_PageDown):
        QApplication.sendEvent(canvas, QKeyEvent(QEvent.Type.KeyPress, k, Qt.KeyboardModifier.NoModifier))
    assert [bar.value() for bar in bars] == before


def test_tool_brush_size_object_and_overlay_keys(qtbot, window):
    editor = window.editor
    key(qtbot, window, Qt.Key.Key_E)
    assert editor.tool is Tool.ERASER
    key(qtbot, window, Qt.Key.Key_B)
    assert editor.tool is Tool.BRUSH
    size = editor.brush_size
    key(qtbot, window, Qt.Key.Key_BracketRight)
    assert editor.brush_size > size
    key(qtbot, window, Qt.Key.Key_BracketLeft)
    key(qtbot, window, Qt.Key.Key_BracketLeft)
    assert editor.brush_size < size
    for _ in range(11):
        key(qtbot, window, Qt.Key.Key_N)  # add objects: 12 in all, more than the number keys reach
    assert len(window.document.objects) == 12 and editor.selected_object == 12
    key(qtbot, window, Qt.Key.Key_3)
    assert editor.selected_object == 3
    window.objects_panel.list.setCurrentRow(10)  # beyond the digits: reachable from the panel
    assert editor.selected_object == 11
    key(qtbot, window, Qt.Key.Key_H)
    assert not window.document.objects.get(11).visible
    key(qtbot, window, Qt.Key.Key_O)
    assert editor.overlay_mode is OverlayMode.CONTOURS


def test_contours_stay_visible_when_zoomed_out(qtbot, window):
    """QA pass 105: a 4K frame's one-pixel contours were scattered dots at 12 % and a broken line at 29 %."""
    from app.editor_state import OverlayMode

    doc, canvas = window.document, window.canvas
    doc.begin_stroke((48.0, 32.0), 1, 21, erase=False)
    doc.end_stroke()
    window.editor.set_overlay_mode(OverlayMode.CONTOURS)
    canvas.resetTransform()
    canvas.zoom_by(1.0)
    thin = int((canvas._overlay.buffer[..., 3] > 0).sum())
    canvas.zoom_by(0.25)  # 25 %: lines of 6 frame pixels, 1.5 on screen
    wide = int((canvas._overlay.buffer[..., 3] > 0).sum())
    assert canvas.zoom == pytest.approx(0.25) and wide > 2 * thin
    canvas.zoom_by(4.0)
    assert int((canvas._overlay.buffer[..., 3] > 0).sum()) == thin
    canvas.zoom_by(0.25)
    doc.begin_stroke((44.0, 32.0), 1, 5, erase=True)  # an edit redraws the wide lines it moves, also beyond it
    doc.end_stroke()
    partial = canvas._overlay.buffer.copy()
    canvas._render_overlay()
    assert np.array_equal(partial, canvas._overlay.buffer)


def test_objects_rename_recolour_and_paint_new_object(qtbot, window):
    doc = window.document
    obj = doc.add_object()
    window.editor.select_object(obj.id)
    item = window.objects_panel.list.item(1)
    item.setText("Rider")
    assert doc.objects.get(obj.id).name == "Rider"
    doc.set_object_color(obj.id, (10, 200, 30))
    window.editor.set_brush_size(5)
    stroke(qtbot, window, [(70, 50)])
    assert doc.session.labels(0)[50, 70] == obj.id
    assert tuple(window.canvas._overlay.buffer[50, 70, :3]) == (30, 200, 10)  # BGRA


def test_wheel_zoom_fit_and_minimap(qtbot, window):
    canvas = window.canvas
    fitted = canvas.zoom
    anchor = viewport_point(window, 20, 20)
    wheel = QWheelEvent(QPointF(anchor), QPointF(canvas.viewport().mapToGlobal(anchor)), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), wheel)
    assert canvas.zoom > fitted * 1.3
    assert abs(canvas.mapFromScene(QPointF(20.5, 20.5)).x() - anchor.x()) <= 1  # zoomed around the cursor
    assert canvas.minimap.isVisible()
    size, zoom = window.editor.brush_size, canvas.zoom
    ctrl_wheel = QWheelEvent(QPointF(anchor), QPointF(canvas.viewport().mapToGlobal(anchor)), QPoint(0, 0),
                             QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.ControlModifier,
                             Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), ctrl_wheel)
    assert window.editor.brush_size > size and canvas.zoom == zoom  # Ctrl+wheel sizes the brush
    minimap, inside = canvas.minimap, QPoint(canvas.minimap.width() // 2, canvas.minimap.height() // 2)
    over_minimap = QWheelEvent(QPointF(inside), QPointF(minimap.mapToGlobal(inside)), QPoint(0, 0), QPoint(0, 120),
                               Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase,
                               False)
    centre = canvas.viewport().rect().center()
    under = canvas.mapToScene(centre)
    QApplication.sendEvent(minimap, over_minimap)
    assert canvas.zoom > zoom * 1.1  # QA pass 56: the overview took the wheel, and zooming stopped there
    after = canvas.mapToScene(centre)  # QA pass 66: about the centre, not a point hidden under the overview
    assert abs(after.x() - under.x()) * canvas.zoom <= 2 and abs(after.y() - under.y()) * canvas.zoom <= 2
    key(qtbot, window, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom == pytest.approx(fitted)
    assert not canvas.minimap.isVisible()


def test_the_overview_of_a_portrait_video_fits_in_its_corner(app_factory, tmp_path):
    """QA pass 56: scaled to 180 px wide, a 360x1280 video's overview was taller than the canvas."""
    from .conftest import make_frames

    window = app_factory()
    assert window.controller.open(make_frames(tmp_path / "tall", count=2, size=(1280, 360)))
    window.canvas.zoom_by(3.0)
    minimap = window.canvas.minimap
    assert minimap.isVisible() and minimap.height() == 180 and minimap.width() == 50 and minimap.y() >= 0


def test_zoom_in_never_zooms_out_on_a_tiny_frame(app_factory, tmp_path):
    """Seventh GUI QA pass: a 16x12 clip fitted at 62x, and Ctrl+= took it to the 40x cap, shrinking it."""
    from .conftest import make_frames

    window = app_factory()
    assert window.controller.open(make_frames(tmp_path / "tiny", count=2, size=(6, 8)))
    canvas = window.canvas
    canvas.fit()
    fitted = canvas.zoom
    assert fitted > MAX_ZOOM
    canvas.zoom_by(1.25)
    assert canvas.zoom == pytest.approx(fitted)
    canvas.zoom_by(0.8)
    assert canvas.zoom < fitted


def test_help_lists_every_key_as_the_menus_spell_it(window):
    html = shortcuts_html()
    for command in COMMANDS:
        for k in command.keys:
            assert key_text(k).replace("<", "&lt;") in html
    erase = window.actions_by_id["edit.clear_object"]  # QA 107: help said Delete, the menu Del
    assert f"<kbd>{erase.shortcut().toString(QKeySequence.SequenceFormat.NativeText)}</kbd>" in html
    assert "<kbd>Delete</kbd>" not in html


def test_escape_cancels_nothing_gracefully(qtbot, window):
    key(qtbot, window, Qt.Key.Key_Escape)
    assert not window.controller.propagation.running


def test_long_stroke_on_1080p_frame_paints_its_path(app_factory, tmp_path):
    """A 200-move stroke on a 1080p frame paints its whole path (its speed is measured in scripts/app_bench.py,
    not asserted here)."""
    from .conftest import make_frames

    window = app_factory()
    window.controller.open(make_frames(tmp_path / "hd", count=1, size=(1080, 1920)))
    doc = window.document
    doc.begin_stroke((100.0, 100.0), 1, 30, erase=False)
    for i in range(200):
        doc.extend_stroke((100.0 + 8 * i, 100.0 + 4 * i))
    doc.end_stroke()
    assert np.count_nonzero(doc.session.labels(0)) > 200 * 8 * 25


def test_middle_drag_and_space_drag_pan_without_painting(qtbot, window):
    canvas, viewport = window.canvas, window.canvas.viewport()
    canvas.zoom_by(4.0)
    h = canvas.horizontalScrollBar()
    start = h.value()
    centre = viewport.rect().center()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=centre)
    qtbot.mouseMove(viewport, centre + QPoint(-60, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=centre + QPoint(-60, 0))
    assert h.value() > start
    panned = h.value()
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(viewport, centre + QPoint(40, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=centre + QPoint(40, 0))
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert h.value() < panned
    assert not window.play_timer.isActive()  # a space that panned does not toggle playback
    assert not window.document.is_annotated(0)  # nothing was painted


def test_space_pans_wherever_the_keyboard_focus_is(qtbot, window):
    """Sixth GUI QA pass: with the focus in the objects list, a held Space started playback through the
    window's shortcut and the drag meant to pan painted a stroke on the frame playback had reached."""
    canvas, viewport = window.canvas, window.canvas.viewport()
    canvas.zoom_by(4.0)
    h = canvas.horizontalScrollBar()
    start = h.value()
    objects = window.objects_panel.list
    objects.setFocus()
    centre = viewport.rect().center()
    qtbot.keyPress(objects, Qt.Key.Key_Space)
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseMove(viewport, centre + QPoint(-60, 0))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=centre + QPoint(-60, 0))
    qtbot.keyRelease(objects, Qt.Key.Key_Space)
    assert h.value() > start and not window.play_timer.isActive() and not window.document.is_annotated(0)
    qtbot.keyClick(objects, Qt.Key.Key_Space)  # a tap still plays, from there too
    assert window.play_timer.isActive()
    window.toggle_play()
    size = window.tool_panel.size_spin
    size.setFocus()
    qtbot.keyClick(size, Qt.Key.Key_Space)  # typed as text into a number box
    assert not window.play_timer.isActive()


def test_enter_or_escape_in_the_size_box_gives_the_keys_back_to_the_canvas(qtbot, window):
    """Sixth GUI QA pass: after typing a brush size, arrows, F and ] did nothing until the canvas was clicked."""
    size = window.tool_panel.size_spin
    window.activateWindow()
    size.setFocus()
    qtbot.waitUntil(size.hasFocus, timeout=3000)
    size.lineEdit().selectAll()
    qtbot.keyClicks(size, "30")
    qtbot.keyClick(size, Qt.Key.Key_Return)
    assert window.editor.brush_size == 30
    qtbot.waitUntil(window.canvas.hasFocus, timeout=3000)
    size.setFocus()
    qtbot.waitUntil(size.hasFocus, timeout=3000)
    size.lineEdit().selectAll()
    qtbot.keyClicks(size, "7")
    qtbot.keyClick(size, Qt.Key.Key_Escape)
    qtbot.waitUntil(window.canvas.hasFocus, timeout=3000)
    assert window.editor.brush_size in (7, 30) and size.value() == window.editor.brush_size


def test_window_size_and_dock_place_are_remembered(qtbot, app_factory, frame_dir, tmp_path):
    """Sixth GUI QA pass: the window came back at 1400x900 with the dock on the left, whatever the user did."""
    from PySide6.QtCore import QSettings

    from app.controller import AppController
    from app.main_window import MainWindow
    from app.settings import AppSettings

    window = app_factory()  # shares the settings file below; the factory then sizes its windows itself
    window.controller.open(frame_dir)
    window.resize(752, 690)  # the offscreen screen (800x800) leaves 752x752 for a window: within it
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, window.dock)
    qtbot.waitUntil(lambda: window.size().height() == 690)
    window.close()
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    again = MainWindow(AppController(AppSettings(store), tmp_path / "data"))
    qtbot.addWidget(again)
    try:
        assert (again.size().width(), again.size().height()) == (752, 690)  # not the first-run size
        again.show()
        assert not again.dock.isVisible()  # the start screen needs no tools
        again.controller.open(frame_dir)
        assert again.dockWidgetArea(again.dock) == Qt.DockWidgetArea.RightDockWidgetArea and again.dock.isVisible()
        again.resize(300, 200)
        assert again.width() >= 752 and again.height() >= 560  # the minimum (860 wide where the screen has room)
    finally:
        again.close()


def test_click_on_timeline_seeks(qtbot, window):
    timeline = window.timeline
    scene_pos = timeline.getPlotItem().vb.mapViewToScene(QPointF(2, 0.5))
    qtbot.mouseClick(timeline.viewport(), Qt.MouseButton.LeftButton, pos=timeline.mapFromScene(scene_pos))
    assert window.document.current_frame == 2


def test_timeline_counts_frames_from_one_like_the_status_bar(window):
    axis = window.timeline.getPlotItem().getAxis("bottom")
    ticks = [(v, s) for _, level in axis.tickValues(-0.5, 99.5, 600) for v in level
             for s in axis.tickStrings([v], 1, 1)]
    assert ticks and all(s == str(int(v) + 1) and float(v).is_integer() for v, s in ticks)
    assert "10" in [s for _, s in ticks] and "0" not in [s for _, s in ticks]
    assert [axis.tickStrings(level, 1, 1) for _, level in axis.tickValues(-0.5, 1.5, 600)] == [["1", "2"]]
    window.document.seek(2)
    assert window.status.frame_label.text().startswith("Frame 3 /")


def test_f1_opens_the_generated_help(qtbot, window, monkeypatch):
    from app.views.help_dialog import HelpDialog

    opened = []
    monkeypatch.setattr(HelpDialog, "exec", lambda self: opened.append(self.browser.toPlainText()))
    key(qtbot, window, Qt.Key.Key_F1)
    assert opened and "Next most uncertain frame" in opened[0] and "Ctrl+Shift+Z" in opened[0]


def test_recent_menu_lists_opened_videos(window, frame_dir):
    window._fill_recent_menu()
    assert [a.text() for a in window.recent_menu.actions()] == [f"&1 {frame_dir}"]  # QA pass 93: a number to press


def test_file_dialogs_start_beside_the_open_or_last_video(qtbot, app_factory, frame_dir, monkeypatch):
    """QA pass 29: Open folder started in the program's working folder."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    started: list[str] = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda _, __, where, *a: (started.append(where),
                                                                                                ("", ""))[1]))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda _, __, where: started.append(where)
                                                                          or ""))
    monkeypatch.setattr(QMessageBox, "exec", lambda self: 0)
    window = app_factory()
    window.open_folder_dialog()
    window.controller.open(frame_dir)
    for dialog in (window.open_folder_dialog, window.open_video_dialog, window.import_masks_dialog,
                   window.import_frame_mask_dialog):
        dialog()
    window.close()
    again = app_factory()
    again.open_video_dialog()  # no video open: beside the last one
    assert started == [str(Path.home())] + [str(frame_dir.parent)] * 5


@pytest.mark.parametrize("with_video", [False, True])
def test_every_command_is_safe_with_or_without_a_video(qtbot, app_factory, frame_dir, monkeypatch, with_video):
    """Trigger every command of the table (dialogs stubbed): none may raise, with or without a video."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QColorDialog, QDialog, QFileDialog, QInputDialog

    from app.main_window import WITHOUT_VIDEO

    monkeypatch.setattr(QDialog, "exec", lambda self: 0)
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("", False)))
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor()))  # cancelled
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    window = app_factory()
    if with_video:
        window.controller.open(frame_dir)
    for command in COMMANDS:
        if command.id not in ("file.quit", "file.demo"):
            window.actions_by_id[command.id].trigger()
            QApplication.processEvents()
    window.controller.propagation.cancel_and_wait()
    window.play_timer.stop()
    assert window.isVisible()
    if not with_video:  # QA passes 92-93: on the start screen Ctrl+E did nothing visible, U said "No propagated
        for command in COMMANDS:  # frames yet"
            if command.id not in WITHOUT_VIDEO and window.actions_by_id[command.id].isEnabled():  # not undo, redo
                window.status.clearMessage()
                window.actions_by_id[command.id].trigger()
                assert window.status.currentMessage() == "Open a video first (Ctrl+O)", command.id


def test_a_long_status_note_ends_in_an_ellipsis_before_the_frame_label(qtbot, window):
    """QA passes 10 and 11: a long note was cut off at the frame label ("Propagation caFrame 1 / 50"); then it
    was elided once and never again when the room changed (a resize, the progress bar going)."""
    window.resize(1400, 500)
    window.show()
    qtbot.waitExposed(window)
    status, label = window.status, window.status.note_label
    note = "Engine settings changed: the run stopped at frame 12, press F to go on · Propagation cancelled " * 2

    def fits() -> bool:
        return label.x() + status.fontMetrics().horizontalAdvance(label.text()) <= status.frame_label.x()
    status.showMessage(note, 5000)
    qtbot.waitUntil(lambda: label.text().endswith("…") and fits())
    assert status.currentMessage() == note and label.toolTip() == note
    wide = len(label.text())
    window.resize(700, 500)
    qtbot.waitUntil(lambda: fits() and len(label.text()) < wide - 40)
    window.resize(2400, 500)
    qtbot.waitUntil(lambda: label.text() == note and label.toolTip() == "")
    status.showMessage("Saved", 5000)
    assert label.text() == "Saved" and label.toolTip() == ""


def test_at_the_minimum_width_a_run_keeps_the_status_bar_inside_the_window(qtbot, window):
    """Seen after QA pass 11: at the minimum window width a run's progress bar and Cancel button pushed the
    status bar 50-200 px past the window's right edge and left the note no room at all. The least needed
    widgets now step aside while the window is narrow, and come back when it widens."""
    from app.main_window import MIN_HEIGHT, MIN_WIDTH
    from app.views.status_bar import NOTE_MIN_WIDTH

    status = window.status
    status.device_label.setText("cpu · bf16")
    status.memory_label.setText("Memory 20 · 480 px")
    window.resize(MIN_WIDTH, MIN_HEIGHT)
    qtbot.waitUntil(lambda: window.width() == MIN_WIDTH)
    status._on_running(True)
    status.showMessage("Propagation done: 39 frames at 17.3 fps")

    def right_edge() -> int:
        return max(w.geometry().right() for w in status.findChildren(QWidget)
                   if w.isVisible() and w.parentWidget() is status)
    qtbot.waitUntil(lambda: status.width() <= window.width() and right_edge() < window.width())
    assert status.progress.isVisible() and status.cancel_button.isVisible() and status.frame_label.isVisible()
    assert status.note_label.width() >= NOTE_MIN_WIDTH - 10
    assert not status.zoom_label.isVisible()
    window.resize(1600, MIN_HEIGHT)
    qtbot.waitUntil(lambda: all(w.isVisible() for w in (status.zoom_label, status.device_label,
                                                        status.memory_label, status.gauge, status.clear_button)))
    status._on_running(False)
    qtbot.waitUntil(lambda: not status.progress.isVisible() and not status.cancel_button.isVisible())


def test_a_note_that_would_be_cut_moves_the_least_needed_figures_aside(qtbot, window):
    """QA pass 92: in a 976 px window the notes that say what to do next were cut ("press F to propag…") while
    the zoom, memory and device figures stayed."""
    from app.main_window import MIN_HEIGHT

    status = window.status
    status.device_label.setText("cpu · bf16")
    status.memory_label.setText("Memory 20 · 480 px")
    window.resize(976, MIN_HEIGHT)
    qtbot.waitUntil(lambda: window.width() == 976)
    status.showMessage("Short note")
    qtbot.waitUntil(lambda: status.zoom_label.isVisible() and status.clear_button.isVisible())
    note = "Propagation done: 39 frames at 17.5 fps after adapting to the video for 117 s · 2 frames before frame 4"
    status.showMessage(note)
    qtbot.waitUntil(lambda: status.note_label.text() == note)
    assert not status.zoom_label.isVisible() and status.frame_label.isVisible()
    status.clearMessage()
    qtbot.waitUntil(lambda: status.zoom_label.isVisible() and status.clear_button.isVisible())
    # QA pass 93: while scrubbing, the figures came and went with the frame label's " · out of date"
    def figures(label: str) -> tuple[bool, ...]:
        status.frame_label.setText(label)
        status._fit()
        return tuple(w.isVisible() for w in status._optional)
    plain, marked = "Frame 8 / 17 (00007)", "Frame 8 / 17 (00007) · preview (out of date)"
    for length in range(20, 200, 3):  # a note as long as leaves room for the figures beside the plain label only
        status.frame_label.setText(plain)
        status._on_video_opened()
        status.showMessage("x" * length)
        if figures(plain) != figures(marked):
            break
    else:
        raise AssertionError("no note length makes the frame label's width matter")
    assert len({figures(label) for label in (plain, marked, plain, marked, plain)}) == 1
def test_object_lanes_show_where_each_object_is_and_l_jumps_to_where_one_is_lost(qtbot, window):
    """A lane per object above the timeline, in its colour where it has pixels; L seeks to the frame where
    one is lost and names it."""
    from app.views.timeline import BASE_HEIGHT, LANE_PX, RESERVED_LANES

    doc = window.document
    second = doc.add_object("Second")
    labels = np.zeros((64, 96), np.uint8)
    labels[5:20, 5:20] = 1
    labels[30:50, 40:60] = second.id
    for i in range(4):
        doc.session.set_result(i, labels if i != 2 else np.where(labels == second.id, 0, labels))
    doc.resultsChanged.emit()
    timeline = window.timeline
    qtbot.waitUntil(lambda: timeline.lanes.image is not None and timeline.lanes.image.shape == (4, 2 * LANE_PX, 4))
    assert timeline.height() == BASE_HEIGHT + RESERVED_LANES * LANE_PX  # room for the first objects' lanes
    image = timeline.lanes.image  # x = frame, y = rows upward: the second object's lane is the lower one,
    lower, upper = image[:, 1:LANE_PX], image[:, LANE_PX + 1:]  # each above a clear row
    assert not image[:, [0, LANE_PX], 3].any()
    assert (upper[..., 3] > 0).all() and (upper[..., :3] == doc.objects.get(1).color).all()
    assert [bool((lower[i, :, 3] > 0).all()) for i in range(4)] == [True, True, False, True]
    key(qtbot, window, Qt.Key.Key_L)
    assert doc.current_frame == 2 and window.status.currentMessage().startswith("Second lost on frame 3")
    doc.seek(0)  # edits update the lanes, also those on a frame annotated already
    doc.erase_object_on_frame(1)
    qtbot.waitUntil(lambda: not (timeline.lanes.image[0, LANE_PX + 1:, 3] > 0).any())
    doc.erase_object_on_frame(second.id)
    qtbot.waitUntil(lambda: not (timeline.lanes.image[0, 1:LANE_PX, 3] > 0).any())
    canvas = window.canvas.height()
    for _ in range(2):  # QA pass 88: each new object's lane moved the picture up
        doc.add_object()
    qtbot.waitUntil(lambda: timeline.lanes.image.shape[1] == 4 * LANE_PX)
    assert timeline.height() == BASE_HEIGHT + RESERVED_LANES * LANE_PX and window.canvas.height() == canvas
    doc.add_object()
    qtbot.waitUntil(lambda: timeline.height() == BASE_HEIGHT + (RESERVED_LANES + 1) * LANE_PX)


def test_hovering_an_object_lane_names_its_object_and_what_it_shows(qtbot, window):
    """QA pass 102: with 22 objects a lane is 3 pixels high and nothing said which object it was."""
    from app.views.timeline import BASE_TOP

    doc = window.document
    for _ in range(21):
        doc.add_object()
    labels = np.zeros((64, 96), np.uint8)
    labels[5:20, 5:20] = 7
    doc.session.set_result(1, labels)
    doc.resultsChanged.emit()
    timeline = window.timeline
    qtbot.waitUntil(lambda: timeline.lanes.image is not None and timeline.lanes.image.shape[1] == 22 * 6)
    lanes = timeline.lanes.mapRectToView(timeline.lanes.boundingRect())
    lane = lanes.height() / 22
    seventh = lanes.bottom() - 6.5 * lane  # the middle of the seventh lane from the top
    assert timeline.lane_note(QPointF(1, seventh)) == "Object 7 (object 7) on frame 2: 225 pixels"
    assert timeline.lane_note(QPointF(1, lanes.bottom() - 0.5 * lane)) == "Object 1 (object 1) on frame 2: absent"
    assert timeline.lane_note(QPointF(3, seventh)) == "Object 7 (object 7) on frame 4: no mask yet"
    assert timeline.lane_note(QPointF(1, BASE_TOP / 2)) is None  # below the lanes: the legend
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QToolTip

    at = timeline.mapFromScene(timeline.getPlotItem().vb.mapViewToScene(QPointF(1, seventh)))
    QApplication.sendEvent(timeline.viewport(), QHelpEvent(QEvent.Type.ToolTip, at, timeline.mapToGlobal(at)))
    assert QToolTip.text() == "<p>Object 7 (object 7) on frame 2: 225 pixels</p>"
    doc.rename_object(7, "<b>bold</b> & co")  # QA pass 104: drawn bold
    QApplication.sendEvent(timeline.viewport(), QHelpEvent(QEvent.Type.ToolTip, at, timeline.mapToGlobal(at)))
    assert QToolTip.text() == "<p>&lt;b&gt;bold&lt;/b&gt; &amp; co (object 7) on frame 2: 225 pixels</p>"


@pytest.mark.parametrize("count", [3, 12, 22])
def test_the_lane_named_under_the_mouse_is_the_lane_drawn_there(qtbot, window, count):
    """QA pass 103: mapped from the pixel's corner, a third of each thin lane named the object above it."""
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QToolTip

    doc = window.document
    for i in range(1, count):
        doc.add_object()
    for i, obj in enumerate(doc.objects):
        doc.set_object_color(obj.id, (40 + 9 * i, 255 - 9 * i, 7 * i))
    labels = np.zeros((64, 96), np.uint8)
    for i, obj in enumerate(doc.objects):
        labels[i % 8 * 8:(i % 8 + 1) * 8, i // 8 * 30:i // 8 * 30 + 4] = obj.id
    doc.session.set_result(1, labels)
    doc.resultsChanged.emit()
    timeline = window.timeline
    qtbot.waitUntil(lambda: timeline.lanes.image is not None and timeline.lanes.image.shape[1] == count * 6
                    and (timeline.lanes.image[1, :, 3] > 0).sum() == count * 5)
    x = timeline.mapFromScene(timeline.getPlotItem().vb.mapViewToScene(QPointF(1, 0))).x()
    picture = timeline.viewport().grab().toImage()
    objects = list(doc.objects)
    drawn = np.array([o.color for o in objects], float) * 230 / 255 + np.array((28, 28, 32)) * 25 / 255  # alpha 230
    checked = 0
    for y in range(picture.height()):
        colour = picture.pixelColor(x, y)
        distance = np.abs(drawn - (colour.red(), colour.green(), colour.blue())).max(axis=1)
        if distance.min() > 3:  # not a lane's colour: between lanes, or below them
            continue
        obj = objects[int(distance.argmin())]
        at = QPoint(x, y)
        QApplication.sendEvent(timeline.viewport(), QHelpEvent(QEvent.Type.ToolTip, at, timeline.mapToGlobal(at)))
        assert QToolTip.text().startswith(f"<p>{obj.name} (object {obj.id}) on frame 2:"), (y, obj.id)
        checked += 1
    assert checked >= count * 2
    doc.add_object("Newest")  # until the lanes are drawn again, each is named by the object drawn there
    assert "Newest" not in (timeline.lane_note(QPointF(1, 1.25 + 0.001)) or "")


def test_keep_other_objects_paints_only_the_background(qtbot, window):
    """K (or the tool panel's box): the brush fills up to a neighbour without cutting into it; off again, it
    paints over it as before. The choice is part of the editor state the workspace keeps."""
    doc = window.document
    second = doc.add_object("Second")
    window.editor.select_object(second.id)
    window.editor.set_brush_size(9)
    stroke(qtbot, window, [(40, 30), (60, 30)])
    window.editor.select_object(1)
    key(qtbot, window, Qt.Key.Key_K)
    assert window.editor.keep_others and window.tool_panel.keep_box.isChecked()
    stroke(qtbot, window, [(30, 30), (70, 30)])
    labels = doc.session.labels(0)
    assert labels[30, 50] == second.id and labels[30, 32] == 1 and labels[30, 68] == 1
    assert window.editor.to_json()["keep_others"] is True
    window.tool_panel.keep_box.click()
    assert not window.editor.keep_others
    stroke(qtbot, window, [(30, 30), (70, 30)])
    assert doc.session.labels(0)[30, 50] == 1


def test_remove_asks_with_a_long_name_cut_short_and_removes_the_object(qtbot, window, dialogs):
    """QA pass 16: a 500-character name (pasted by mistake) stretched the question far off the screen."""
    doc = window.document
    obj = doc.add_object()
    window.editor.select_object(obj.id)
    window.objects_panel.list.item(1).setText("pasted " * 80)
    window.objects_panel.remove_button.click()
    title, text = dialogs[-1]
    assert title == "Remove object" and len(text) < 120 and "pasted pasted" in text and "…" in text
    assert obj.id not in doc.objects


def test_objects_are_renamed_recoloured_and_removed_from_the_keyboard(qtbot, window, dialogs, monkeypatch):
    """QA pass 48: rename, colour and remove took the mouse (a double-click, a button), with no menu entry and
    no key to rebind."""
    from PySide6.QtGui import QColor
    from PySide6.QtWidgets import QColorDialog, QLineEdit

    doc = window.document
    obj = doc.add_object()
    window.editor.select_object(obj.id)
    key(qtbot, window, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit) and editor.text() == obj.name
    editor.selectAll()
    qtbot.keyClicks(editor, "Fence")
    qtbot.keyClick(editor, Qt.Key.Key_F2)  # QA pass 51: F2 again raised on the list item the commit deleted
    assert QApplication.focusWidget() is editor
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: doc.objects.get(obj.id).name == "Fence", timeout=2000)
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a, **k: QColor(1, 2, 3)))
    window.canvas.setFocus()
    key(qtbot, window, Qt.Key.Key_C)
    assert doc.objects.get(obj.id).color == (1, 2, 3)
    doc.seek(2)
    window.editor.select_object(obj.id)
    stroke(qtbot, window, [(40, 30), (50, 30)])  # frame 3 holds nothing painted but the object
    key(qtbot, window, Qt.Key.Key_Delete, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert dialogs[-1][0] == "Remove object" and "Fence" in dialogs[-1][1] and obj.id not in doc.objects
    assert dialogs[-1][1].endswith("Frame 3 then holds nothing else painted: it becomes an ordinary frame, which "
                                   "propagation fills.")
    menu = next(m for m in window.menuBar().findChildren(type(window.menuBar().actions()[0].menu()))
                if m.title() == "&Objects")
    assert {"Rename selected object…", "Colour of selected object…"} <= {a.text().replace("&", "")
                                                                          for a in menu.actions()}
    assert "(C)" in window.objects_panel.color_button.toolTip()


def test_an_undo_that_changes_a_hidden_object_shows_it_again(qtbot, window):
    """QA pass 48: N, paint, H, Ctrl+Z took pixels from the hidden object's mask, with nothing to see or say."""
    doc = window.document
    obj = doc.add_object()
    window.editor.select_object(obj.id)
    window.editor.set_brush_size(9)
    stroke(qtbot, window, [(20, 20), (40, 20)])
    key(qtbot, window, Qt.Key.Key_H)
    assert not doc.objects.get(obj.id).visible
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.objects.get(obj.id).visible and not doc.is_annotated(0)
    assert "was hidden: it is shown again" in window.statusBar().currentMessage()
    key(qtbot, window, Qt.Key.Key_H)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert doc.objects.get(obj.id).visible and (doc.session.labels(0) == obj.id).any()
    assert "was hidden: it is shown again" in window.statusBar().currentMessage()


def test_the_timeline_and_adaptation_tooltips_name_the_users_keys(window):
    """QA pass 107: they said U, L and Esc after the keys were changed."""
    from app.shortcuts import keymap

    keys = dict(keymap(), **{"frame.uncertain": ("J",), "frame.lost": ("Y",), "propagate.cancel": ("X",)})
    window.set_keys(keys)
    assert "J jumps to the worst" in window.timeline.toolTip() and "Y jumps to the next frame" in \
        window.timeline.toolTip()
    window.status._on_adapting(1, 10)
    assert window.status.progress.toolTip().endswith("X stops.")


def test_a_long_frame_name_is_shortened_in_the_status_bar(app_factory, tmp_path):
    """QA pass 107: a 183-character file name filled the status bar, and the notes were gone."""
    from .conftest import make_frames

    clip = make_frames(tmp_path / "clip", count=2)
    long = "A_really_long_descriptive_camera_file_name_" * 4 + "frame_0"
    (clip / "00000.png").rename(clip / f"{long}.png")
    window = app_factory()
    window.controller.open(clip)
    window.document.seek(1)  # the long name sorts after 00001
    assert window.status.frame_label.text() == f"Frame 2 / 2 ({long[:13]}…{long[-14:]})"
    assert window.status.frame_label.toolTip() == long
    window.document.seek(0)
    assert window.status.frame_label.text() == "Frame 1 / 2 (00001)" and window.status.frame_label.toolTip() == ""


def test_the_key_of_a_removed_object_names_the_number_a_new_one_takes(window):
    """QA pass 102: "There is no object 2; press N to add one", but N added object 3: removed ids are retired."""
    doc = window.document
    doc.add_object()
    doc.remove_object(1)
    window.controller.select_object(1)
    assert window.statusBar().currentMessage() == "There is no object 1; press N to add a new one (number 3)."
    doc.add_object()
    assert [o.id for o in doc.objects] == [2, 3]


def test_shortcuts_are_changed_with_real_key_presses_clashes_refused_and_remembered(qtbot, app_factory, frame_dir,
                                                                                    monkeypatch):
    """The gui-anchors' gap 11: rebindable shortcuts (other keyboard layouts, habits from other tools)."""
    from app.shortcuts import keymap
    from app.views.shortcuts_dialog import ShortcutsDialog
    from PySide6.QtWidgets import QDialogButtonBox

    window = app_factory()
    assert window.controller.open(frame_dir)
    dialog = ShortcutsDialog(window.keys, window)
    qtbot.addWidget(dialog)
    dialog.show()
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    next_key, first_alternative = dialog._editors["frame.next"][0], dialog._editors["frame.first"][1]
    next_key.setFocus()
    qtbot.keyClick(next_key, Qt.Key.Key_F)  # propagate forward's: Qt would run neither
    assert dialog.problems.text() == "F is bound to Next frame and to Propagate forward from this frame"
    assert not ok.isEnabled()
    qtbot.keyClick(next_key, Qt.Key.Key_D)
    first_alternative.setFocus()
    qtbot.keyClick(first_alternative, Qt.Key.Key_Space)
    assert "Space plays (a tap) and pans (a hold) everywhere" in dialog.problems.text() and not ok.isEnabled()
    first_alternative.clear()
    brush = dialog._editors["tool.brush"][0]
    brush.setFocus()
    qtbot.keyClick(brush, Qt.Key.Key_P)
    assert dialog.problems.text() == "" and ok.isEnabled()
    window.set_keys(dialog.keys())
    assert window.tool_panel.brush_button.text() == "Brush (P)"  # labels and notes name the user's keys
    window.controller.select_object(40)
    free = window.document.objects.free_id()
    assert window.statusBar().currentMessage() == f"There is no object 40; press N to add a new one (number {free})."
    window.canvas.setFocus()
    key(qtbot, window, Qt.Key.Key_D)
    assert window.document.current_frame == 1
    key(qtbot, window, Qt.Key.Key_Right)  # its old key is free now
    assert window.document.current_frame == 1
    assert "D" in shortcuts_html(window.keys).split("Next frame")[0].rsplit("<tr>", 1)[1]
    other = app_factory()  # remembered, as every setting
    assert other.keys["frame.next"] == ("D",) and other.keys["frame.prev"] == ("Left",)
    assert window.objects_panel.list.item(0).toolTip().split("\n")[1].startswith("Object 1 (key 1)")
    assert window.objects_panel.keys_label.text() == "Keys 1–9 select · N adds · H hides · F2 or double-click renames"
    window.set_keys(dict(window.keys, **{"object.add": ("J",)}))
    assert "· J adds ·" in window.objects_panel.keys_label.text()
    opened = []  # QA pass 19: a window opened before the change wrote its older keys back over it
    monkeypatch.setattr(ShortcutsDialog, "exec", lambda self: opened.append(self.keys()) or True)
    first = app_factory()
    first.set_keys(keymap())
    window.set_keys(dict(keymap(), **{"frame.next": ("D",)}))
    first.shortcuts_dialog()
    assert opened[-1]["frame.next"] == ("D",) and first.keys["frame.next"] == ("D",)
    dialog.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).click()
    assert dialog.keys()["frame.next"] == ("Right",)
    other.set_keys(dialog.keys())
    assert app_factory().keys == keymap()  # nothing but the table's keys is stored


def test_a_note_from_before_a_run_is_not_glued_to_how_it_ended(qtbot, window):
    """QA pass 17: "…press F to go on · Propagation done" after F had been pressed."""
    stroke(qtbot, window, [(20, 30)])
    window.controller.message.emit("The propagation was stopped: press F to go on")
    with qtbot.waitSignal(window.controller.propagation.runningChanged, timeout=60_000,
                          check_params_cb=lambda running: not running):
        key(qtbot, window, Qt.Key.Key_F)
    assert window.statusBar().currentMessage().startswith("Propagation done")


def test_many_wheel_notches_keep_the_point_under_the_cursor(qtbot, app_factory, tmp_path):
    """QA pass 17: 25 notches up to 40x moved the frame point under a still cursor by 10 and 26 screen px
    (each notch's correction was rounded to whole pixels, and the roundings added up)."""
    from .conftest import make_frames

    window = app_factory()
    window.resize(1200, 800)
    assert window.controller.open(make_frames(tmp_path / "wide", size=(480, 854)))
    QApplication.processEvents()
    canvas = window.canvas
    anchor = QPoint(413, 297)
    under = canvas.viewportTransform().inverted()[0].map(QPointF(anchor))
    for delta in [120] * 25 + [15] * 40 + [-120] * 5:
        QApplication.sendEvent(canvas.viewport(), QWheelEvent(
            QPointF(anchor), QPointF(canvas.viewport().mapToGlobal(anchor)), QPoint(0, 0), QPoint(0, delta),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))
    now = canvas.viewportTransform().map(under)
    assert canvas.zoom > 10 and abs(now.x() - anchor.x()) <= 1 and abs(now.y() - anchor.y()) <= 1


def test_a_far_jump_into_a_long_gop_video_is_decoded_off_the_gui_thread(qtbot, app_factory, tmp_path):
    """QA pass 31: a jump far into a long-GOP video decoded up to a whole GOP on the GUI thread, 1-4 s frozen at
    1080p. The picture shown stays, dimmed, while the frame is decoded on a thread of its own; strokes wait; the
    new frame's mask is not drawn over the old picture (QA pass 34)."""
    import threading

    import qimage2ndarray

    from stm_core.io.frames import VideoFrames

    from .test_io_frames import _write_video

    path = tmp_path / "clip.mp4"
    _write_video(path, 60, gop=60, h=64, w=96)
    expected = VideoFrames(path)[55].copy()
    window = app_factory()
    assert window.controller.open(path)
    doc, canvas = window.document, window.canvas
    session = doc.session
    release = threading.Event()
    read = session.frame

    def slow(index: int) -> np.ndarray:
        assert threading.current_thread() is not threading.main_thread(), "decoded on the GUI thread"
        release.wait(10)
        return read(index)
    session.frame = slow

    window.editor.set_brush_size(5)
    labels = np.zeros((64, 96), np.uint8)
    labels[10:30, 10:40] = 1
    session.set_result(55, labels)
    doc.note_result(55, doc.annotation_key())
    doc.seek(55)
    assert doc.picture_pending and "decoding" in window.status.frame_label.text()
    assert not canvas._overlay.buffer[..., 3].any()  # frame 0's mask (none) stays with frame 0's picture
    stroke(qtbot, window, [(20, 30), (35, 30)])
    assert not doc.is_annotated(55)  # no stroke on the picture of another frame
    window.actions_by_id["edit.clear_object"].trigger()  # nor an edit (QA pass 36: Ctrl+Z undid it unseen)
    assert "still being decoded" in window.status.currentMessage() and session.labels(55)[20, 20] == 1
    qtbot.waitUntil(lambda: canvas._frame_item.opacity() < 1.0)  # dimmed while it takes long, without a mask
    assert not canvas._overlay.isVisible() and not canvas._overlay.buffer[..., 3].any()
    release.set()
    qtbot.waitUntil(lambda: not doc.picture_pending)
    assert canvas._overlay.isVisible() and canvas._overlay.buffer[20, 20, 3] and not canvas._overlay.buffer[50, 50, 3]
    image = canvas._frame_item.pixmap().toImage().convertToFormat(QImage.Format.Format_RGB32)
    shown = qimage2ndarray.rgb_view(image)  # a view: `image` must live on
    assert np.array_equal(shown, expected) and canvas._frame_item.opacity() == 1.0
    assert "decoding" not in window.status.frame_label.text()
    session.frame = read
    doc.seek(56)  # the next frame is read at once, on the GUI thread
    assert not doc.picture_pending
    stroke(qtbot, window, [(20, 30), (35, 30)])
    assert doc.is_annotated(56)


@pytest.mark.parametrize("key,closes", [(Qt.Key.Key_Escape, "rejected"), (Qt.Key.Key_Return, "accepted"),
                                         (Qt.Key.Key_Enter, "accepted")])
def test_esc_and_enter_in_a_key_field_close_the_shortcuts_dialog(qtbot, window, key, closes):
    """QA pass 39: Esc and Return were recorded as the field's key; the dialog could only be left by tabbing
    through some 100 fields."""
    from app.views.shortcuts_dialog import ShortcutsDialog

    dialog = ShortcutsDialog(window.keys, window)
    qtbot.addWidget(dialog)
    dialog.show()
    field = dialog._editors["file.open_video"][1]
    field.setFocus()
    with qtbot.waitSignal(getattr(dialog, closes), timeout=5_000):
        qtbot.keyClick(field, key)
    assert field.keySequence().isEmpty()  # the open-video command has no alternative key, and still has none


def test_windows_and_dialogs_fit_a_small_screen(qtbot, monkeypatch, tmp_path):
    """QA pass 39: on a 1366x768 screen at 150% scaling (910x512 free for windows) the main window opened at
    1400x900 with a minimum height of 560, the status bar and timeline off-screen, and the shortcut dialogs'
    buttons below the screen's edge."""
    from PySide6.QtCore import QRect

    from app.views.help_dialog import HelpDialog
    from app.views.screen_fit import DECORATION
    from app.views.shortcuts_dialog import ShortcutsDialog

    class Laptop:
        def availableGeometry(self) -> QRect:  # noqa: N802
            return QRect(0, 0, 910, 512)
    monkeypatch.setattr(QWidget, "screen", lambda self: Laptop())
    from PySide6.QtCore import QSettings

    from app.controller import AppController
    from app.main_window import MainWindow
    from app.settings import AppSettings

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(AppController(AppSettings(store), tmp_path / "data"))  # as built, not resized as in tests
    qtbot.addWidget(window)
    most = (910 - DECORATION, 512 - DECORATION)
    assert (window.width(), window.height()) <= most and window.height() == most[1]
    assert window.minimumHeight() <= most[1] and window.minimumWidth() <= most[0]
    for dialog in (HelpDialog(window.keys, window), ShortcutsDialog(window.keys, window)):
        assert dialog.width() <= most[0] and dialog.height() <= most[1]


def test_reviewing_stops_playback_and_says_where_it_went(qtbot, window, monkeypatch):
    """QA pass 54: a stroke begun while playing left one dab on the frame it began on, annotated, the drag lost;
    arrow keys left playback running; U went round its ranking, or stayed on its only frame, without a word;
    a propagated frame alone between annotated frames had no mark on the uncertainty curve."""
    doc = window.document
    unc = np.array([np.nan, 0.4, np.nan, 0.9])
    monkeypatch.setattr(doc, "uncertainty", lambda: unc.copy())
    window.timeline.refresh()
    assert window.timeline._lone.data["x"].tolist() == [1.0, 3.0]  # neither has a neighbour to draw a line to
    for expected in ("Frame 4: 1st most uncertain of 2", "Frame 2: 2nd most uncertain of 2",
                     "Frame 4: 1st most uncertain of 2"):
        key(qtbot, window, Qt.Key.Key_U)
        assert window.status.currentMessage().startswith(expected)
    doc.seek(0)
    window.toggle_play()
    assert window.play_timer.isActive()
    key(qtbot, window, Qt.Key.Key_Right)
    assert not window.play_timer.isActive() and doc.current_frame == 1
    window.toggle_play()
    stroke(qtbot, window, [(20, 20), (40, 20)])
    assert not window.play_timer.isActive() and doc.is_annotated(doc.current_frame)
    assert doc.session.labels(doc.current_frame)[20, 20:41].all()  # the whole drag, on the frame it began on


def test_an_object_not_yet_sought_past_a_correction_is_not_called_lost(qtbot, window):
    """QA pass 54: an object painted after a run was "lost" on the next frame, out of date, where no run had
    sought it."""
    doc = window.document
    window.editor.set_brush_size(9)
    stroke(qtbot, window, [(20, 20), (30, 20)])
    with qtbot.waitSignal(window.controller.propagation.finished, timeout=60_000):
        window.controller.propagation.start("forward")
    doc.seek(1)
    window.editor.select_object(doc.add_object().id)
    stroke(qtbot, window, [(60, 40), (70, 40)])
    assert doc.stale_frames()[2:].all() and (doc.object_areas()[2:, 1] == 0).all()
    doc.seek(0)
    key(qtbot, window, Qt.Key.Key_L)
    assert "lost" in window.status.currentMessage() and "Object 2" not in window.status.currentMessage()


def test_a_key_the_user_took_is_not_also_a_new_commands_default(tmp_path):
    """Session 22: a user who had bound C (or F2) to a command of theirs got C as the new colour command's
    default as well; the clash made the app drop all their keys for the table's."""
    from PySide6.QtCore import QSettings

    from app.settings import AppSettings
    from app.shortcuts import clashes, keymap

    settings = AppSettings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    settings.set_keymap({**keymap(), "frame.next": ("C",), "frame.prev": ("F2",), "tool.brush": ("P",)})
    keys = settings.keymap()
    assert keys["frame.next"] == ("C",) and keys["frame.prev"] == ("F2",) and keys["tool.brush"] == ("P",)
    assert keys["object.recolour"] == () and keys["object.rename"] == () and not clashes(keys)


def test_adaptation_progress_says_the_time_left(window, monkeypatch):
    """QA pass 72: "Adapting to this video 2/60" for a minute said neither what it was nor how long it takes."""
    from app.views import status_bar

    clock = iter([100.0, 130.0, 131.0])
    monkeypatch.setattr(status_bar.time, "monotonic", lambda: next(clock))
    status = window.status
    status._on_adapting(0, 60)
    assert status.progress.format() == "Adapting %v/%m"
    status._on_adapting(10, 60)  # 3 s a step: 50 steps left
    assert status.progress.format() == "Adapting %v/%m · 2 min left"
    status._on_adapting(59, 60)
    assert status.progress.format().endswith("· 1 s left") and "fine-tuning" in status.progress.toolTip()


def test_a_long_object_name_ends_in_an_ellipsis_and_its_tip_gives_it_whole(qtbot, window):
    """QA pass 92: long names ran past the panel's edge under a scroll bar, cut mid-word."""
    name = "A rider on a brown horse jumping over the red and white fence in the middle of the field"
    window.document.rename_object(1, name)
    panel = window.objects_panel.list
    qtbot.waitUntil(lambda: panel.item(0).text() == name)
    panel.doItemsLayout()
    assert panel.visualItemRect(panel.item(0)).width() <= panel.viewport().width()
    assert panel.horizontalScrollBar().maximum() == 0 and panel.item(0).toolTip().startswith(name + "\n")
