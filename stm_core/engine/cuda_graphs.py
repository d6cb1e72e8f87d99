"""CUDA graphs of the network's per-frame calls, for propagation on a GPU.

On a fast GPU a propagated frame is bound by the host, not the card: at 480p the network's three calls launch
some 400 small kernels (on an H100: 17,000 launches and 94 ms of GPU work for 39 frames, against 1.5 s of
wall time), each costing microseconds of Python and driver time. Replaying a captured graph launches them all
at once. The query encoder, the memory encoder and the decoder have the same shapes on every frame of a
video, so each is captured once per input shape; the memory read, whose size grows with the memory, stays
eager (a few kernels). Inputs are copied into the graph's own buffers and outputs copied out, so callers keep
plain tensors (cached query features, memory-bank entries) that no later replay can overwrite.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Hashable, Sequence

import torch

from ..model.stm import STM, QueryFeatures

_Fn = Callable[..., tuple[torch.Tensor, ...]]

CAPTURE_LOCK = threading.Lock()
"""Held while a graph is captured. A capture fails if another thread frees device memory meanwhile, so other
threads take it around such calls (the GUI's "Clear memory" empties the CUDA cache during a run)."""


class _Graph:
    """One captured call: fixed input buffers, the graph, and the output tensors its replays write."""

    def __init__(self, fn: _Fn, inputs: Sequence[torch.Tensor], pool: tuple[int, int]) -> None:
        self.fn = fn  # keeps alive the tensors the graph reads besides its inputs (weights, lookup tables)
        self.inputs = [x.clone() for x in inputs]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture: cuDNN picks its kernels, workspaces exist
            for _ in range(2):
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with CAPTURE_LOCK, torch.cuda.graph(self.graph, pool=pool):
            self.outputs = fn(*self.inputs)

    def __call__(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        for buffer, x in zip(self.inputs, inputs):
            buffer.copy_(x)
        self.graph.replay()
        return tuple(o.clone() for o in self.outputs)


class GraphedNetwork:
    """`model`'s encode_query / memorize / segment, the same results, replayed from CUDA graphs.

    Graphs share one memory pool: replays run one after another on one stream and every output is copied out
    at once, so no replay can clobber what another still needs. If a capture fails (an unusual driver, too
    little memory), the network runs eagerly from then on, with one warning.
    """

    def __init__(self, model: STM) -> None:
        self.model = model
        self._graphs: dict[tuple, _Graph] = {}
        self._pool = torch.cuda.graph_pool_handle()
        self._failed = False

    def call(self, name: Hashable, fn: _Fn, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """`fn(*inputs)` (a tuple of tensors), from a graph captured on the first call with these input
        shapes. `name` stands for `fn` and everything it reads besides `inputs`: a call with the same name and
        shapes replays the graph captured then."""
        with self._autocast():
            return self._run(name, fn, inputs)

    def _run(self, name: Hashable, fn: _Fn, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if self._failed:
            return fn(*inputs)
        key = (name,) + tuple((x.shape, x.dtype, x.stride()) for x in inputs)
        graph = self._graphs.get(key)
        if graph is None:
            try:
                graph = self._graphs[key] = _Graph(fn, inputs, self._pool)
            except RuntimeError as exc:
                self._failed = True
                self._graphs.clear()
                warnings.warn(f"CUDA graph capture failed, propagating without graphs: {exc}", stacklevel=3)
                return fn(*inputs)
        return graph(inputs)

    @staticmethod
    def _autocast() -> torch.autocast:
        # the autocast weight cache is freed when its context exits: a captured graph must not read from it
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.is_autocast_enabled("cuda"),
                              cache_enabled=False)

    def encode_query(self, frame: torch.Tensor) -> QueryFeatures:
        def fn(f: torch.Tensor) -> tuple[torch.Tensor, ...]:
            q = self.model.encode_query(f)
            return q.key, q.value, q.skip3, q.skip2
        return QueryFeatures(*self.call("query", fn, [frame]))

    def memorize(self, frame: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, value = self.call("memorize", self.model.memorize, [frame, probs])
        return key, value

    def segment(self, query: QueryFeatures, mem_key: torch.Tensor, mem_value: torch.Tensor) -> torch.Tensor:
        def decode(read: torch.Tensor, key: torch.Tensor, value: torch.Tensor, skip3: torch.Tensor,
                   skip2: torch.Tensor) -> tuple[torch.Tensor]:
            return (self.model.decode(QueryFeatures(key, value, skip3, skip2), read),)
        with self._autocast():
            read = self.model.read(query, mem_key, mem_value)
            return self._run("decode", decode, [read, query.key, query.value, query.skip3, query.skip2])[0]
