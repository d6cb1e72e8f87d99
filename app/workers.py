"""Background work: long tasks on a QThread reporting through queued signals, and an ordered job thread.

The GUI thread never waits on the engine or the disk: propagation and export run as `Task`s whose progress
arrives as signals in the GUI thread, autosave hands its files to a `SerialJobs` thread, and the document
has a costly frame decoded on another.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from .errors import describe

Progress = Callable[..., None]
TaskFn = Callable[[Progress, threading.Event], Any]


class _Worker(QObject):
    """Runs one function on its thread; lives in that thread so its signals queue to the GUI thread."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, str)
    done = Signal()

    def __init__(self, fn: TaskFn, cancel: threading.Event) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = cancel

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(lambda *args: self.progress.emit(args), self._cancel)
        except BaseException as exc:  # reported to the user; the thread must always finish cleanly
            self.failed.emit(*describe(exc))
        else:
            self.succeeded.emit(result)
        finally:
            self.done.emit()


class Task(QObject):
    """A function `fn(progress, cancel)` running on its own QThread.

    `progress(*args)` calls inside `fn` arrive as `progress(tuple)` in the GUI thread; the return value
    as `succeeded`, an exception as `failed(title, message)`; `finished` comes last, always.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, str)
    finished = Signal()

    def __init__(self, fn: TaskFn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self._thread = QThread()
        self._worker = _Worker(fn, self.cancel_event)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self.progress)
        self._worker.succeeded.connect(self.succeeded)
        self._worker.failed.connect(self.failed)
        # quit() is thread-safe; a queued call would wait for the GUI thread, which may be blocked in wait()
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._running = False

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def running(self) -> bool:
        return self._running

    def wait(self, timeout_ms: int = 60_000) -> bool:
        """Block until the thread ended (used only when the window closes or a session is replaced)."""
        return self._thread.wait(timeout_ms)

    def _on_thread_finished(self) -> None:
        # `finished` is emitted from the thread just before it really ends; wait for that, or dropping
        # the last reference to this task could destroy a QThread that is still running (Qt aborts).
        self._thread.wait()
        self._running = False
        self.finished.emit()


class SerialJobs:
    """One daemon thread running jobs in submission order; a newer job for a key replaces a pending one.

    Coalescing by key means a frame whose result changes ten times before the disk catches up is written
    once, and the order is kept so a state file submitted after its masks lands after them.
    """

    def __init__(self, on_error: Callable[[str, BaseException], None], name: str) -> None:
        """`on_error(key, exception)` runs on the thread (called `name`) for a job that failed."""
        self._jobs: OrderedDict[str, Callable[[], None]] = OrderedDict()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._on_error = on_error
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, key: str, job: Callable[[], None], first: bool = False) -> None:
        """Queue `job` under `key`, last (or `first`: ahead of every pending job)."""
        with self._cond:
            self._jobs.pop(key, None)
            self._jobs[key] = job
            if first:
                self._jobs.move_to_end(key, last=False)
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs) + int(self._busy)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every submitted job ran; False if `timeout` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.wait_idle(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._jobs or self._closed)
                if not self._jobs:
                    return
                key, job = self._jobs.popitem(last=False)
                self._busy = True
            try:
                job()
            except BaseException as exc:  # a full disk must not end the thread; the user is told
                self._on_error(key, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
