"""Export every frame's masks at source resolution: DAVIS palette PNGs, per-object binary masks, per-object
soft probability maps, an overlay video for review and a COCO instance-segmentation file.

Runs on a worker thread (`progress(done, total)`, cooperative `cancel`). Every file is written atomically,
so a full disk or a cancel leaves each earlier export file either untouched or completely replaced.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable, Literal

import av
import cv2
import numpy as np

from stm_core.errors import StmError
from stm_core.io.atomic import atomic_path, atomic_write_bytes, remove_temporaries
from stm_core.io.coco import CocoDocument
from stm_core.io.masks import (OBJECT_DIR_PREFIX, SOFT_EXPORT_DIR, write_binary_mask, write_gray,
                               write_mask)
from stm_core.session import AnnotationSession

from .objects import ObjectTable, TrackedObject
from .overlay import composite, label_lut
from .wording import frame_numbers
from .workspace import DATA_FOLDERS, IDENTITY_FILE, STATE_FILE

MASKS_DIR, BINARY_DIR, SOFT_DIR, VIDEO_FILE, COCO_FILE = "masks", "binary", SOFT_EXPORT_DIR, "overlay.mp4", "coco.json"
MANIFEST_FILE = ".stm-export.json"
"""What the exports into a folder wrote (a dot name, so tools listing the folder pass it by)."""


@dataclass(frozen=True)
class ExportOptions:
    """What to write into `folder`; see the module docstring for the layout."""

    folder: Path
    palette: bool = True
    binary: bool = False
    soft: bool = False
    video: bool = False
    fps: float = 24.0
    coco: bool = False
    renumber: bool = False
    """Write the objects as 1..N in id order (DAVIS evaluation tools take a missing id for a lost object)."""
    grow: int = 0
    """Pixels the binary masks grow by, shrink by where negative (inpainting wants a margin round the object)."""
    remove_leftovers: bool = False
    """After a complete export, remove the `leftovers` of an earlier one (else the summary names them)."""

    @property
    def anything(self) -> bool:
        return self.palette or self.binary or self.soft or self.video or self.coco


@dataclass(frozen=True)
class ExportSummary:
    folder: Path
    frames: int
    files: int
    cancelled: bool
    without_mask: int = 0
    """Frames that had no mask yet, written as background."""
    not_updated: tuple[str, ...] = ()
    """Of a cancelled export: the files of an earlier one that it did not get to replace (they show older masks)."""
    video_size: tuple[int, int] | None = None
    """(height, width) of the overlay video where it differs from the frames' (H.264 needs even sizes)."""
    removed: tuple[str, ...] = ()
    """Per-object folders an earlier export wrote for ids this one does not write (objects deleted or renumbered
    since), removed by this one."""
    coco: bool = False
    """A COCO file was written: it leaves out the frames without a mask."""
    out_of_date: int = 0
    """Frames whose masks were propagated from annotations that changed since (red on the timeline)."""
    leftovers: tuple[str, ...] = ()
    """An earlier export's files this one neither rewrote nor removed (see `leftovers`), described."""
    removed_leftovers: tuple[str, ...] = ()
    """The same, removed as asked."""
    unrecorded: tuple[str, ...] = ()
    """Per-object folders of ids an earlier export's `objects.json` lists and this one does not write, where no
    record says that export wrote them (an older version's): kept, and named."""
    unreadable: tuple[int, ...] = ()
    """Frames whose picture could not be read: black in the overlay video (their masks are written)."""

    def describe(self) -> str:
        """One paragraph for the user."""
        frames, files = (f"{n} {what}{'' if n == 1 else 's'}" for n, what in ((self.frames, "frame"),
                                                                              (self.files, "file")))
        text = f"Cancelled after {frames} ({files}) written to {self.folder}." if self.cancelled else \
            f"Exported {frames} ({files}) to {self.folder}."
        if self.without_mask:
            text += f" {_frames(self.without_mask, 'had')} no mask yet and " \
                    f"{'was' if self.without_mask == 1 else 'were'} written as background" + \
                    (" (coco.json leaves them out)." if self.coco else ".")
        if self.out_of_date:
            text += f" {_frames(self.out_of_date)} out of date (propagated from annotations that changed since: a " \
                    "correction, an undo or a cleared frame; red on the timeline): propagate again and export again " \
                    "to include the changes."
        if self.removed:
            text += f" Removed what an earlier export wrote for object ids this one does not write: " \
                    f"{', '.join(self.removed)}."
        if self.not_updated:
            text += f" Left from an earlier export, not updated: {', '.join(self.not_updated)}."
        if self.removed_leftovers:
            text += f" Removed an earlier export's files this one did not rewrite: {'; '.join(self.removed_leftovers)}."
        if self.leftovers:
            text += f" Kept an earlier export's files this one did not rewrite (tools reading the folder take them " \
                    f"for part of this export): {'; '.join(self.leftovers)}."
        if self.unrecorded:
            text += f" Kept {', '.join(self.unrecorded)}: folders of objects that an earlier export's objects.json " \
                    "lists and this video no longer has; that export kept no record of its files, so delete them if " \
                    "they are not yours (tools reading the folder take them for part of this export)."
        if self.unreadable:
            several = len(self.unreadable) > 1
            text += f" The picture{'s' if several else ''} of frame{'s' if several else ''} " \
                    f"{frame_numbers(self.unreadable)} could not be " \
                    f"read (a damaged file): black in the overlay video; {'their' if several else 'its'} masks are " \
                    "written."
        if self.video_size:
            h, w = self.video_size
            text += f" The overlay video is {w}x{h}: H.264 needs even sizes, so the last column or row repeats."
        return text


