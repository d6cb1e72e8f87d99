"""Many frames' label maps held compressed, for reading a whole mask folder of a long video.

A 1080p label map is 2 MB as an array and about 20 KB zlib'd: a folder of 2,000 such masks took 8 GB while the
application imported it (and a ten-minute video's would not fit at all). Masks stay packed from reading until
each is handed on, one at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, MutableMapping

import cv2
import numpy as np


def labels_present(labels: np.ndarray) -> frozenset[int]:
    """The labels a uint8 label map holds, background included (OpenCV's histogram: much faster than
    `np.unique` on a 1080p map)."""
    counts = cv2.calcHist([np.ascontiguousarray(labels, np.uint8)], [0], None, [256], [0, 256]).ravel()
    return frozenset(int(v) for v in np.flatnonzero(counts))


class PackedMasks(MutableMapping[int, np.ndarray]):
    """frame index -> uint8 label map, stored compressed with the labels each holds; iterates in frame order.
    Reading an item gives a fresh array."""

    def __init__(self, masks: Iterable[tuple[int, np.ndarray]] = ()) -> None:
        self._packed: dict[int, tuple[bytes, tuple[int, int], frozenset[int]]] = {}
        for index, labels in masks:
            self[index] = labels

    def __setitem__(self, index: int, labels: np.ndarray) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"a label map is 2-D, got shape {labels.shape}")
        if labels.dtype != np.uint8 and labels.size and (labels.min() < 0 or labels.max() > 255
                                                          or not np.array_equal(labels, np.round(labels))):
            raise ValueError(f"labels are whole numbers 0..255, got {labels.dtype} values "
                             f"{labels.min()}..{labels.max()}")  # a cast would wrap 256 to 0 (QA pass 27)
        labels = np.ascontiguousarray(labels, np.uint8)
        self._packed[int(index)] = (zlib.compress(labels.tobytes(), 1), labels.shape, labels_present(labels))

    def __getitem__(self, index: int) -> np.ndarray:
        data, shape, _ = self._packed[index]
        return np.frombuffer(zlib.decompress(data), np.uint8).reshape(shape).copy()

    def __delitem__(self, index: int) -> None:
        del self._packed[index]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._packed))

    def __len__(self) -> int:
        return len(self._packed)

    def __contains__(self, index: object) -> bool:
        return index in self._packed

    def objects(self, index: int) -> frozenset[int]:
        """The object labels (not 0) of frame `index`'s mask, without unpacking it."""
        return self._packed[index][2] - {0}

    def subset(self, indices: Iterable[int]) -> "PackedMasks":
        """These frames' masks (present ones only), sharing their packed data."""
        out = PackedMasks()
        out._packed = {i: self._packed[i] for i in indices if i in self._packed}
        return out

    def mapped(self, change: Callable[[int, np.ndarray], np.ndarray | None],
               progress: Callable[[int, int], None] | None = None) -> "PackedMasks":
        """Each mask passed through `change(index, labels)`, one at a time (None leaves the frame out), with
        `progress(done, total)` after each."""
        out = PackedMasks()
        for done, index in enumerate(self, 1):
            labels = change(index, self[index])
            if labels is not None:
                out[index] = labels
            if progress is not None:
                progress(done, len(self))
        return out
