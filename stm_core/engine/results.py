"""Per-frame results kept compactly: label maps and per-object soft probabilities as zlib'd uint8.

A 480p label map compresses about 50x; probabilities are kept at the network's working size and compressed,
so 10,000 frames of results fit in RAM. Entries are replaced whole: a reader never sees half a result.
"""

from __future__ import annotations

import itertools
import os
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .frame_outputs import boundary_uncertainty, winner


@dataclass(frozen=True)
class StoredResult:
    """One frame's result as stored, never changed once made (a new result replaces it whole), so a reference to
    it is a snapshot that costs nothing to keep."""

    shape: tuple[int, int]
    labels: Packed
    probs: Packed | None
    probs_shape: tuple[int, int]
    obj_ids: tuple[int, ...]
    uncertainty: float
    origin: tuple[int, str, tuple] | None  # (start frame, digest of its annotation, FrameResult.network)
    areas: tuple[tuple[int, int], ...]  # (label, pixels) of every label present, background included
    serial: int  # unique to this entry: an unchanged serial means the frame's result was not replaced
    own: tuple[Packed, float] | None = None  # where this is a blend of two runs: its run's own (probs, uncertainty)

    @property
    def nbytes(self) -> int:
        return sum(len(part) for packed in (self.labels, self.probs, self.own and self.own[0]) if packed
                   for part in packed)

    def label_map(self) -> np.ndarray:
        return _unpack(self.labels, self.shape)

    def soft_maps(self) -> np.ndarray | None:
        """uint8 [K,h,w] for `obj_ids` at the size they were stored, None without soft maps (a fresh array)."""
        return None if self.probs is None else _unpack(self.probs, (len(self.obj_ids),) + self.probs_shape)

    def own_maps(self) -> np.ndarray | None:
        """Where this is a blend of two runs, the soft maps of its run alone (as `soft_maps`), else None."""
        return None if self.own is None else _unpack(self.own[0], (len(self.obj_ids),) + self.probs_shape)


Packed = tuple[bytes, ...]
"""A uint8 array's bytes, zlib'd in consecutive parts of up to `PART_BYTES` (one part for a small array)."""

PART_BYTES = 1 << 16
"""Label and soft maps are compressed in parts of this size side by side (zlib lets go of the GIL while it
compresses): on the H200's host, one 480p object's soft maps took about 9 ms to compress whole, on the thread
that stores the results, and bound propagation to about 90 frames per second there."""


MIN_PACKING_CORES = 4
"""With fewer usable cores the parts are compressed on the storing thread: on a busy 2-core machine the packing
threads only added their own cost (QA pass 109: 3.9 against 3.5 ms to store one 480p object)."""


