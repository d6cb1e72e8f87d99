"""Reading a video's saved workspace back: its annotated frames, objects waiting to enter and the network's
adaptation go into the engine's session; the objects, the frame shown, the saved results still to read and what
they were computed from go to the document (`Restored`). The controller decides when; this module knows how.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from stm_core.errors import InputError
from stm_core.session import AnnotationSession

from .objects import ObjectTable
from .video_identity import thumbnail_at, thumbnail_of
from .wording import frame_numbers
from .workspace import DamagedState, NewerWorkspace, Workspace, saved
from .workspace_places import same_first_pictures

Report = Callable[[str, str], None]
"""Tells the user (title, message) what could not be restored, and what was done with it."""


@dataclass
class Restored:
    """What a workspace gave back besides the session's annotations: the objects, the frame to show, the frames
    whose saved results are still to read (on a worker thread), what their results were computed from, their
    saved uncertainty, the objects removed that masks may still hold (see `Autosaver._on_objects`), the
    editor's state (None: nothing was saved, or the workspace was set aside), and the frames whose saved
    annotation or waiting objects held a removed object's pixels, left out: to be saved again without them."""

    objects: ObjectTable = field(default_factory=ObjectTable)
    frame: int = 0
    deferred: list[int] = field(default_factory=list)
    keys: SavedKeys = field(default_factory=lambda: SavedKeys())
    uncertainty: dict[int, float] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)
    editor: dict | None = None
    cleaned: list[int] = field(default_factory=list)


def restore_workspace(workspace: Workspace, session: AnnotationSession, report: Report) -> Restored:
    """Load a saved workspace's annotated frames (and objects waiting to enter, and the network's adaptation)
    into `session` and return what the document needs for the rest. A damaged or foreign workspace is moved
    aside; what went wrong is told to `report`, and each damaged file costs only itself."""
    names, size = session.frame_names, session.frame_size
    workspace.remove_leftovers()
    salvaged = False
    try:
        try:
            state = workspace.read_state()
        except DamagedState as exc:  # QA pass 32: the masks went aside with it, unused
            if not workspace.belongs_to(names, size):
                raise InputError(f"{exc}, and the masks beside it are of other frames") from None
            if (kept := workspace.keep_damaged_state()) is None:
                raise
            report("Workspace state damaged", f"{exc}.\n\nIt was kept as {kept}. The annotated frames and results "
                   "saved beside it are restored; the object names and colours were in it, and which results "
                   "were out of date, so every result is marked out of date.")
            state, salvaged = {}, True
        if state is not None and not workspace.matches(state, names, size) and not salvaged:
            folder = session.source_path.is_dir()
            changed = workspace.frames_changed(state, names, size) \
                if folder or _completed_since(state, session) else None
            if changed is None:
                raise InputError(f"the saved workspace {workspace.root} belongs to other frames")
            then, gone = saved(state, "num_frames", int, 0), changed[1]
            report("Frames changed", f"{session.source_path.name} has {len(names)} frames now, {then} when its "
                   f"work was saved. Its work is restored by frame {'name' if folder else 'number'}, every "
                   "propagated result marked out of date: propagate again." +
                   (f" {gone} annotated frame{'s were' if gone > 1 else ' was'} deleted: the masks stay in the "
                    "workspace, and come back with the frames." if gone else ""))
            salvaged = True
    except NewerWorkspace:
        raise  # the open fails, the workspace untouched
    except InputError as exc:
        done = workspace.set_aside()
        report("Workspace not restored", f"{exc}.\n\n{done}; starting afresh.{_how_to_take_back(workspace, size)}")
        return Restored()
    if state is None:
        return Restored()
    workspace.adopt_listed(state)  # from here on each saved value is checked: a wrong one costs only itself
    objects = ObjectTable.from_json(state.get("objects"))
    removed = {int(o) for o in saved(state, "removed_objects", list, [])
               if isinstance(o, int) and 0 < o < 255 and objects.get(o) is None}
    objects.retire(removed)
    annotated = set(workspace.saved_frames(names, "annotation"))  # after a kill it wins over the rest

    def restore_annotation(index: int) -> bool:
        """Whether the saved annotation held a removed object's pixels."""
        if (labels := workspace.read_frame_mask(names[index], size, "annotation")) is None:
            return False
        kept = without(labels, removed)
        session.set_annotation(index, kept)
        return kept is not labels
    # on every core: PNG decoding and packing let go of the GIL (QA pass 31: 300 annotated 1080p frames
    # took 4 s one after another, the window frozen)
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        order = sorted(annotated)
        cleaned = [i for i, held in zip(order, pool.map(restore_annotation, order)) if held]
    index_of = {name: i for i, name in enumerate(names)}
    for name, ids in saved(state, "entered", dict, {}).items():
        if index_of.get(name) in annotated and isinstance(ids, list):
            session.note_entered(index_of[name], [o for o in ids if isinstance(o, int) and 0 < o < 255])
    for index in set(workspace.saved_frames(names, "entering")) - annotated:  # before results: they wait
        if (labels := workspace.read_frame_mask(names[index], size, "entering")) is not None:
            if (kept := without(labels, removed)) is not labels:
                cleaned.append(index)
            if kept.any():
                session.add_entering(index, kept)
    _report_damaged(workspace, names, report)
    if (adaptation := workspace.read_adaptation()) is not None:  # the engine takes it where it fits
        session.restore_adaptation(adaptation)
    deferred = workspace.saved_frames(names, "result")  # under an annotation too: shown once it is cleared
    keys = SavedKeys(stale=deferred) if salvaged else SavedKeys.from_state(state, index_of)
    uncertainty = {index_of[n]: float(u) for n, u in saved(state, "uncertainty", dict, {}).items()
                   if n in index_of and isinstance(u, float | int) and abs(u) < 1e300}  # a 400-digit int
    frame = saved(state, "current_frame", int, 0)
    return Restored(objects, frame if 0 <= frame < len(names) else 0, deferred, keys, uncertainty, removed,
                    saved(state, "editor", dict, {}), sorted(cleaned))


