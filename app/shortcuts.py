"""The one table of commands and their keys, and the user's own keys over it.

Menus, window shortcuts and the F1 help dialog are all generated from `COMMANDS` and the key map the user
made of it (`keymap`), so a key can never be bound in one place and documented differently in another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PySide6.QtGui import QKeySequence


@dataclass(frozen=True)
class Command:
    """One user command: a stable id the window binds a handler to, its keys and how it is described."""

    id: str
    text: str
    keys: tuple[str, ...] = ()
    group: str = "General"


def _objects() -> tuple[Command, ...]:
    return tuple(Command(f"object.select.{n}", f"Select object {n}", (str(n),), "Objects") for n in range(1, 10))


COMMANDS: tuple[Command, ...] = (
    Command("file.open_video", "Open video…", ("Ctrl+O",), "File"),
    Command("file.open_folder", "Open frame folder…", ("Ctrl+Shift+O",), "File"),
    Command("file.demo", "Open demo clip", (), "File"),
    Command("file.import_masks", "Import masks from folder…", ("Ctrl+I",), "File"),
    Command("file.import_frame_mask", "Import mask for this frame…", ("Ctrl+Shift+I",), "File"),
    Command("file.save", "Save workspace now", ("Ctrl+S",), "File"),
    Command("file.export", "Export…", ("Ctrl+E",), "File"),
    Command("file.settings", "Settings…", ("Ctrl+,",), "File"),
    Command("file.quit", "Quit", ("Ctrl+Q",), "File"),
    Command("edit.undo", "Undo stroke on this frame", ("Ctrl+Z",), "Edit"),
    Command("edit.redo", "Redo stroke on this frame", ("Ctrl+Shift+Z", "Ctrl+Y"), "Edit"),
    Command("edit.clear_object", "Erase selected object on this frame", ("Delete",), "Edit"),
    Command("edit.clear_annotation", "Clear this frame's annotation (propagate over it again)", ("Shift+Delete",),
            "Edit"),
    Command("frame.prev", "Previous frame", ("Left",), "Navigate"),
    Command("frame.next", "Next frame", ("Right",), "Navigate"),
    Command("frame.back10", "Back 10 frames", ("Shift+Left",), "Navigate"),
    Command("frame.forward10", "Forward 10 frames", ("Shift+Right",), "Navigate"),
    Command("frame.first", "First frame", ("Home",), "Navigate"),
    Command("frame.last", "Last frame", ("End",), "Navigate"),
    Command("frame.goto", "Go to frame…", ("Ctrl+G",), "Navigate"),
    Command("frame.prev_annotated", "Previous annotated frame", ("Alt+Left", "PgUp"), "Navigate"),
    Command("frame.next_annotated", "Next annotated frame", ("Alt+Right", "PgDown"), "Navigate"),
    Command("frame.uncertain", "Next most uncertain frame", ("U",), "Navigate"),
    Command("frame.lost", "Next frame where an object is lost", ("L",), "Navigate"),
    Command("frame.play", "Play / pause", ("Space",), "Navigate"),
    Command("tool.brush", "Brush", ("B",), "Paint"),
    Command("tool.eraser", "Eraser (right-drag erases too)", ("E",), "Paint"),
    Command("tool.smaller", "Smaller brush", ("[",), "Paint"),
    Command("tool.larger", "Larger brush", ("]",), "Paint"),
    Command("tool.keep_others", "Brush keeps other objects (paints only background and the selected object) "
            "on / off", ("K",), "Paint"),
    Command("object.add", "Add object", ("N",), "Objects"),
    *_objects(),
    Command("object.toggle_visible", "Hide / show selected object", ("H",), "Objects"),
    Command("object.rename", "Rename selected object…", ("F2",), "Objects"),
    Command("object.recolour", "Colour of selected object…", ("C",), "Objects"),
    # not Ctrl+Delete: text fields delete a word with it, and Qt gave it to the window (QA pass 50)
    Command("object.remove", "Remove selected object from every frame…", ("Ctrl+Shift+Delete",), "Objects"),
    Command("view.overlay_mode", "Cycle overlay: filled / contours / probability", ("O",), "View"),
    Command("view.fit", "Fit to window", ("Ctrl+0",), "View"),
    Command("view.zoom_in", "Zoom in (or mouse wheel)", ("Ctrl+=", "Ctrl++"), "View"),
    Command("view.zoom_out", "Zoom out (or mouse wheel)", ("Ctrl+-",), "View"),
    Command("propagate.forward", "Propagate forward from this frame", ("F",), "Propagate"),
    Command("propagate.backward", "Propagate backward from this frame", ("Shift+F",), "Propagate"),
    Command("propagate.both", "Propagate both ways from this frame", ("Ctrl+F",), "Propagate"),
    Command("propagate.all", "Propagate every frame without an up-to-date mask", ("Ctrl+Shift+F",), "Propagate"),
    Command("propagate.cancel", "Cancel propagation", ("Esc",), "Propagate"),
    Command("memory.clear", "Clear engine memory (keeps all masks)", (), "Propagate"),
    Command("help.shortcuts", "Keyboard shortcuts", ("F1",), "Help"),
    Command("help.edit_shortcuts", "Change keyboard shortcuts…", (), "Help"),
)

TEXT = {c.id: c.text for c in COMMANDS}
"""Each command's text, as menus show it."""

