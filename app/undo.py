"""Per-frame undo/redo of mask edits, stored as zlib-compressed before/after patches of the changed rectangle.

Keeping compressed patches instead of whole label maps lets an annotator undo hundreds of strokes on 1080p
frames, and an import replace hundreds of annotated frames undoably, without the history outgrowing the video.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .painting import Rect

MAX_EDITS_PER_FRAME = 200


@dataclass(frozen=True)
class Edit:
    """One stroke (or imported mask): the rectangle it changed, its pixels before and after, and whether
    the frame was already an annotated frame before it (undoing the first edit makes it ordinary again)."""

    rect: Rect
    before: bytes  # the rectangle's labels, zlib-compressed (label maps shrink 20-100x)
    after: bytes
    was_annotated: bool

    @classmethod
    def capture(cls, before: np.ndarray, after: np.ndarray, rect: Rect, was_annotated: bool) -> "Edit":
        s = rect.slices()
        return cls(rect, zlib.compress(np.ascontiguousarray(before[s]).tobytes(), 1),
                   zlib.compress(np.ascontiguousarray(after[s]).tobytes(), 1), was_annotated)

    @classmethod
    def of_change(cls, before: np.ndarray, after: np.ndarray, was_annotated: bool) -> "Edit | None":
        """The edit that turns a whole label map `before` into `after` (an import, an erased object), kept to
        the rectangle of changed pixels; None if nothing changed."""
        changed = np.argwhere(before != after)
        if changed.size == 0:
            return None
        (y0, x0), (y1, x1) = changed.min(0), changed.max(0) + 1
        return cls.capture(before, after, Rect(int(x0), int(y0), int(x1), int(y1)), was_annotated)

    def objects(self) -> set[int]:
        """The ids of the objects whose pixels the edit changed (gained or lost)."""
        before, after = (np.frombuffer(zlib.decompress(p), np.uint8) for p in (self.before, self.after))
        changed = before != after
        return {int(i) for i in np.union1d(before[changed], after[changed]) if i}

    def undo_into(self, labels: np.ndarray) -> None:
        self._put(labels, self.before)

    def redo_into(self, labels: np.ndarray) -> None:
        self._put(labels, self.after)

    def _put(self, labels: np.ndarray, patch: bytes) -> None:
        region = labels[self.rect.slices()]
        region[...] = np.frombuffer(zlib.decompress(patch), np.uint8).reshape(region.shape)


@dataclass
class _FrameHistory:
    done: list[Edit] = field(default_factory=list)
    undone: list[Edit] = field(default_factory=list)


class UndoHistory:
    """Undo and redo stacks for each frame; a new edit on a frame clears that frame's redo stack."""

    def __init__(self, limit: int = MAX_EDITS_PER_FRAME) -> None:
        self._limit = limit
        self._frames: dict[int, _FrameHistory] = {}

    def push(self, frame: int, edit: Edit) -> None:
        history = self._frames.setdefault(frame, _FrameHistory())
        history.done.append(edit)
        history.undone.clear()
        del history.done[:-self._limit]

    def can_undo(self, frame: int) -> bool:
        history = self._frames.get(frame)
        return bool(history and history.done)

    def can_redo(self, frame: int) -> bool:
        history = self._frames.get(frame)
        return bool(history and history.undone)

    def take_undo(self, frame: int) -> Edit | None:
        """Pop the frame's last edit onto its redo stack and return it (None if nothing to undo)."""
        history = self._frames.get(frame)
        return self._move(history.done, history.undone) if history else None

    def take_redo(self, frame: int) -> Edit | None:
        """Pop the frame's last undone edit back onto its undo stack and return it (None if none)."""
        history = self._frames.get(frame)
        return self._move(history.undone, history.done) if history else None

    @staticmethod
    def _move(source: list[Edit], target: list[Edit]) -> Edit | None:
        if not source:
            return None
        edit = source.pop()
        target.append(edit)
        return edit

    def forget(self, frame: int) -> None:
        """Drop one frame's history (its mask was replaced wholesale, e.g. by an import)."""
        self._frames.pop(frame, None)

    def clear(self) -> None:
        self._frames.clear()