def _frames(count: int, verb: str = "was") -> str:
    """'1 frame was', '3 frames were' (`verb` 'had': '1 frame had')."""
    plural = {"was": "were"}.get(verb, verb)
    return f"{count} frame{'' if count == 1 else 's'} {verb if count == 1 else plural}"


def renumbered(objects: list[TrackedObject]) -> tuple[list[TrackedObject], np.ndarray]:
    """The objects (in their order) numbered 1..N by id, and the lookup table that relabels a mask the same way."""
    relabel = np.zeros(256, np.uint8)
    for new_id, old_id in enumerate(sorted(o.id for o in objects), start=1):
        relabel[old_id] = new_id
    return [replace(o, id=int(relabel[o.id])) for o in objects], relabel


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by a disc of radius `pixels`, or shrunk by one where negative."""
    if pixels == 0:
        return mask
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(pixels) + 1,) * 2)
    return (cv2.dilate if pixels > 0 else cv2.erode)(mask.astype(np.uint8), disc).astype(bool)


def object_dir(kind: str, obj_id: int) -> str:
    """Per-object folder name, e.g. 'binary/object_003' (ids, not names: names may hold any character)."""
    return f"{kind}/{OBJECT_DIR_PREFIX}{obj_id:03d}"


def _per_object_outputs(options: ExportOptions) -> tuple[tuple[str, bool], ...]:
    """The outputs written per object, each with whether this export writes it."""
    return (BINARY_DIR, options.binary), (SOFT_DIR, options.soft)


def _deleted_object_dirs(options: ExportOptions, objects: list[TrackedObject], earlier: set[int]) -> list[str]:
    """The per-object folders, of the outputs this export writes, of objects an earlier export here listed and
    this one does not have (deleted since)."""
    deleted = sorted(earlier - {o.id for o in objects})
    return [object_dir(kind, obj_id) for kind, chosen in _per_object_outputs(options) if chosen for obj_id in deleted]


def export(session: AnnotationSession, objects: list[TrackedObject], options: ExportOptions,
           progress: Callable[[int, int], None], cancel: threading.Event, out_of_date: int = 0,
           workspace: Path | None = None, work_id: str | None = None) -> ExportSummary:
    """Write the chosen outputs for every frame; raises OSError (read-only folder, disk full) early if it can,
    ValueError for a folder that cannot take an export. `out_of_date`: how many frames hold masks propagated
    from annotations that changed since, for the summary; `workspace`: the video's workspace folder, which
    an export must not write into; `work_id`: its `Workspace.work_id`, which a renumbered listing records."""
    folder = options.folder
    _refuse_unsafe_folder(folder, session.source_path, options)
    if workspace is not None:
        _refuse_workspace(folder, workspace)
    earlier = _earlier_export_ids(folder)
    made = _Manifest.read(folder)  # what earlier exports here wrote: only that is ever offered for removal
    for place in [".", *(o for o in made.outputs if _OUTPUT_FOLDER.fullmatch(o))]:  # never a crafted '../'
        remove_temporaries(folder / place)  # QA pass 47: a killed export's hidden temporaries stayed for good
    sources = [o.id for o in objects]  # the ids in the session, whatever the files call the objects
    objects, relabel = renumbered(objects) if options.renumber else (objects, None)
    listing = ObjectTable(objects).to_json()
    if relabel is not None:  # a re-import into this video gives each object its own pixels back (QA pass 19)
        for item, source in zip(listing, sorted(sources)):
            item["video_id"] = source
            if work_id is not None:  # also where no object was renamed or recoloured (QA pass 93)
                item["work_id"] = work_id
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / "objects.json", json.dumps(listing, indent=1, ensure_ascii=False).encode("utf-8"))
    files = 1
    dirs = _written_dirs(options, objects)
    names, total = session.frame_names, session.num_frames
    source_name = session.source_path.name
    made.merged(set(dirs), names, work_id, source_name).write(folder)  # before their PNGs, so a kill leaves them known
    for d in dirs:
        (folder / d).mkdir(parents=True, exist_ok=True)
    lut = label_lut(replace(o, visible=True) for o in objects)  # the review video shows hidden objects too
    coco = CocoDocument([(o.id, o.name) for o in objects], session.frame_size,
                        f"{session.source_path.name}: masks exported by STM Annotator") if options.coco else None
    done = without_mask = 0
    unreadable: list[int] = []
    try:
        with ExitStack() as stack:
            video = None
            if options.video:
                tmp = stack.enter_context(atomic_path(folder / VIDEO_FILE))
                video = stack.enter_context(_VideoEncoder(tmp, session.frame_size, options.fps,
                                                          _variable_times(session, options.fps)))
            for index, name in enumerate(names):
                if cancel.is_set():
                    raise _Cancelled
                labels = session.labels(index)
                unmasked = labels is None
                if unmasked:
                    labels = np.zeros(session.frame_size, np.uint8)
                    without_mask += 1
                elif relabel is not None:
                    labels = relabel[labels]
                files += _write_frame_files(session, index, labels, options, objects, sources)
                if video is not None:
                    try:
                        picture = session.frame(index)
                    except StmError:  # QA pass 79: one damaged frame stopped the export, its outputs half done
                        picture = np.zeros((*session.frame_size, 3), np.uint8)
                        unreadable.append(index)
                    video.write(composite(picture, labels, lut))
                if coco is not None and not unmasked:  # left out: no mask is not "no object" (QA pass 13)
                    coco.add_frame(index, session.frame_file_name(index), labels)
                done = index + 1
                progress(done, total)
        if coco is not None:
            coco.write(folder / COCO_FILE)
        files += int(options.video) + int(options.coco)
    except _Cancelled:  # what this export did not get to replace is from an earlier one: said, not left to look new
        older = [f"{d}/ (frames {done + 1}-{total})" for d in dirs if any((folder / d / f"{n}.png").exists()
                                                                         for n in names[done:])]
        older += [f for f, chosen in ((VIDEO_FILE, options.video), (COCO_FILE, options.coco))
                  if chosen and (folder / f).exists()]
        made.merged(set(dirs), names[:done], work_id, source_name).write(folder)  # what it wrote (QA pass 44:
        # it claimed it all)
        return ExportSummary(folder, done, files, True, without_mask, tuple(older))
    h, w = session.frame_size
    padded = (h + h % 2, w + w % 2) if options.video and (h % 2 or w % 2) else None
    removed, unrecorded, kept, gone = _tidy_after(folder, options, objects, names, earlier, made, dirs,
                                                  (work_id, source_name))
    return ExportSummary(folder, done, files, False, without_mask, (), padded, removed, options.coco, out_of_date,
                         kept, gone, unrecorded, tuple(unreadable))


def _write_frame_files(session: AnnotationSession, index: int, labels: np.ndarray, options: ExportOptions,
                       objects: list[TrackedObject], sources: list[int]) -> int:
    """Frame `index`'s files of the chosen per-frame outputs (`labels` numbered as `objects`, whose ids in the
    session are `sources`): the palette mask, each object's binary mask and soft map. Returns how many."""
    folder, name, files = options.folder, session.frame_names[index], 0
    if options.palette:
        write_mask(folder / MASKS_DIR / f"{name}.png", labels)
        files += 1
    for obj in objects if options.binary else []:
        write_binary_mask(folder / object_dir(BINARY_DIR, obj.id) / f"{name}.png",
                          grown(labels == obj.id, options.grow))
        files += 1
    for source, obj in zip(sources, objects) if options.soft else []:
        prob = session.probability(index, source)
        if prob is None:  # imported or hand-made masks have no soft result: use the hard mask
            prob = (labels == obj.id).astype(np.uint8) * 255
        write_gray(folder / object_dir(SOFT_DIR, obj.id) / f"{name}.png", prob)
        files += 1
    return files


