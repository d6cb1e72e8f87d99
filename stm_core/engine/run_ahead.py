"""Run a generator on the engine's network thread, a few items ahead of the one consuming it."""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar


from .hardware import caller_threads, prepare_compute_thread

T = TypeVar("T")
_END = object()
EXIT_WAIT_S = 600.0
"""How long a process ending waits for the network thread's job (one adaptation step took 35 s on a busy CPU)."""


class _NetworkThread:
    """One long-lived daemon thread that runs jobs one after another.

    Long-lived because cuDNN keeps its autotuned convolution plans per thread (`cudnn.benchmark`): on a fresh
    thread per run, every run re-timed every convolution and could pick other kernels, so repeated runs of one
    video gave slightly different masks. One thread for the process also keeps two runs from sharing the device.
    """

    def __init__(self) -> None:
        self._start_afresh()
        # a forked child (e.g. a DataLoader worker) has no copy of the thread: it starts its own when it needs one
        os.register_at_fork(after_in_child=self._start_afresh)
        atexit.register(self.wait_idle, EXIT_WAIT_S)

    def _start_afresh(self) -> None:
        self._jobs: queue.Queue[Callable[[], None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="stm-network", daemon=True)
                self._thread.start()
            self._pending += 1
        self._jobs.put(job)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted so far has returned; whether they had by `timeout` seconds.

        Run at exit: a job left running there (an adaptation step a cancelled run abandoned, which returns on its
        own later) came back from torch's native code into a finalizing interpreter, which ended the thread
        inside C++ frames: "terminate called without an active exception", exit code 134 (QA pass 39)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()


NETWORK_THREAD = _NetworkThread()


def run_ahead(items: Generator[T, None, None], depth: int) -> Iterator[T]:
    """Yield what `items` yields, computed on the network thread at most `depth` items ahead.

    The propagation loop only queues work (on a GPU it never waits for it), while its consumer stores each
    result (compression, callbacks): on separate threads the two overlap instead of taking turns. The worker
    runs with the caller's intra-op thread count and denormals flushed; an exception in it is raised here;
    closing this iterator stops the worker after its current item and closes `items` on the network thread.
    """
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    finished = threading.Event()
    threads = caller_threads()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                out.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        error: BaseException | None = None
        try:
            prepare_compute_thread(threads)
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            error = exc
        finally:
            items.close()
            finished.set()
        put((_END, error))

    NETWORK_THREAD.submit(work)
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
        while not finished.is_set():  # while it captures a CUDA graph); taking them unblocks its put
            try:
                unread.append(out.get(timeout=0.05))
            except queue.Empty:
                pass
        del unread


def on_network_thread(job: Callable[[Callable[[], bool]], T], cancel: threading.Event | None = None) -> T | None:
    """`job(abandoned)` run on the network thread as `run_ahead` runs its items (the caller's intra-op thread
    count, denormals flushed), the caller waiting for it; an exception in it is raised here. If the wait itself
    is interrupted (Ctrl+C), `abandoned()` turns True, the caller waits for the job to notice and return, and
    the interruption goes on. When `cancel` is set, `abandoned()` turns True and None comes back at once: the
    job stops at its next check on its own, and later jobs wait for it there (QA pass 22: an adaptation step
    of 35 s held the window that waited for a cancelled run). Not for use from the network thread itself,
    which would wait for itself."""
    threads = caller_threads()
    abandoned, done = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            prepare_compute_thread(threads)
            outcome["value"] = job(abandoned.is_set)
        except BaseException as exc:  # handed to the caller, raised there
            outcome["error"] = exc
        finally:
            done.set()

    NETWORK_THREAD.submit(work)
    try:
        while not done.wait(None if cancel is None else 0.05):
            if cancel is not None and cancel.is_set():
                abandoned.set()
                return None
    except BaseException:
        abandoned.set()
        done.wait()
        raise
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
