"""Where a video's workspace is. By default in the user data folder (keyed by the video's absolute path), so that
annotating a read-only or shared dataset never writes next to it; "beside the video" (`<video>.stmws`) is an
option, and changing it moves an existing workspace to the new place when the video is opened next. A video that
was moved or renamed finds its workspace again by what its frames are (`find_moved_workspace`), and the work of
another video that was at the same path is told from its own (`saved_for_other_pictures`).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Callable

from stm_core.io import locks
from stm_core.io.atomic import atomic_write_bytes, cut_to_bytes

from .video_identity import flat, thumbnails_differ
from .workspace import IDENTITY_FILE, LOCK_FILE, STATE_FILE, SUFFIX, Workspace, read_json


def workspace_dir(source: Path, data_dir: Path, beside_source: bool) -> Path:
    """Where the workspace of `source` lives: `<source>.stmws` beside it if asked and writable, else under
    `data_dir`, named after the video plus a hash of its absolute path so two `frames/` folders never clash.

    A workspace found only in the other place (the option changed since it was written) is moved here, or,
    if it cannot be moved, used where it is: changing a preference must not hide the annotator's work. Where
    both places hold one, the one saved last is used, the other set aside (QA pass 45: the work done while the
    video's folder was read-only, saved in the data folder, was hidden by the older copy beside the video)."""
    in_data, beside = _places(source, data_dir)
    if beside is None:
        return in_data
    chosen = beside if beside_source and _writable(beside) else in_data
    other = in_data if chosen == beside else beside
    if (other / STATE_FILE).is_file() and (chosen / STATE_FILE).exists() and _saved_later(other, chosen) \
            and locks.holder(chosen / LOCK_FILE) is None and locks.holder(other / LOCK_FILE) is None:
        Workspace(chosen).set_aside()
    if (other / STATE_FILE).is_file() and not (chosen / STATE_FILE).exists():
        return move_workspace(other, chosen)
    return chosen


def _places(source: Path, data_dir: Path) -> tuple[Path, Path | None]:
    """(in the data folder, beside the video) where the workspace of `source` may be; None beside a video whose
    name is too long for a workspace's name there."""
    source = source.resolve()
    digest = hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:10]
    in_data = data_dir / "workspaces" / f"{cut_to_bytes(source.name, NAME_BYTES)}-{digest}"
    beside = source.with_name(source.name + SUFFIX)
    return in_data, None if len(f"{beside.name}.moving".encode("utf-8")) > 255 else beside


def open_elsewhere(source: Path, data_dir: Path, mine: Workspace | None) -> str | None:
    """Why `source` cannot be opened in this window: another window has its workspace open (in either place it
    may be; `mine`, this window's, does not count). Asked before the open video is closed, so that a refused
    open leaves it as it was (QA pass 55: its saved results stopped loading, an export then wrote those frames
    as background, and its propagation was cancelled)."""
    for root in _places(source, data_dir):
        if root is not None and (mine is None or root != mine.root) and (busy := Workspace(root).busy()):
            return busy
    return None


NAME_BYTES = 200
"""The most of a video's name a workspace folder's name takes: with the hash and a set-aside suffix it stays
within a file name's 255 bytes (QA pass 45: a video named with 245 bytes could not be opened)."""


def _saved_later(a: Path, b: Path) -> bool:
    """Whether workspace `a` was saved after workspace `b`."""
    try:
        return (a / STATE_FILE).stat().st_mtime > (b / STATE_FILE).stat().st_mtime
    except OSError:
        return False


BESIDE_LIST = "beside-videos.txt"
"""In the user data folder's `workspaces/`: the workspaces kept beside their videos, one path a line, so that a
video moved to another folder finds its work again (QA pass 32: it was looked for beside the video's new place
only, and the work seemed lost)."""


def note_beside(data_dir: Path, root: Path) -> None:
    """Add workspace `root`, kept beside its video, to the list (paths that are gone are dropped)."""
    listed, now = data_dir / "workspaces" / BESIDE_LIST, _listed_beside(data_dir)
    if now[-1:] == [root] or not root.is_dir():
        return
    known = [p for p in now if p != root and p.is_dir()]
    try:
        listed.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(listed, "".join(f"{p}\n" for p in [*known, root][-1000:]).encode("utf-8"))
    except OSError:  # the data folder is not writable: a moved video is then looked for beside itself only
        pass


