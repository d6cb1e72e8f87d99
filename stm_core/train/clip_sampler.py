"""The training clip format and a sampler that mixes clip sources into batches.

Sources (`SyntheticClips`, `DavisClips`, ...) only need `sample(rng) -> Clip` plus `size`, `frames` and
`max_objects` attributes. The sampler draws each batch element from a source chosen by weight, caps the
object count at a fixed per-batch maximum (the trainer one-hots labels into that many channels) and
stacks into tensors. `ClipBatchStream` wraps it as an infinite, picklable `IterableDataset` for a
`DataLoader` with workers; `BackgroundIterator` runs any iterator in a thread instead.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import cv2
import numpy as np
import torch

__all__ = ["Clip", "ClipSource", "Batch", "ClipSampler", "ClipBatchStream", "BackgroundIterator"]


@dataclass
class Clip:
    """One training clip. Frame 0 is the annotated memory frame: every object 1..num_objects is visible
    in labels[0]; later frames may lose an object (occlusion, leaving the view)."""

    frames: np.ndarray  # float32 [T, 3, H, W], RGB in [0, 1]
    labels: np.ndarray  # uint8 [T, H, W], 0 = background, 1..num_objects
    num_objects: int


class ClipSource(Protocol):
    """Anything that can produce training clips of a fixed size and length."""

    size: tuple[int, int]
    frames: int
    max_objects: int

    def sample(self, rng: np.random.Generator | None = None) -> Clip: ...


class Batch(NamedTuple):
    frames: torch.Tensor  # float32 [B, T, 3, H, W]
    labels: torch.Tensor  # int64 [B, T, H, W]
    num_objects: list[int]


class ClipSampler:
    """Weighted mixture of clip sources producing stacked batches.

    `max_objects` (default: the largest of the sources') is the fixed per-batch object count; objects
    numbered above it are turned into background so that every batch fits the model's channel count.
    """

    def __init__(
        self,
        sources: Sequence[tuple[ClipSource, float]],
        seed: int = 0,
        max_objects: int | None = None,
    ) -> None:
        if not sources:
            raise ValueError("ClipSampler needs at least one source")
        weights = np.array([w for _, w in sources], float)
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(f"source weights must be non-negative with a positive sum, got {weights}")
        shapes = {(tuple(s.size), s.frames) for s, _ in sources}
        if len(shapes) != 1:
            raise ValueError(f"all sources must share size and frame count, got {shapes}")
        self.sources = [s for s, _ in sources]
        self.size, self.frames = shapes.pop()
        self.weights = weights / weights.sum()
        self.max_objects = max_objects or max(s.max_objects for s in self.sources)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def sample(self, rng: np.random.Generator | None = None) -> Clip:
        """One clip from a source picked by weight, objects capped at `max_objects`."""
        rng = self._rng if rng is None else rng
        source = self.sources[rng.choice(len(self.sources), p=self.weights)]
        clip = source.sample(rng)
        if clip.num_objects > self.max_objects:
            lut = np.arange(256, dtype=np.uint8)
            lut[self.max_objects + 1:] = 0
            clip = Clip(clip.frames, lut[clip.labels], self.max_objects)
        return clip

    def batch(self, batch_size: int, rng: np.random.Generator | None = None) -> Batch:
        """`batch_size` clips stacked as (frames [B,T,3,H,W] float32, labels [B,T,H,W] long, counts)."""
        clips = [self.sample(rng) for _ in range(batch_size)]
        frames = torch.from_numpy(np.stack([c.frames for c in clips]))
        labels = torch.from_numpy(np.stack([c.labels for c in clips])).long()
        return Batch(frames, labels, [c.num_objects for c in clips])

    def batches(self, batch_size: int, seed: int | Sequence[int] | None = None) -> Iterator[Batch]:
        """Endless batches; with `seed` the stream is reproducible independently of `sample` calls."""
        rng = self._rng if seed is None else np.random.default_rng(seed)
        while True:
            yield self.batch(batch_size, rng)


class SharedInt:
    """An int that spawned DataLoader workers read live: the curriculum raises `DavisClips.max_skip` during a
    run, and recreating the loader instead (spawning workers that decode their frames again) cost the H100 runs
    6-13 s at each of its four stage changes, a sixth of a 4-minute run. Sources read it with `int(...)`."""

    def __init__(self, value: int) -> None:
        self._value = multiprocessing.get_context("spawn").Value("i", value)

    def __int__(self) -> int:
        return self._value.value

    def set(self, value: int) -> None:
        self._value.value = value


class ClipBatchStream(torch.utils.data.IterableDataset):
    """Endless batches for `DataLoader(stream, batch_size=None, num_workers=k)`.

    Each worker draws from its own generator seeded by (seed, worker id), so workers never repeat each
    other and a run is reproducible. Workers use one OpenCV/torch thread each to avoid oversubscribing
    the cores. Attributes changed on the sources afterwards reach worker processes only when the DataLoader is
    recreated, except values held in a `SharedInt` (the curriculum's `DavisClips.max_skip`).
    """

    def __init__(self, sampler: ClipSampler, batch_size: int, seed: int = 0) -> None:
        super().__init__()
        self.sampler = sampler
        self.batch_size = batch_size
        self.seed = seed

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id + 1
        if info is not None:
            cv2.setNumThreads(1)
            torch.set_num_threads(1)
            # When the loader is dropped, its worker may still be sending a batch from its queue's thread;
            # finalizing the interpreter then ends that thread inside torch's C++ pickling code, which aborts
            # the worker ("terminate called without an active exception") and the parent reports it killed
            # by SIGABRT. The batch is unwanted anyway: leave at once, without finalizing.
            atexit.register(os._exit, 0)
        return self.sampler.batches(self.batch_size, seed=[self.seed, worker])


class BackgroundIterator:
    """Runs an iterator in a daemon thread, keeping up to `depth` items ready.

    OpenCV and NumPy release the GIL in their kernels, so clip generation overlaps the training step
    without the cost of worker processes (and curriculum changes take effect immediately).
    """

    _DONE = object()

    def __init__(self, iterable: Iterator[Any], depth: int = 2) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterable,), daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        """Queue an item unless `close` was called first (then report False)."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, iterable: Iterator[Any]) -> None:
        try:
            for item in iterable:
                if not self._put(item):
                    return
        except BaseException as exc:  # re-raised in the consumer
            self._put(exc)
            return
        self._put(self._DONE)

    def __iter__(self) -> BackgroundIterator:
        return self

    def __next__(self) -> Any:
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is self._DONE:
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop the producer thread (it finishes the item it is building)."""
        self._stop.set()
        while not self._queue.empty():
            self._queue.get_nowait()
        self._thread.join(timeout=5)
