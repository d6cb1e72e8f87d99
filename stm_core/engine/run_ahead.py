"""Run a generator on a thread of its own, a few items ahead of the one consuming it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")
_END = object()


def run_ahead(items: Generator[T, None, None], depth: int, name: str = "stm-run-ahead") -> Iterator[T]:
    """Yield what `items` yields, computed on a worker thread at most `depth` items ahead.

    The propagation loop only queues work (on a GPU it never waits for it), while its consumer stores each
    result (compression, callbacks): on separate threads the two overlap instead of taking turns. The worker
    runs with the caller's intra-op thread count; an exception in it is raised here; closing this iterator
    stops the worker after its current item and closes `items` on its own thread.
    """
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    threads = torch.get_num_threads()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        torch.set_num_threads(threads)  # a per-thread setting under OpenMP
        error: BaseException | None = None
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            error = exc
        finally:
            items.close()
        put((_END, error))

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item, error = out.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        unread = []  # released only once the worker has stopped (a GPU result's buffers must not be freed
        while worker.is_alive():  # while the worker captures a CUDA graph); taking them unblocks its put
            try:
                unread.append(out.get(timeout=0.05))
            except queue.Empty:
                pass
        worker.join()
        del unread
