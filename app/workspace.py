"""The workspace folder of one video: its masks as palette PNGs and its state as JSON, always complete.

Layout::

    <workspace>/workspace.json            objects (and removed ones), which annotations each result was
                                          propagated from (out-of-date ones), each result's uncertainty,
                                          editor state, what video it belongs to
    <workspace>/annotations/<frame>.png   the mask of each annotated frame
    <workspace>/entering/<frame>.png      imported objects waiting on their frame for a forward run
    <workspace>/masks/<frame>.png         the propagated result of each frame (under an annotation: the one
                                          shown again when the annotation is cleared)
    <workspace>/soft/<frame>.npz          a propagated frame's soft maps (working size), tied to its mask by a hash

Every file is replaced atomically, so a killed process leaves each file either old or new, never torn.
Which folder holds a frame's mask says what the mask is, so a kill between two writes never turns the
user's annotation into a result that propagation may overwrite. A mask is written to its folder before
what it replaces is removed: after a kill, both may be there and the annotation wins.
Where the folder is (in the user data folder or beside the video, and found again after the video moved) is
`workspace_places`'s job.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from stm_core.errors import InputError
from stm_core.io import locks
from stm_core.io.atomic import atomic_write_bytes, remove_temporaries
from stm_core.io.masks import mask_digest, read_mask, write_mask

STATE_FILE = "workspace.json"
IDENTITY_FILE = "identity.json"
"""Which video a workspace belongs to, as in its state file, written apart: a moved video finds its workspace
by it where the state file is torn (QA pass 34: that work was never found again)."""
_IDENTITY_KEYS = ("num_frames", "frame_size", "frames_digest", "source", "fingerprint", "picture", "thumbnail",
                  "thumbnail_later", "thumbnails_spread", "work_id")
FORMAT_VERSION = 2
"""Written into every state file. 2: annotations in `annotations/`, results in `masks/`; version 1 workspaces
(read, and moved into that layout) kept both in `masks/`, so a version of this program that writes 1 must not
open a 2: it would show no annotation, and its work would overwrite them (QA pass 61)."""
READ_VERSIONS = (1, 2)
MaskKind = Literal["annotation", "entering", "result"]
_FOLDERS: dict[MaskKind, str] = {"annotation": "annotations", "entering": "entering", "result": "masks"}
SOFT_FOLDER = "soft"
DATA_FOLDERS = (*_FOLDERS.values(), SOFT_FOLDER)
"""The folders of saved masks and soft maps in a workspace."""
SUFFIX = ".stmws"
ADAPTATION_FILE = "adaptation.bin"
"""The network's latest adaptation to the video's annotations (the engine's bytes, `session.adaptation()`)."""


def _keep_damaged(path: Path) -> Path | None:
    """`path` renamed `NAME.damaged-<time>` beside it, kept for the user; None if it cannot be renamed."""
    kept = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.rename(kept)
    except OSError:
        return None
    return kept


def read_json(path: Path, naming: str | None = None) -> object | None:
    """The JSON of `path`, None where it cannot be read; with `naming`, None too unless its start names it (the
    identity comes first: other videos' long states are skipped unread)."""
    try:
        if naming is not None:
            with path.open("rb") as f:
                if naming.encode() not in f.read(4096):
                    return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def saved(state: dict, key: str, kind: type, default: Any) -> Any:
    """`state[key]` where it is a `kind` (an int: not a bool), else `default`: a hand-edited workspace may hold
    anything, and a value of the wrong type must cost only that value (QA pass 14: it made opening fail)."""
    value = state.get(key, default)
    return value if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) else default


LOCK_FILE = ".open-in"  # a dot name: workspace scans and exports skip it


class DamagedState(InputError):
    """A workspace's state file is torn or hand-edited into something else; the masks beside it may be whole."""


class NewerWorkspace(InputError):
    """A workspace saved by a newer version of this program: left as it is, and the video is not opened here
    (QA pass 65: set aside, its work was hidden from that version, which found a fresh workspace instead)."""