def _listed_beside(data_dir: Path) -> list[Path]:
    try:
        text = (data_dir / "workspaces" / BESIDE_LIST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [Path(line) for line in text.splitlines() if line.strip()]

def find_moved_workspace(data_dir: Path, source: Path, identity: dict,
                         fingerprints: tuple[str, ...]) -> tuple[Path, str] | None:
    """The workspace of these very frames (same `identity` and one of the `fingerprints`: this version's, and
    the first frame's alone that workspaces saved by earlier versions hold) saved for a path that no longer
    exists, because the video or its folder was moved or renamed: (its folder, the old path), the most
    recently saved if several; None if there is none. Looks in the user data folder, beside the video and in
    the workspaces kept beside videos elsewhere (`note_beside`)."""
    places = list((data_dir / "workspaces").glob(f"*/{STATE_FILE}"))
    places += list(source.resolve().parent.glob(f"*{SUFFIX}/{STATE_FILE}"))
    places += [p / STATE_FILE for p in _listed_beside(data_dir) if p / STATE_FILE not in places]
    found = []
    for state_path in places:
        state = read_json(state_path, identity["frames_digest"])
        if state is None:  # torn: the identity file says whose it is
            state = read_json(state_path.with_name(IDENTITY_FILE), identity["frames_digest"])
        try:
            saved_at = state_path.stat().st_mtime
        except OSError:
            continue
        old = state.get("source") if isinstance(state, dict) else None
        if not isinstance(old, str) or state.get("fingerprint") not in fingerprints \
                or Path(old).exists() and not state.get("source_replaced") \
                or any(state.get(k) != v for k, v in identity.items()):
            continue
        found.append((saved_at, str(state_path.parent), old))
    if not found:
        return None
    _, folder, old = max(found)
    return Path(folder), old


def saved_for_other_pictures(root: Path, picture: str, thumbnail: str,
                             later: Callable[[str], str | None] = lambda _: None) -> bool:
    """Whether the workspace at `root` was saved for a video whose first frame looks otherwise (`thumbnails_differ`,
    which a re-encoding or a grading does not: QA pass 40 found frames saved again at another JPEG quality, or 6
    levels brighter, taken for another video; else, as earlier versions saved it, its `frame_fingerprint` differs
    from `picture`) and no window has it open: another video that was at this path, deleted or moved, with as
    many frames of one size (QA pass 36: its masks were shown over the new one's frames). Where both first frames
    are `flat`, the later frame the state names is compared (`later(name)` gives this video's thumbnail of it,
    None if it has no such frame). Where the first frames differ, a frame folder's frames saved by name
    (`thumbnails_spread`) that are still there and look alike tell its own first frames deleted (a session-22
    finding: its work was set aside). Workspaces from before the state file kept either are taken as they are."""
    state = read_json(root / STATE_FILE)
    state = state if isinstance(state, dict) else {}
    saved, before = state.get("thumbnail"), state.get("picture")
    differs = isinstance(before, str) and before != picture
    if isinstance(saved, str) and len(saved) == len(thumbnail):
        try:
            differs = thumbnails_differ(saved, thumbnail)
            if not differs and flat(saved) and flat(thumbnail):
                differs = _named_differ(str(state.get("thumbnail_later") or ""), later) is True
            elif differs:
                differs = _named_differ(str(state.get("thumbnails_spread") or ""), later) is not False
        except ValueError:  # hand-edited: not hex
            pass
    return differs and locks.holder(root / LOCK_FILE) is None


def same_first_pictures(state: dict, thumbnail: str, later: Callable[[str], str | None]) -> bool:
    """Whether a saved state's video began with the picture `thumbnail` shows (where both are `flat`, the later
    frame the state names looks alike too): positive evidence only, so a state without thumbnails is not. A
    video file whose frame count changed is then the same recording, cut short before or completed since (QA
    pass 101: the complete download of a video opened cut short had its work set aside) where it has more now."""
    saved = state.get("thumbnail")
    if not isinstance(saved, str) or len(saved) != len(thumbnail):
        return False
    try:
        if thumbnails_differ(saved, thumbnail):
            return False
        if flat(saved) or flat(thumbnail):
            return _named_differ(str(state.get("thumbnail_later") or ""), later) is False
    except ValueError:  # hand-edited: not hex
        return False
    return True


def _named_differ(named: str, now: Callable[[str], str | None]) -> bool | None:
    """Whether the frames that `named` ('name:thumbnail', a line each) gives look otherwise now (`now(name)`):
    True if one does, False if all that this video has look alike, None if it has none of them."""
    compared = []
    for item in named.splitlines():
        name, _, then = item.rpartition(":")
        seen = now(name) if name else None
        if seen is not None and len(seen) == len(then):
            compared.append(thumbnails_differ(then, seen))
    return any(compared) if compared else None


def move_workspace(old: Path, new: Path) -> Path:
    """Move workspace `old` to `new` (copied under a temporary name first, so an interrupted move leaves no
    half workspace at `new`); returns where the workspace is now. One that a window has open stays where it
    is (QA pass 15: a refused second window had moved it away from under the first, whose strokes were lost)."""
    if locks.holder(old / LOCK_FILE) is not None:
        return old
    temporary = new.with_name(new.name + ".moving")
    try:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.copytree(old, temporary)
        if new.exists():
            new.rmdir()  # only ever the empty folder of the writability probe: rmdir refuses anything else
        temporary.rename(new)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        return old
    shutil.rmtree(old, ignore_errors=True)  # a copy that cannot be removed (read-only place) is left behind
    return new


def _writable(folder: Path) -> bool:
    """Try for real: permission bits say nothing when running as root or on a read-only mount."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / ".probe", b"")
        (folder / ".probe").unlink()
        return True
    except OSError:
        return False
