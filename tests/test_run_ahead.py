"""The propagation loop on its own thread: order, bounded look-ahead, errors and early stops reach the caller."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stm_core.engine.run_ahead import run_ahead


def test_items_arrive_in_order_and_the_worker_stays_within_its_depth():
    produced: list[int] = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i
    seen = []
    for i in run_ahead(items(), depth=2):
        assert len(produced) - len(seen) <= 4  # queued (2) + one in hand + this one
        seen.append(i)
    assert seen == list(range(20))


def test_an_error_in_the_worker_is_raised_to_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        raise MemoryError("out of memory")
    it = run_ahead(items(), depth=2)
    assert next(it) == 1
    with pytest.raises(MemoryError, match="out of memory"):
        next(it)


def test_closing_early_stops_the_worker_and_closes_the_generator_on_the_network_thread():
    closed_on: list[str] = []
    worker_names: list[str] = []

    def items():
        try:
            i = 0
            while True:
                worker_names.append(threading.current_thread().name)
                yield i
                i += 1
        finally:
            closed_on.append(threading.current_thread().name)
    it = run_ahead(items(), depth=1)
    assert next(it) == 0
    it.close()
    assert closed_on == ["stm-network"] and set(worker_names) == {"stm-network"}
    assert list(run_ahead((i for i in range(3)), depth=1)) == [0, 1, 2]  # the thread is free for the next run


def test_runs_share_one_long_lived_thread():
    def where():
        yield threading.get_ident()
    assert len({next(run_ahead(where(), depth=1)) for _ in range(3)}) == 1


def _run_in_child(conn) -> None:
    conn.send(list(run_ahead((i for i in range(3)), depth=1)))


def test_a_forked_child_runs_its_own_network_thread():
    assert list(run_ahead((i for i in range(2)), depth=1)) == [0, 1]  # the parent's thread exists before the fork
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(target=_run_in_child, args=(child,))
    process.start()
    try:
        assert parent.poll(30), "the child hung waiting for a thread it did not inherit"
        assert parent.recv() == [0, 1, 2]
    finally:
        process.kill()
        process.join()


def test_a_job_on_the_network_thread_returns_raises_and_is_abandoned_when_the_wait_is_interrupted():
    """Adaptation runs there while the caller waits; Ctrl+C during the wait must end it soon, not after
    its remaining steps."""
    import signal
    import time

    from stm_core.engine.run_ahead import on_network_thread

    assert on_network_thread(lambda abandoned: threading.current_thread().name) == "stm-network"
    with pytest.raises(ValueError, match="in the job"):
        on_network_thread(lambda abandoned: (_ for _ in ()).throw(ValueError("in the job")))
    seen = []

    def long_job(abandoned):
        start = time.monotonic()
        while not abandoned() and time.monotonic() - start < 20:
            time.sleep(0.01)
        seen.append((abandoned(), time.monotonic() - start))

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            on_network_thread(long_job)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert len(seen) == 1 and seen[0][0] and seen[0][1] < 5
    # a cancel stops the wait without waiting for the job (QA pass 22: a 35 s adaptation step held the window)
    cancel, release, later = threading.Event(), threading.Event(), []

    def step_then_check(abandoned):
        release.wait(20)  # a step that does not look at `abandoned` until it ends
        later.append(abandoned())
    threading.Timer(0.1, cancel.set).start()
    assert on_network_thread(step_then_check, cancel) is None and later == []  # returned while it still ran
    release.set()
    assert on_network_thread(lambda abandoned: "next") == "next" and later == [True]  # later jobs wait for it


_ABANDONED_AT_EXIT = """
import threading
import torch
from stm_core.engine.run_ahead import on_network_thread
cancel, started = threading.Event(), threading.Event()
cancel.set()

def step(abandoned):
    started.set()
    a = torch.randn(600, 600)
    for _ in range(300):
        a = torch.tanh(a @ a)

on_network_thread(step, cancel)
started.wait()
"""


def test_a_process_ending_while_an_abandoned_job_runs_waits_for_it_instead_of_aborting():
    """QA pass 39: quitting the app during an adaptation step (abandoned by the cancelled run, returning on its
    own later) ended in "terminate called without an active exception", exit code 134."""
    done = subprocess.run([sys.executable, "-c", _ABANDONED_AT_EXIT], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