def _usable_cores() -> int:
    """Cores this process may run on (its affinity, where the system tells it), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class _Packers:
    """The threads that compress parts, started when first needed where there are cores to spare, and anew in
    a forked child (which has none of its parent's threads)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._lock = None, threading.Lock()

    def compress(self, parts: list[memoryview]) -> list[Future] | Packed:
        """Each part zlib'd: started on the packing threads, or done here where there are none to use."""
        with self._lock:
            if self._pool is None and (cores := _usable_cores()) >= MIN_PACKING_CORES:
                self._pool = ThreadPoolExecutor(min(8, cores), thread_name_prefix="stm-pack")
            pool = self._pool
        if pool is not None:
            try:
                return [pool.submit(zlib.compress, part, 1) for part in parts]
            except RuntimeError:  # the interpreter is exiting and its pools take no more work (QA pass 109: a
                pass  # result stored from a thread that outlived the main one was lost)
        return tuple(zlib.compress(part, 1) for part in parts)


_PACKERS = _Packers()


def _parts(data: np.ndarray | None) -> list[Future] | Packed | None:
    """`data` (uint8) compressed: a small array at once, a large one's parts started on the packing threads."""
    if data is None:
        return None
    raw = memoryview(np.ascontiguousarray(data, np.uint8).reshape(-1))
    if len(raw) <= PART_BYTES:
        return (zlib.compress(raw, 1),)
    return _PACKERS.compress([raw[i:i + PART_BYTES] for i in range(0, len(raw), PART_BYTES)])


def _packed(parts: list[Future] | Packed | None) -> Packed | None:
    return parts if parts is None or isinstance(parts, tuple) else tuple(f.result() for f in parts)


def _unpack(packed: Packed, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape, np.uint8)
    flat, at = out.reshape(-1), 0
    for part in packed:
        chunk = np.frombuffer(zlib.decompress(part), np.uint8)
        flat[at:at + len(chunk)] = chunk
        at += len(chunk)
    if at != out.size:  # the parts of another shape, or some lost: never a result with garbage in its tail
        raise ValueError(f"a stored result holds {at} bytes where its shape {shape} needs {out.size}")
    return out


_SERIALS = itertools.count()  # shared by every store: copies keep their entries' serials


class ResultStore:
    """Mapping frame index -> (labels, soft probabilities, uncertainty); not thread-safe by itself."""

    def __init__(self) -> None:
        self._entries: dict[int, StoredResult] = {}
        # frame -> (serial of its provisional entry, the entry that one replaced): see `put` and `restore`
        self._replaced: dict[int, tuple[int, StoredResult]] = {}

    def put(self, index: int, labels: np.ndarray, probs: np.ndarray | None, obj_ids: list[int] | None = None,
            uncertainty: float = float("nan"), origin: tuple[int, str, tuple] | None = None,
            provisional: bool = False, own: tuple[np.ndarray, float] | None = None) -> None:
        """labels uint8 HxW; probs uint8 [K,h,w] for `obj_ids`, at any size (resized to HxW when read; None:
        derive hard 0/255 maps from labels); `origin`: the annotated frame a propagation came from, a digest
        of its annotation and the network that ran (None: imported or read back). A `provisional` result (a
        preview) keeps the last other result it replaced, for `restore`. `own`: where the result is a blend of
        two runs, the soft maps (as `probs`) and uncertainty of the run from `origin` alone (`unblended`)."""
        labels = np.ascontiguousarray(labels, dtype=np.uint8)
        parts = [_parts(a) for a in (labels, probs, None if own is None else own[0])]
        areas = label_areas(labels)  # while the parts are compressed
        z, pz, mine = (_packed(p) for p in parts)
        probs_shape = labels.shape if probs is None else probs.shape[1:]
        old = self._entries.get(index)
        new = self._entries[index] = StoredResult(labels.shape, z, pz, probs_shape,  # type: ignore[arg-type]
                                                  tuple(obj_ids or ()), uncertainty, origin, areas, next(_SERIALS),
                                                  None if own is None else (mine, own[1]))  # type: ignore[arg-type]
        kept = self._replaced.pop(index, None)
        if provisional:
            replaced = kept[1] if kept is not None and old is not None and kept[0] == old.serial else old
            if replaced is not None:
                self._replaced[index] = (new.serial, replaced)

    def restore(self, index: int) -> bool:
        """Give the frame back the result its provisional one replaced, if that is still its result."""
        kept = self._replaced.pop(index, None)
        e = self._entries.get(index)
        if kept is None or e is None or e.serial != kept[0]:
            return False
        self._entries[index] = kept[1]
        return True

    def copy(self) -> "ResultStore":
        """An independent store with the same results (entries are immutable, so they are shared)."""
        store = ResultStore()
        store._entries = dict(self._entries)
        store._replaced = dict(self._replaced)
        return store

    def has(self, index: int) -> bool:
        return index in self._entries

    def origin(self, index: int) -> tuple[int, str, tuple] | None:
        """Where the frame's result was propagated from (see `put`), None if unknown or no result."""
        e = self._entries.get(index)
        return None if e is None else e.origin

    def serial(self, index: int) -> int | None:
        """A number unique to the frame's current result (None without one): it changes whenever the result is
        replaced, by whatever means."""
        e = self._entries.get(index)
        return None if e is None else e.serial

    def uncertainty(self, index: int) -> float:
        e = self._entries.get(index)
        return float("nan") if e is None else e.uncertainty

    def entry(self, index: int) -> StoredResult | None:
        """The frame's result as stored (a snapshot: see `StoredResult`), None without one."""
        return self._entries.get(index)

    def labels(self, index: int) -> np.ndarray | None:
        e = self._entries.get(index)
        return None if e is None else e.label_map()

    def probability(self, index: int, obj_id: int) -> np.ndarray | None:
        e = self._entries.get(index)
        if e is None:
            return None
        if e.probs is None or obj_id not in e.obj_ids:
            labels = self.labels(index)
            return (labels == obj_id).astype(np.uint8) * 255  # type: ignore[union-attr]
        prob = e.soft_maps()[e.obj_ids.index(obj_id)]  # type: ignore[index]
        if prob.shape != e.shape:
            return cv2.resize(prob, e.shape[::-1], interpolation=cv2.INTER_LINEAR)
        return prob

    def unblended(self, index: int) -> tuple[tuple[int, str, tuple] | None, tuple[list[int], np.ndarray] | None,
                                             float] | None:
        """(origin, soft as `soft` gives it, uncertainty) of the run the frame's result came from, alone where
        it is a blend of two runs: what another run's result is blended with (QA pass 35: blending with the
        blend kept the result from before a correction at a weight of t(1-t), a quarter midway). None without
        a result."""
        e = self._entries.get(index)
        if e is None:
            return None
        if e.own is None:
            return e.origin, self.soft(index), e.uncertainty
        return e.origin, (list(e.obj_ids), e.own_maps()), e.own[1]  # type: ignore[return-value]

    def soft(self, index: int) -> tuple[list[int], np.ndarray] | None:
        """(object ids, uint8 [K,h,w] soft maps at the size they were stored), None without soft maps."""
        e = self._entries.get(index)
        maps = None if e is None else e.soft_maps()
        return None if maps is None else (list(e.obj_ids), maps)  # type: ignore[union-attr]

    def areas(self) -> dict[int, dict[int, int]]:
        """Frame -> {label: pixels} of every stored result (counted when stored, so this reads no mask)."""
        return {i: dict(e.areas) for i, e in self._entries.items()}

    def uncertainty_array(self, num_frames: int) -> np.ndarray:
        out = np.full(num_frames, np.nan, dtype=np.float32)
        for i, e in self._entries.items():
            if i < num_frames:
                out[i] = e.uncertainty
        return out

    def remove_label(self, obj_id: int) -> None:
        """Erase one object from every stored result (its pixels become background); results replaced by
        provisional ones, which may hold it, are let go."""
        self._replaced.clear()
        for i, e in list(self._entries.items()):
            if obj_id not in dict(e.areas) and obj_id not in e.obj_ids:  # counted when stored: nothing to unpack
                continue
            labels = e.label_map()
            labels[labels == obj_id] = 0
            probs, ids, uncertainty = None, [o for o in e.obj_ids if o != obj_id], e.uncertainty
            if e.probs is not None and ids:
                probs = e.soft_maps()[[e.obj_ids.index(o) for o in ids]]  # type: ignore[index]
                uncertainty = _uncertainty(probs)  # the removed object's boundaries no longer count
            elif e.probs is not None:
                uncertainty = float("nan")
            self.put(i, labels, probs, ids, uncertainty, e.origin)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())


def label_areas(labels: np.ndarray) -> tuple[tuple[int, int], ...]:
    """(label, pixels) of each label in a uint8 label map (OpenCV's histogram: 3x NumPy's bincount here)."""
    counts = cv2.calcHist([labels], [0], None, [256], [0, 256]).ravel()
    return tuple((int(label), int(counts[label])) for label in np.flatnonzero(counts))


def _uncertainty(probs: np.ndarray) -> float:
    """Boundary uncertainty (as propagation computes it) of stored soft maps uint8 [K,h,w]: the background
    has what the objects leave."""
    objects = torch.from_numpy(probs.astype(np.float32) / 255)
    full = torch.cat([(1 - objects.sum(0, keepdim=True)).clamp_min(0), objects])
    return float(boundary_uncertainty(full, winner(full)))
