"""The user's annotated frames, kept compressed, and the view of them a propagation run reads.

A 1080p label map is 2 MB as an array and tens of KB zlib'd: 600 annotated 1080p frames (a mask folder imported as
annotated frames) held 1.2 GB as arrays. What is read off an annotation again and again (its pixels per label on
every stroke and run, its digest on every run) is counted once when it is made, as annotations are replaced
whole, never changed (QA passes 26-27: counting them afresh cost seconds per stroke with 800 of them).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ..io.masks import mask_digest
from .results import label_areas


@dataclass(frozen=True, eq=False)
class Annotation:
    """One annotated frame's label map, compressed; `areas`: pixels per label (background included); `digest`:
    its `mask_digest`, which names it for the engine's caches, the results made from it and the application's
    key of the annotations."""

    packed: bytes
    shape: tuple[int, int]
    areas: Mapping[int, int]
    digest: str

    @staticmethod
    def of(labels: np.ndarray) -> Annotation:
        labels = np.ascontiguousarray(labels, np.uint8)
        shape = (int(labels.shape[0]), int(labels.shape[1]))
        return Annotation(zlib.compress(labels.tobytes(), 1), shape, dict(label_areas(labels)), mask_digest(labels))

    def labels(self) -> np.ndarray:
        """The label map (uint8 HxW), a fresh array."""
        return np.frombuffer(zlib.decompress(self.packed), np.uint8).reshape(self.shape).copy()

    def objects(self) -> list[int]:
        """The object labels it shows, ascending."""
        return sorted(o for o, n in self.areas.items() if o and n)


class Annotations(Mapping[int, np.ndarray]):
    """frame index -> label map of the annotated frames a run propagates from, each decoded when read (a fresh
    array), with its `digest`: a run holds no more of them as arrays than it works on at once."""

    def __init__(self, entries: Mapping[int, Annotation]) -> None:
        self._entries = dict(entries)

    @staticmethod
    def of(maps: Mapping[int, np.ndarray]) -> Annotations:
        """From plain label maps (a caller of the engine without a session)."""
        return maps if isinstance(maps, Annotations) else Annotations({i: Annotation.of(m) for i, m in maps.items()})

    def __getitem__(self, index: int) -> np.ndarray:
        return self._entries[index].labels()

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, index: object) -> bool:
        return index in self._entries

    def digest(self, index: int) -> str:
        return self._entries[index].digest

    def key(self) -> tuple[tuple[int, str], ...]:
        """((frame, mask digest), ...) of the annotated frames, in order: equal for equal annotations."""
        return tuple((i, self._entries[i].digest) for i in sorted(self._entries))

    def objects(self, up_to: int | None = None) -> list[int]:
        """The object labels any annotation shows (those of frames up to `up_to` only, if given), ascending."""
        return sorted({o for i, a in self._entries.items() if up_to is None or i <= up_to for o in a.objects()})