def _how_to_take_back(workspace: Workspace, size: tuple[int, int]) -> str:
    """Where the annotated frames of work set aside are, and how to import them (QA pass 101), or that they must
    be scaled first where they are of another size (QA pass 104: the import the note advised was refused)."""
    folder = workspace.aside / "annotations" if workspace.aside is not None else None
    first = next(iter(sorted(folder.glob("*.png"))), None) if folder is not None else None
    if first is None:
        return ""
    try:
        with Image.open(first) as im:
            w, h = im.size
    except (OSError, UnidentifiedImageError):
        w, h = size[1], size[0]  # a damaged file: the import says so
    if (h, w) != tuple(size):
        return f" Its annotated frames are the masks in {folder}, at {w}x{h}: scaled to {size[1]}x{size[0]}, " \
               "Import masks from folder (File menu) takes them back."
    return f" Its annotated frames are the masks in {folder}: Import masks from folder (File menu) takes them back."


def _completed_since(state: dict, session: AnnotationSession) -> bool:
    """Whether a video file that has more frames now is the recording the state was saved for, opened cut short
    then (an interrupted download, then the whole file: QA pass 101): its first pictures look alike. Not one with
    fewer: a video re-encoded without its first frames has every frame's number shifted, also where its first
    picture looks the same (QA pass 42: a still start)."""
    first = thumbnail_at(session, 0)
    return saved(state, "num_frames", int, 0) < session.num_frames and first is not None \
        and same_first_pictures(state, first, lambda name: thumbnail_of(session, name))


def _report_damaged(workspace: Workspace, names: list[str], report: Report) -> None:
    """Name the saved annotations (and objects waiting to enter) that could not be read, whose frames open
    without them, and where the files were kept."""
    if not workspace.damaged:
        return
    index_of = {name: i for i, name in enumerate(names)}
    parts, count = [], 0
    for kind, what in (("annotation", "the saved annotation of"), ("entering", "the imported objects waiting "
                                                                            "to enter on")):
        frames = sorted({index_of[name] for k, name, _, _ in workspace.damaged if k == kind})
        if frames:
            count += len(frames)
            parts.append(f"{what} frame{'s' if len(frames) > 1 else ''} {frame_numbers(frames)}")
    folders = sorted({str(kept.parent) for _, _, kept, _ in workspace.damaged})
    kept, why = workspace.damaged[0][2], workspace.damaged[0][3]
    several = count > 1
    text = " and ".join(parts)
    report("Saved annotations damaged",
           f"{text[0].upper()}{text[1:]} could not be read ({why}"
           f"{'; and so on' if len(workspace.damaged) > 1 else ''}), so "
           f"{'those frames open' if several else 'that frame opens'} without "
           f"{'them' if several else 'it'}: paint or import {'them' if several else 'it'} again. The "
           f"damaged file{'s were' if several else ' was'} kept beside the others (as {kept.name}"
           f"{' and so on' if several else ''}) in {' and '.join(folders)}.")
    workspace.damaged.clear()


@dataclass(frozen=True)
class SavedKeys:
    """What the saved results were computed from: the annotations `judged` identifies (None: the present
    ones), those `older` maps each frame to, or unknown ones on `stale` frames (state files before
    `result_keys`). A kill between an annotation's mask file and the state file leaves `judged` other than
    the present annotations' key, so those results come back out of date."""

    judged: bytes | None = None
    older: dict[int, bytes] = field(default_factory=dict)
    stale: list[int] = field(default_factory=list)
    out_of_date: list[int] | None = None  # the frames shown out of date when saved (None: not saved)

    @staticmethod
    def from_state(state: dict, index_of: dict[str, int]) -> SavedKeys:
        def frames(names: list) -> list[int]:
            return [index_of[n] for n in names if isinstance(n, str) and n in index_of]

        older: dict[int, bytes] = {}
        for key, names in saved(state, "result_keys", dict, {}).items():
            if isinstance(names, list) and (key := _key_bytes(key)) is not None:
                older.update((i, key) for i in frames(names))
        shown = saved(state, "out_of_date", list, None)
        return SavedKeys(_key_bytes(saved(state, "annotations_key", str, None)), older,
                          [i for i in frames(saved(state, "stale", list, [])) if i not in older],
                          None if shown is None else frames(shown))


def _key_bytes(text: str | None) -> bytes | None:
    """A saved hexadecimal key, None if missing or not one."""
    try:
        return bytes.fromhex(text) if isinstance(text, str) else None
    except ValueError:
        return None


def without(labels: np.ndarray, removed: set[int]) -> np.ndarray:
    """`labels` with the `removed` objects' pixels made background (the same array when it holds none)."""
    gone = np.isin(labels, list(removed)) if removed else None
    return labels if gone is None or not gone.any() else np.where(gone, 0, labels).astype(np.uint8)