class Workspace:
    """Reads and writes one workspace folder; every method is safe to call from the writer thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._token = uuid.uuid4().hex  # tells this window's lock from another's, in this process too
        self.work_id = uuid.uuid4().hex
        """Names this work on its video, kept in the state file (`read_state` takes the saved one): an export
        records it, so that its masks imported back are known as this very work's (QA pass 93)."""
        self._identity: dict | None = None  # as last written to IDENTITY_FILE by this object
        self.aside: Path | None = None  # where `set_aside` put the work that was here
        self._made: set[Path] = set()  # the folders this object wrote files into
        self._lost = False  # one of them was gone when it wrote there again (see `lost`)
        self._annotations: set[str] = set()  # the frames whose annotation file is here (written, or found here)
        self._state_written = False
        self.damaged: list[tuple[MaskKind, str, Path, str]] = []  # (kind, frame name, kept as, why) unreadable

    def lock(self) -> str | None:
        """Mark the workspace as open here; if another window (of any process on this machine) has it open,
        say which instead. Two windows saving one workspace undo each other's work (QA pass 14: one window's
        propagation deleted the annotation the other had just painted). A lock whose window is gone (a crash,
        a kill) is taken over."""
        try:
            record = locks.take(self.root / LOCK_FILE, self._token)
        except OSError:  # a full disk, a read-only place: nothing can be saved there now, and Autosave says so
            return None
        return None if record is None else self._busy(record)

    def busy(self) -> str | None:
        """Which other window has this workspace open, for the user; None where none (alive) has."""
        record = locks.holder(self.root / LOCK_FILE)
        return None if record is None or record.get("token") == self._token else self._busy(record)

    def _busy(self, record: dict) -> str:
        return f"this video is open in another window ({locks.who(record)}); close it there first. If no such " \
               f"window is open, delete {self.root / LOCK_FILE}"

    def unlock(self) -> None:
        """Give up the lock, if it is this window's."""
        locks.release(self.root / LOCK_FILE, self._token)

    @property
    def masks_dir(self) -> Path:
        return self.root / "masks"

    def _folder(self, kind: MaskKind) -> Path:
        return self.root / _FOLDERS[kind]

    @property
    def soft_dir(self) -> Path:
        return self.root / SOFT_FOLDER

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def read_state(self) -> dict | None:
        """The saved state, or None for a new workspace. A state file that is not JSON is `DamagedState`, one
        that cannot be read or is another version's an `InputError`."""
        if not self.state_path.exists():
            return None
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except OSError as e:
            raise InputError(f"workspace state {self.state_path} is unreadable: {e}") from None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise DamagedState(f"workspace state {self.state_path} is damaged: {e}") from None
        if not isinstance(state, dict):
            raise DamagedState(f"workspace state {self.state_path} is damaged (not a JSON object)")
        if "version" not in state:  # QA pass 34: `{}` was said to be another version's, and set aside
            raise DamagedState(f"workspace state {self.state_path} is damaged (it says no version)")
        version = state.get("version")
        if isinstance(version, int | float) and not isinstance(version, bool) and version > FORMAT_VERSION:
            raise NewerWorkspace(f"the work on this video was saved by a newer version of this program (workspace "
                                 f"format {version}, this version reads up to {FORMAT_VERSION}) in {self.root}: "
                                 "open it with that version; the workspace is left as it is")
        if isinstance(version, bool) or version not in READ_VERSIONS:
            raise InputError(f"workspace {self.root} was written by another version of this program")
        return state

    def _take_work_id(self, saved: dict) -> None:
        if isinstance(work := saved.get("work_id"), str) and 0 < len(work) <= 64:
            self.work_id = work

    @staticmethod
    def identity(names: list[str], size: tuple[int, int]) -> dict:
        """What ties a workspace to its frames: count, size and a digest of the frame names."""
        digest = hashlib.sha1("\n".join(names).encode("utf-8")).hexdigest()
        return {"num_frames": len(names), "frame_size": list(size), "frames_digest": digest}

    def matches(self, state: dict, names: list[str], size: tuple[int, int]) -> bool:
        """Whether a saved state belongs to these frames."""
        return all(state.get(k) == v for k, v in self.identity(names, size).items())

    def frames_changed(self, state: dict, names: list[str], size: tuple[int, int]) -> tuple[int, int] | None:
        """For a saved state of other frames than these, in a frame folder: whether they are its frames with
        some deleted or added since (a blurry frame removed, the rest of a recording added: QA pass 40 found the
        work set aside as another video's). So it is where the frame size is the same and at least half the
        annotated frames (where all of them went, of the saved masks) are named after frames still there; a video
        file's frames are named by their place, so there a name says nothing (QA pass 42). Returns (annotated
        frames still there, gone); None for other frames."""
        if state.get("frame_size") != list(size):
            return None
        painted = self._saved_names("annotation") | self._saved_names("entering")
        kept = len(painted & set(names))
        saved = painted if kept else self._saved_names("result")  # the first frame, annotated, deleted
        there = len(saved & set(names))
        return (kept, len(painted) - kept) if there and 2 * there >= len(saved) else None

    def belongs_to(self, names: list[str], size: tuple[int, int]) -> bool:
        """Whether what a workspace with a torn state file holds is of these frames: its identity file says so,
        or (written before there was one) its masks are named after these frames and of their size (QA pass
        36: a torn workspace of another video at the same path was taken, and its masks overwritten)."""
        who = read_json(self.root / IDENTITY_FILE)
        if isinstance(who, dict):
            if ours := self.matches(who, names, size):
                self._take_work_id(who)  # the work keeps its name (QA pass 95: a torn state file gave it another)
            return ours
        known = set(names)
        masks = [p for kind in _FOLDERS for p in sorted(self._folder(kind).glob("*.png"))]
        if any(p.stem not in known for p in masks):
            return False
        for path in masks[:8] + masks[8::max(1, len(masks) // 8)]:  # the first ones and some spread over all
            try:
                with Image.open(path) as im:
                    if im.size != (size[1], size[0]):
                        return False
            except (OSError, UnidentifiedImageError):
                continue  # a damaged mask is dealt with when it is read (`read_frame_mask`)
        return True

    def keep_damaged_state(self) -> Path | None:
        """Rename a damaged state file out of the way, beside the masks (None if it cannot be renamed)."""
        return _keep_damaged(self.state_path)

    def set_aside(self, source_replaced: bool = False) -> str:
        """Move a workspace that no longer fits its video out of the way (never delete the user's masks);
        if it cannot be moved, leave it and continue in a fresh folder beside it. Says what was done. With
        `source_replaced` (another video is at its video's path now) its video, opened where it went, finds
        it (`find_moved_workspace`)."""
        self.work_id = uuid.uuid4().hex  # the work set aside keeps its own (QA pass 98)
        self.aside = None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.root.with_name(f"{self.root.name}.old-{stamp}")
        try:
            self.root.rename(target)
        except OSError:
            old, self.root = self.root, self.root.with_name(f"{self.root.name}-{stamp}")
            self.aside = old
            return f"It was left untouched in {old}; this video now saves to {self.root}"
        self.aside = target
        try:
            (target / LOCK_FILE).unlink(missing_ok=True)  # this window's, taken again where it continues
            if source_replaced:
                state = json.loads((target / STATE_FILE).read_text(encoding="utf-8"))
                atomic_write_bytes(target / STATE_FILE, json.dumps(dict(state, source_replaced=True), indent=1,
                                                                   ensure_ascii=False).encode("utf-8"))
        except (OSError, ValueError, RecursionError):  # kept all the same
            pass
        return f"It was kept as {target}"

    def remove_leftovers(self) -> None:
        """Delete temporary files a killed process left mid-write (complete files are never temporaries)."""
        for folder in (self.root, self.soft_dir, *(self._folder(kind) for kind in _FOLDERS)):
            remove_temporaries(folder)

    def lost(self) -> bool:
        """Whether files saved here went since (deleted while the video was open: QA passes 67 and 71): the state
        file once written, a folder of masks this object wrote into, or an annotation's file (the user's work).
        The caller then saves everything again; asking clears it."""
        made, self._made = self._made, set()
        annotations = self._folder("annotation")
        lost = self._lost or any(not folder.is_dir() for folder in made) \
            or (self._state_written and not self.state_path.exists()) \
            or any(not (annotations / f"{name}.png").exists() and name in self._annotations  # not one the
                   for name in tuple(self._annotations))  # writer removed meanwhile (it forgets it first: QA 85)
        self._lost = False
        if lost:  # asked again before the files are back, it says no more
            self._state_written = False
            self._annotations.clear()
        else:
            self._made |= made
        return lost

    def watch(self) -> None:
        """Count the folders of masks already here (restored from an earlier session) as this object's, so that
        `lost` notices them deleted too (QA pass 74: after reopening, a deleted annotations/ went unnoticed)."""
        self._made |= {f for f in (self.soft_dir, *(self._folder(kind) for kind in _FOLDERS)) if f.is_dir()}
        self._annotations |= self._saved_names("annotation")  # QA: one deleted on its own went unnoticed
        self._state_written = self._state_written or self.state_path.is_file()

    def _ready(self, folder: Path) -> Path:
        """`folder`, made where missing; one this object wrote into before that is gone now went with the files
        in it (`lost`)."""
        if folder in self._made and not folder.is_dir():
            self._lost = True
        folder.mkdir(parents=True, exist_ok=True)
        self._made.add(folder)
        return folder

    def write_state(self, state: dict) -> None:
        """Write the state file, and the identity file where what it says changed."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = json.dumps(dict(state, version=FORMAT_VERSION), indent=1, ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self.state_path, data)
        self._state_written = True
        identity = {key: state.get(key) for key in _IDENTITY_KEYS}
        if identity != self._identity or not (self.root / IDENTITY_FILE).exists():  # deleted meanwhile (QA 67)
            atomic_write_bytes(self.root / IDENTITY_FILE, json.dumps(identity, ensure_ascii=False).encode("utf-8"))
            self._identity = identity

    def write_mask(self, name: str, labels: np.ndarray, kind: MaskKind = "result", under_annotation: bool = False
                   ) -> None:
        """Save a frame's mask as `kind`, then remove what it replaces: an annotation replaces objects waiting
        there (it holds them), and keeps the result under it; a result or entering objects replace an annotation
        (a frame may hold both of those two: objects wait to enter where a backward run left a result), except
        a result saved `under_annotation` (shown again once the annotation is cleared)."""
        write_mask(self._ready(self._folder(kind)) / f"{name}.png", labels)
        if kind == "annotation":
            self._annotations.add(name)  # after the file: `lost` never looks for one still being written
            self.remove_mask(name, "entering")
        elif not under_annotation:
            self.remove_mask(name, "annotation")

    def remove_mask(self, name: str, kind: MaskKind | None = None) -> None:
        """Remove a frame's mask of `kind`, or all its masks and its soft maps."""
        for each in _FOLDERS if kind is None else (kind,):
            if each == "annotation":
                self._annotations.discard(name)  # before the file: `lost` never misses one removed here
            (self._folder(each) / f"{name}.png").unlink(missing_ok=True)
        if kind is None:
            self.remove_soft(name)

    def write_adaptation(self, data: bytes) -> None:
        """Keep the network's adaptation to this video (minutes of a CPU's work) for the next session."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.root / ADAPTATION_FILE, data)

    def remove_adaptation(self) -> None:
        """Best effort, as its writing: without the file the next session adapts anew."""
        try:
            (self.root / ADAPTATION_FILE).unlink(missing_ok=True)
        except OSError:
            pass

    def read_adaptation(self) -> bytes | None:
        """The adaptation kept by an earlier session, if any (the engine checks that it fits)."""
        try:
            return (self.root / ADAPTATION_FILE).read_bytes()
        except OSError:
            return None

    def write_soft(self, name: str, labels: np.ndarray, obj_ids: list[int], probs: np.ndarray) -> None:
        """Save a frame's soft maps with a hash of its label map: read back only beside that very mask."""
        self._ready(self.soft_dir)
        buf = io.BytesIO()
        np.savez_compressed(buf, probs=probs, obj_ids=np.asarray(obj_ids, np.int64), labels_hash=mask_digest(labels))
        atomic_write_bytes(self.soft_dir / f"{name}.npz", buf.getvalue())

    def remove_soft(self, name: str) -> None:
        (self.soft_dir / f"{name}.npz").unlink(missing_ok=True)

    def read_soft(self, name: str, labels: np.ndarray) -> tuple[list[int], np.ndarray] | None:
        """The soft maps saved for this frame if they belong to `labels` (a crash between writing the mask and
        its soft maps leaves them apart); None if missing, unreadable or stale."""
        path = self.soft_dir / f"{name}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                if data["labels_hash"].item() != mask_digest(labels):
                    return None
                probs, obj_ids = data["probs"], [int(i) for i in data["obj_ids"]]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return None
        if probs.dtype != np.uint8 or probs.ndim != 3 or len(obj_ids) != probs.shape[0]:
            return None
        return obj_ids, probs

    def saved_frames(self, names: list[str], kind: MaskKind) -> list[int]:
        """Indices of the frames with a saved mask of `kind`."""
        present = self._saved_names(kind)
        return [i for i, name in enumerate(names) if name in present]

    def _saved_names(self, kind: MaskKind) -> set[str]:
        """The names of the frames with a saved mask of `kind` (none where its folder is not there)."""
        return {p.stem for p in self._folder(kind).glob("*.png") if not p.name.startswith(".")}

    def read_frame_mask(self, name: str, size: tuple[int, int], kind: MaskKind = "result") -> np.ndarray | None:
        """One saved mask; None if it is missing or unreadable (the frame then just has no mask). An unreadable
        annotation is renamed out of the way, so a later save cannot take its place unnoticed, and listed in
        `damaged` for the window to say (QA pass 80: one was dropped at reopening without a word); a result is
        only computed again."""
        path = self._folder(kind) / f"{name}.png"
        try:
            return read_mask(path, size, tolerance=0)
        except InputError as exc:
            if kind != "result" and path.exists():
                kept = _keep_damaged(path) or path
                self.damaged.append((kind, name, kept, str(exc)))  # list.append: safe from the reading threads
            return None

    def adopt_listed(self, state: dict) -> None:
        """Take a state found to be of these frames: its `work_id`, and the masks a workspace of the first layout
        listed as annotated or entering moved into their folders (that layout kept every mask in masks/ and told
        them apart in the state file). Not before: a set-aside state's id went to the new work (QA pass 96)."""
        self._take_work_id(state)
        for key, kind in (("annotated", "annotation"), ("entering", "entering")):
            folder = self._folder(kind)
            for name in (n for n in saved(state, key, list, []) if isinstance(n, str)):
                if (self.masks_dir / f"{name}.png").exists():
                    folder.mkdir(parents=True, exist_ok=True)
                    (self.masks_dir / f"{name}.png").replace(folder / f"{name}.png")