KeyMap = dict[str, tuple[str, ...]]
"""Command id -> its keys, in Qt's portable spelling ("Ctrl+Shift+Z")."""

RESERVED = {"Space": "frame.play"}
"""Keys taken before any shortcut sees them (a Space tap plays, a hold pans: views/space_key.py), and the one
command they may stay bound to."""

MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Left drag", "Paint with the current tool"),
    ("Right drag", "Erase the selected object"),
    ("Shift + click", "Straight line from the last painted point"),
    ("Wheel", "Zoom around the cursor"),
    ("Ctrl + wheel", "Brush size"),
    ("Middle drag or Space + drag", "Pan"),
    ("Click or drag on the timeline", "Seek"),
)


def keymap(chosen: Mapping[str, Sequence[str]] | None = None) -> KeyMap:
    """Every command's keys: those the user chose for it (`chosen`, as stored), else the table's. Entries
    that name no command of the table or hold no key Qt can read are left out (a stored file from another
    version, a hand edit)."""
    keys = {c.id: c.keys for c in COMMANDS}
    mine = set()
    for command_id, chosen_keys in (chosen or {}).items():
        if command_id in keys and isinstance(chosen_keys, (list, tuple)) \
                and all(isinstance(k, str) and same_key(k) for k in chosen_keys):
            keys[command_id] = tuple(chosen_keys)
            mine.add(command_id)
    # a key the user gave a command is not also a table default of another, such as a later version's new
    # command (QA session 22: C, then bound by a user to a command of theirs, clashed and reset all their keys)
    taken = {same_key(k) for command_id in mine for k in keys[command_id]}
    return {c: k if c in mine else tuple(x for x in k if same_key(x) not in taken) for c, k in keys.items()}


def same_key(key: str) -> str:
    """One spelling per key ("ctrl+z" is "Ctrl+Z", "Delete" is "Del"); "" for text that is no key."""
    sequence = QKeySequence(key)
    return sequence.toString(QKeySequence.SequenceFormat.PortableText) if 0 < sequence.count() <= 1 else ""


def key_text(key: str) -> str:
    """A key as the menus show it ("Delete" is "Del" there), so help, notes and menus spell it alike (QA 107)."""
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText) or key


def clashes(keys: KeyMap) -> list[str]:
    """What is wrong with a key map, one line each: a key bound to two commands (Qt would run neither) or a
    reserved key bound to another command than its own."""
    users: dict[str, list[str]] = {}
    for command_id, command_keys in keys.items():
        for key in command_keys:
            ids = users.setdefault(same_key(key), [])
            ids += [] if command_id in ids else [command_id]
    reserved = {same_key(k) for k in RESERVED}
    problems = [f"{key} is bound to {' and to '.join(TEXT[c] for c in ids)}"
                for key, ids in users.items() if len(ids) > 1 and key not in reserved]
    problems += [f"{key} plays (a tap) and pans (a hold) everywhere: it cannot be bound to {TEXT[c]}"
                 for key, own in RESERVED.items() for c in users.get(same_key(key), []) if c != own]
    return problems


def hint(keys: KeyMap, command_id: str) -> str:
    """The key to name in a note or label ("F"), else (no key bound) the command as its menu names it."""
    own = keys.get(command_id, ())
    return key_text(own[0]) if own else f"“{TEXT[command_id]}”"


def groups(keys: KeyMap | None = None) -> dict[str, list[tuple[Command, tuple[str, ...]]]]:
    """Commands with their keys (`keys`, else the table's) by help-dialog section, keeping table order; only
    commands that have keys."""
    keys = keys or keymap()
    out: dict[str, list[tuple[Command, tuple[str, ...]]]] = {}
    for command in COMMANDS:
        if keys[command.id]:
            out.setdefault(command.group, []).append((command, keys[command.id]))
    return out