def _tidy_after(folder: Path, options: ExportOptions, objects: list[TrackedObject], names: list[str],
                earlier: set[int], made: "_Manifest", dirs: list[str], whose: tuple[str | None, str]
                ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """After an export that ended well: remove what earlier exports here wrote for deleted objects, and their
    leftovers where asked, and record what the folder now holds, and `whose` it is (work id, video name).
    Returns the removed folders, those kept without a record, and the leftovers kept and removed, described."""
    removed, unrecorded = _remove_deleted_objects(folder, objects, options, earlier, set(names), made)
    found = _leftovers(folder, options, objects, set(names), earlier, made)
    gone = [x for x in found if options.remove_leftovers and x.remove()]
    kept = [x for x in found if x not in gone]  # still known as an earlier export's, for the next export
    outputs = set(dirs) | {name for name, on in ((VIDEO_FILE, options.video), (COCO_FILE, options.coco)) if on}
    _Manifest(outputs | {_output_of(folder, f) for x in kept for f in x.files},
              set(names) | (made.frames if kept else set()), set(unrecorded), *whose).write(folder)
    return removed, unrecorded, tuple(x.describe() for x in kept), tuple(x.describe() for x in gone)


_OBJECT_FOLDER = re.compile(rf"(?:{BINARY_DIR}|{SOFT_DIR})/{OBJECT_DIR_PREFIX}(\d{{3}})")
"""A per-object folder of an export; the group is the object's id (QA pass 66: 'masks' read as one crashed)."""
_OUTPUT_FOLDER = re.compile(rf"{MASKS_DIR}|{_OBJECT_FOLDER.pattern}")
"""The folders an export writes frames into, as its manifest names them."""


def _written_dirs(options: ExportOptions, objects: list[TrackedObject]) -> list[str]:
    """The per-frame folders the export writes, relative to its folder."""
    dirs = [MASKS_DIR] if options.palette else []
    return dirs + [object_dir(kind, o.id) for kind, chosen in _per_object_outputs(options) if chosen for o in objects]


@dataclass(frozen=True)
class Leftover:
    """Files of an earlier export in the folder that this one would neither rewrite nor remove of itself:
    `frames` this video does not have where it writes (an earlier export of a longer video), the folder of an
    `object` it does not write that an earlier export's `objects.json` lists (QA pass 38: a 4-frame export into a
    10-frame one's folder left masks/00004-00009.png and binary/object_003/, which tools reading the folder took
    for this export's), or an `output` it does not write at all (QA pass 40: binary/, soft/, overlay.mp4 and a
    coco.json of the other video stayed, only named)."""

    top: Path
    """The folder (or file) they make up, in the export folder."""
    files: tuple[Path, ...]
    kind: Literal["frames", "object", "output"]

    def describe(self) -> str:
        """For the user, also once removed."""
        single = self.files == (self.top,)  # an output file, not a folder
        name = self.top.name + ("" if single else "/")
        if self.kind == "frames":
            name = f"{self.top.parent.name}/{name}" if self.top.parent.name in (BINARY_DIR, SOFT_DIR) else name
            shown = self.files[0].name if len(self.files) == 1 else f"{self.files[0].name} … {self.files[-1].name}"
            return f"{name} ({len(self.files)} frame{'s' * (len(self.files) > 1)} this video does not have: {shown})"
        if self.kind == "object":
            return f"{self.top.parent.name}/{name} ({len(self.files)} files of an object this export does not write)"
        return name if single else f"{name} ({len(self.files)} files: an output this export does not write)"

    def remove(self) -> bool:
        """Remove the files and the folders they leave empty; whether they all went."""
        try:
            for f in self.files:
                f.unlink(missing_ok=True)
            if self.kind != "frames" and self.top.is_dir():  # the folders within `top` the files were in, deepest first
                for folder in sorted({f.parent for f in self.files} | {self.top}, key=lambda d: -len(d.parts)):
                    if not any(folder.iterdir()):
                        folder.rmdir()
        except OSError:  # a read-only folder: said as kept
            return False
        return True


def leftovers(session: AnnotationSession, objects: list[TrackedObject], options: ExportOptions) -> list[Leftover]:
    """What an earlier export in `options.folder` leaves there that this export would neither rewrite nor
    remove of itself, so the user can be asked before it runs."""
    objects = renumbered(objects)[0] if options.renumber else objects
    folder = options.folder
    return _leftovers(folder, options, objects, set(session.frame_names), _earlier_export_ids(folder),
                      _Manifest.read(folder))


def _leftovers(folder: Path, options: ExportOptions, objects: list[TrackedObject], names: set[str],
               earlier: set[int], made: "_Manifest") -> list[Leftover]:
    """Only what the manifest says earlier exports here wrote: its outputs (`masks`, each `binary/object_NNN`, ...)
    and in them its frames' PNGs (QA pass 43: a project folder's own coco.json, overlay.mp4 and masks/ were
    offered for removal, and went, and so did a user's binary/object_001/my_extra.png; QA pass 44: a user's
    binary/object_005/ beside an export's)."""
    def ours(rel: str) -> list[Path]:
        return sorted(f for f in _pngs(folder / rel) if f.stem in made.frames) if rel in made.outputs else []

    found = []
    for d in _written_dirs(options, objects):
        if stale := [f for f in ours(d) if f.stem not in names]:
            found.append(Leftover(folder / d, tuple(stale), "frames"))
    for rel in _deleted_object_dirs(options, objects, earlier):
        # not only this video's frames: those `_remove_deleted_objects` removes of itself
        if (pngs := ours(rel)) and any(f.stem not in names for f in pngs):
            found.append(Leftover(folder / rel, tuple(pngs), "object"))
    if not options.palette and (masks := ours(MASKS_DIR)):
        found.append(Leftover(folder / MASKS_DIR, tuple(masks), "output"))
    for kind, chosen in _per_object_outputs(options):
        files = [] if chosen else [f for rel in sorted(made.outputs) if rel.startswith(f"{kind}/") for f in ours(rel)]
        if files:
            found.append(Leftover(folder / kind, tuple(files), "output"))
    found += [Leftover(folder / name, (folder / name,), "output")
              for name, chosen in ((VIDEO_FILE, options.video), (COCO_FILE, options.coco))
              if not chosen and name in made.outputs and (folder / name).is_file()]
    return found


def _output_of(folder: Path, file: Path) -> str:
    """The output a file of an export belongs to, as the manifest names it: 'masks', 'binary/object_002',
    'coco.json'."""
    rel = file.relative_to(folder)
    return rel.name if len(rel.parts) == 1 else rel.parent.as_posix()


@dataclass(frozen=True)
class _Manifest:
    """What the exports into a folder wrote (`MANIFEST_FILE`): the outputs and the frames' names, so that only
    their files are ever offered for removal, never a user's own beside them."""

    outputs: set[str]
    frames: set[str]
    unrecorded: set[str] = field(default_factory=set)
    """Folders of deleted objects an older export left without a record (`ExportSummary.unrecorded`): named
    again at each export while they are there (QA pass 65: named once, then kept without a word)."""
    work: str | None = None
    """`Workspace.work_id` of the video the last export here was of, and that video's file or folder name."""
    video: str | None = None

    @staticmethod
    def read(folder: Path) -> "_Manifest":
        try:
            data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
            work, video = data.get("work"), data.get("video")
            return _Manifest({str(o) for o in data["outputs"]}, {str(f) for f in data["frames"]},
                             {str(u) for u in data.get("unrecorded", [])}, work if isinstance(work, str) else None,
                             video if isinstance(video, str) else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # none (an export of
            return _Manifest(set(), set())  # an earlier version), or broken

    def merged(self, outputs: set[str], frames: list[str], work: str | None, video: str) -> "_Manifest":
        return _Manifest(self.outputs | outputs, self.frames | set(frames), self.unrecorded, work, video)

    def write(self, folder: Path) -> None:
        data = {"outputs": sorted(self.outputs), "frames": sorted(self.frames), "unrecorded": sorted(self.unrecorded),
                "work": self.work, "video": self.video}
        atomic_write_bytes(folder / MANIFEST_FILE, json.dumps(data).encode("utf-8"))


def other_videos_export(folder: Path, work_id: str | None) -> str | None:
    """The name of the video whose export `folder` holds, where that is another video than the work `work_id`'s
    (QA pass 110: a second video's export went into the first one's folder, over its files); None where the
    folder holds none, this video's, or one that does not say (an export of an earlier version)."""
    made = _Manifest.read(folder)
    return made.video or "another video" if made.work is not None and made.work != work_id else None


def _pngs(folder: Path) -> list[Path]:
    try:
        return [f for f in folder.iterdir() if f.suffix == ".png" and f.is_file()]
    except OSError:  # no such folder (yet), or not readable: nothing of an earlier export to speak of
        return []


def _refuse_unsafe_folder(folder: Path, source: Path, options: ExportOptions) -> None:
    """ValueError where the export could not write, or would write over or delete the video itself: a file
    as the folder, the frame folder, a folder that holds the frames where the export writes (`masks/`,
    `binary/...`, `soft/...`), or an overlay video that is the source video."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder: choose a folder to export into")
    target, own = folder.resolve(), source.resolve()  # links and '..' followed, whether the folder exists or not
    if own == target:
        raise ValueError(f"{folder} holds the video's own frames: choose another folder, so that the exported "
                         "masks and the frames stay apart")
    for written in (target / MASKS_DIR, target / BINARY_DIR, target / SOFT_DIR):
        if own == written or written in own.parents:
            raise ValueError(f"an export into {folder} would write into {source}, which holds the video's own "
                             "frames: choose another folder")
    if options.video and own == target / VIDEO_FILE:
        raise ValueError(f"the overlay video would replace the video itself ({source}): choose another folder")


def _refuse_workspace(folder: Path, workspace: Path) -> None:
    """ValueError for a workspace folder itself or a folder of its saved masks, this video's or another's: the
    export's `masks/` and `soft/` would land among the saved ones, and frames without a mask yet would reopen as
    empty results (QA pass 38; QA pass 40: another video's workspace took this one's masks as its results). A
    workspace's own subfolders for exports (the dialog's default `export/`) are fine."""
    target, own = folder.resolve(), workspace.resolve()
    others = {place for place in (target, *target.parents)
              if (place / STATE_FILE).is_file() or (place / IDENTITY_FILE).is_file()} - {own}
    for root in (own, *others):
        inside = [root / name for name in DATA_FOLDERS]
        if target == root or target in inside or any(place in target.parents for place in inside):
            whose = "this video's" if root == own else "another video's"
            raise ValueError(f"{folder} is where the app keeps {whose} work (its workspace): choose another "
                             f"folder, for example {own / 'export'}")


def _earlier_export_ids(folder: Path) -> set[int]:
    """The object ids the `objects.json` of an earlier export into `folder` lists (none without one)."""
    try:
        return set(ObjectTable.from_json(json.loads((folder / "objects.json").read_text(encoding="utf-8"))).ids())
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return set()


def _remove_deleted_objects(folder: Path, objects: list[TrackedObject], options: ExportOptions,
                            earlier: set[int], names: set[str], made: "_Manifest"
                            ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """After a complete export: remove the per-object folders of objects deleted since an earlier export into
    this folder (left, they would look current). Only folders that export wrote go: its manifest lists the folder
    (QA pass 44: a user's own binary/object_002/ went, whose object an export's `objects.json` listed), and it
    holds nothing but this video's frame PNGs. Returns (removed, kept): kept are such folders that no manifest
    lists (an export by an older version, which wrote none: QA pass 61), to be named."""
    removed, kept = [], []
    ids = {o.id for o in objects}  # the folders named before of objects still deleted; never a crafted '../'
    named = {rel for rel in made.unrecorded if (m := _OBJECT_FOLDER.fullmatch(rel)) and int(m[1]) not in ids}
    for rel in sorted(set(_deleted_object_dirs(options, objects, earlier)) | named):
        old = folder / rel
        if not old.is_dir() or not all(f.is_file() and f.suffix == ".png" and f.stem in names for f in old.iterdir()):
            continue
        if rel not in made.outputs or rel in named:
            kept.append(rel)
            continue
        shutil.rmtree(old, ignore_errors=True)
        if not old.exists():
            removed.append(rel)
    return tuple(removed), tuple(kept)


class _Cancelled(Exception):
    """Raised inside the export to unwind it: the unfinished video is discarded, the old one kept."""


def _variable_times(session: AnnotationSession, fps: float) -> list[float] | None:
    """The video's own frame times where it has a variable frame rate (they stray from a constant rate by over
    half a frame) and the overlay keeps the video's rate: the overlay then keeps its timing, and its sound's
    (QA pass 33: a phone clip's frame 59, at 2.367 s, came at 2.316 s)."""
    times, own = session.frame_times, session.fps
    if not times or not own or abs(fps - own) >= 1e-3 or any(b <= a for a, b in zip(times, times[1:])):
        return None  # times out of order (an AVI's, say) would not mux
    return times if max(abs(t - i / own) for i, t in enumerate(times)) > 0.5 / own else None


class _VideoEncoder:
    """H.264 mp4 through PyAV, at a constant rate or at the given frame `times` (seconds); the stream is flushed
    only when the block ends without an exception."""

    TIME_BASE = Fraction(1, 90000)

    def __init__(self, path: Path, size: tuple[int, int], fps: float, times: list[float] | None = None) -> None:
        h, w = size
        self._container = av.open(str(path), "w")
        try:  # a PyAV without libx264, say: the file is closed, not left open (QA pass 80)
            self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            self._stream.width, self._stream.height = w + w % 2, h + h % 2  # yuv420p needs even sizes
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": "20", "preset": "veryfast"}
            if times is not None:
                self._stream.codec_context.time_base = self._stream.time_base = self.TIME_BASE
        except BaseException:
            self._container.close()
            raise
        self._times, self._written = times, 0

    def __enter__(self) -> "_VideoEncoder":
        return self

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        if (w % 2) or (h % 2):
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if self._times is not None:
            frame.pts, frame.time_base = round(self._times[self._written] / self.TIME_BASE), self.TIME_BASE
        self._written += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        try:
            if exc_type is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
