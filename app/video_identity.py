"""What a video looks like and what its files are, kept in its workspace: they tell the same video at another
path (moved or renamed: its work is found again) from another video at the same path or named alike (every DAVIS
sequence is 00000.jpg...), also re-encoded, graded, or fading in from black.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

import cv2
import numpy as np

from stm_core.errors import StmError

if TYPE_CHECKING:
    from stm_core.session import AnnotationSession

LATER_FRAMES = 120
"""How far a flat first frame (a fade from black) is followed for a frame with a picture, kept to tell videos
apart (QA pass 44: a fixed frame 30 was black too after a long fade, and moved when a frame before it went)."""
SPREAD_FRAMES = 3
"""Frames of a folder whose thumbnails are kept by name: where its first frames were deleted, they tell its work."""


def video_fingerprints(session: AnnotationSession) -> tuple[str, ...]:
    """The video's fingerprint (first frame and files), then the first frame's alone, as workspaces of
    earlier versions hold it, then its `frame_thumbnail`, then 'name:thumbnail' of the first frame with a
    picture where the first is `flat` (a fade from black) else '', then, for a frame folder, 'name:thumbnail'
    of those frames spread over it (`SPREAD_FRAMES`) that are not `flat`, a line each; none if the first
    frame cannot be read (the video still opens, and says so when the frame is shown)."""
    try:
        first = session.frame(0)
    except StmError:
        return ()
    thumbnail, later = frame_thumbnail(first), ""
    for index in range(1, min(session.num_frames, LATER_FRAMES + 1)) if flat(thumbnail) else ():
        if (seen := thumbnail_at(session, index)) is None:
            break
        later = f"{session.frame_names[index]}:{seen}"
        if not flat(seen):  # the first frame with a picture, named: a frame deleted before it moves it
            break
    n, names = session.num_frames, session.frame_names
    spread = [(names[i], thumbnail_at(session, i))
              for i in sorted({n * k // (SPREAD_FRAMES + 1) for k in range(1, SPREAD_FRAMES + 1)} - {0})
              ] if session.source_path.is_dir() else []
    return (frame_fingerprint(first, source_files(session)), frame_fingerprint(first), thumbnail, later,
            "\n".join(f"{name}:{seen}" for name, seen in spread if seen is not None and not flat(seen)))


def thumbnail_of(session: AnnotationSession, name: str) -> str | None:
    """`frame_thumbnail` of the frame called `name`, None if the video has none or it cannot be read."""
    try:
        index = session.frame_names.index(name)
    except ValueError:
        return None
    return thumbnail_at(session, index)


def thumbnail_at(session: AnnotationSession, index: int) -> str | None:
    """`frame_thumbnail` of frame `index`, None if it cannot be read (callers that know the index need not
    look its name up among every frame's)."""
    try:
        return frame_thumbnail(session.frame(index))
    except StmError:
        return None


def frame_fingerprint(frame: np.ndarray, files: str = "") -> str:
    """A digest of how a frame looks (a 16x9 thumbnail, coarsely quantised, so that a decoder's rounding
    does not change it). With the frame names, count and size it tells the same video at another path
    apart from another video whose files are named alike (every DAVIS sequence is 00000.jpg...). `files`
    (`source_files`) adds what the video's files are, since first frames can look alike (QA pass 18: two
    clips that fade in from black shared one, and the second took over the first one's moved work)."""
    return hashlib.sha1((_shrunk(frame) // 32).astype(np.uint8).tobytes() + files.encode()).hexdigest()


def frame_thumbnail(frame: np.ndarray) -> str:
    """The frame shrunk to 16x9 (RGB), as hex: kept in the workspace to tell its video's first frame, also
    re-encoded, from another video's (`thumbnails_differ`)."""
    return _shrunk(frame).astype(np.uint8).tobytes().hex()


def _shrunk(frame: np.ndarray) -> np.ndarray:
    """The 16x9 picture both `frame_fingerprint` and `frame_thumbnail` are made from."""
    return cv2.resize(np.ascontiguousarray(frame), (16, 9), interpolation=cv2.INTER_AREA)


def thumbnails_differ(a: str, b: str) -> bool:
    """Whether two `frame_thumbnail`s show different pictures: their patterns (each colour channel less its
    mean) correlate under 0.8. A re-encoding, a grading or a fade leave 0.95 or more on the ten shared DAVIS
    sequences, another sequence's first frame at most 0.56, also both darkened to a fifth (QA pass 42: a mean
    difference took two videos fading in from black for one). `flat` pictures (black) are told by brightness
    alone. ValueError for one that is not hex."""
    x, y = (_pattern(t) for t in (a, b))
    if _is_flat(x) or _is_flat(y):
        return bool(np.abs(x.mean(axis=0) - y.mean(axis=0)).max() > 12)
    dx, dy = x - x.mean(axis=0), y - y.mean(axis=0)
    return float((dx * dy).sum()) / float(np.sqrt((dx * dx).sum() * (dy * dy).sum())) < 0.8


def flat(thumbnail: str) -> bool:
    """Whether a `frame_thumbnail` shows (almost) no pattern, a black or one-colour frame: it cannot tell videos
    apart, so a later frame is kept to tell them (QA pass 43: two clips fading in from black were one)."""
    return _is_flat(_pattern(thumbnail))


def _pattern(thumbnail: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(thumbnail), np.uint8).reshape(-1, 3).astype(np.float64)


def _is_flat(x: np.ndarray) -> bool:
    return float(((x - x.mean(axis=0)) ** 2).mean()) < 3.0 ** 2


def source_files(session: AnnotationSession) -> str:
    """What a video's files are: their sizes and a digest of bytes sampled across them (eight places spread over a
    video file; eight frames spread over a folder). A moved video keeps them; another video does not, also where
    sizes alone agree (QA pass 19: uncompressed frames of one size) and where both clips fade in, out or
    through black (QA pass 20: the middle and last frames alike). "" if they cannot be read."""
    digest = hashlib.sha1()
    try:
        if session.source_path.is_file():
            with session.source_path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                for k in range(_SAMPLES):
                    f.seek(size * k // _SAMPLES)
                    digest.update(f.read(_SAMPLE_BYTES))
            return f"{size}:{digest.hexdigest()}"
        files = [session.source_path / session.frame_file_name(i) for i in range(session.num_frames)]
        for index in sorted({len(files) * k // _SAMPLES for k in range(_SAMPLES)} | {len(files) - 1}):
            with files[index].open("rb") as f:
                digest.update(f.read(_SAMPLE_BYTES))
        return ",".join(str(f.stat().st_size) for f in files) + ":" + digest.hexdigest()
    except OSError:
        return ""


_SAMPLES, _SAMPLE_BYTES = 8, 1 << 18
