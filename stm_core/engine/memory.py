"""The STM memory bank: annotated frames (permanent) plus every N-th propagated frame, bounded by a cap."""

from __future__ import annotations

from collections import OrderedDict

import torch


class MemoryBank:
    """Keys/values of memory frames for the objects of one propagation run.

    Annotated frames are permanent and never evicted (`annotated_memory` chooses at most `max_frames` of them).
    The run adds a propagated frame every `mem_every` frames; once the bank holds `max_frames`, the oldest
    propagated entry is evicted, so memory stays bounded on any video length and any number of annotated frames.
    The previous frame is a temporary entry (as in the official inference loop): it is read together with the
    bank but replaced at every step.
    """

    def __init__(self, max_frames: int) -> None:
        if max_frames < 1:
            raise ValueError("max_frames must be at least 1")
        self.max_frames = max_frames
        self._permanent: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._propagated: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._temporary: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def add_permanent(self, index: int, key: torch.Tensor, value: torch.Tensor) -> None:
        if index not in self._permanent and len(self._permanent) >= self.max_frames:
            raise ValueError(f"memory holds {self.max_frames} annotated frames already: choose them with "
                             "annotated_memory")
        self._permanent[index] = (key, value)

    def add_propagated(self, index: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Adds a propagated frame, evicting the oldest propagated ones beyond the cap."""
        self._propagated[index] = (key, value)
        while self._propagated and len(self._permanent) + len(self._propagated) > self.max_frames:
            self._propagated.popitem(last=False)

    def set_temporary(self, index: int, key: torch.Tensor, value: torch.Tensor) -> None:
        self._temporary = (index, key, value)

    def copy(self) -> "MemoryBank":
        """The bank as it is now, kept as it is while this one goes on (entries are never changed in place, so
        they are shared)."""
        bank = MemoryBank(self.max_frames)
        bank._permanent, bank._propagated = self._permanent.copy(), self._propagated.copy()
        bank._temporary = self._temporary
        return bank

    def _entries(self) -> list[tuple[int, tuple[torch.Tensor, torch.Tensor]]]:
        """(frame, (key, value)) of what a read uses now: permanent, propagated, then the temporary frame unless
        it is one of them."""
        entries = list(self._permanent.items()) + list(self._propagated.items())
        if self._temporary is not None and self._temporary[0] not in self._permanent \
                and self._temporary[0] not in self._propagated:
            entries.append((self._temporary[0], self._temporary[1:]))
        return entries

    def frame_indices(self) -> list[int]:
        """Memory frames a read would use now, in the order `stacked` stacks them."""
        return [index for index, _ in self._entries()]

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys [N,Ck,T,h,w] and values [N,Cv,T,h,w] of all memory frames, ready for the memory read."""
        entries = [kv for _, kv in self._entries()]
        if not entries:
            raise RuntimeError("memory is empty: nothing to propagate from")
        return torch.stack([k for k, _ in entries], 2), torch.stack([v for _, v in entries], 2)


def annotated_memory(annotated: list[int], start: int, max_frames: int) -> list[int]:
    """The annotated frames (sorted) a run from `start` memorises: all of them while they fit the cap. Past it,
    the start's own annotation, the first one (the paper's memory always holds it) and those nearest the start,
    where the run's frames are: each memory frame costs every frame's read, so 600 imported annotations must
    not make a 600-frame read."""
    if len(annotated) <= max_frames:
        return list(annotated)
    chosen = list(dict.fromkeys(i for i in (start, annotated[0]) if i in annotated))  # the start's before all
    chosen += sorted((i for i in annotated if i not in chosen), key=lambda i: (abs(i - start), i))
    return sorted(chosen[:max_frames])
