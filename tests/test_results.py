"""The result store keeps what it is given exactly, however its soft maps are split for compression."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from stm_core.engine import results
from stm_core.engine.results import PART_BYTES, ResultStore


@pytest.fixture
def packing_threads(monkeypatch):
    """The packing threads in use whatever this machine's cores (fewer than MIN_PACKING_CORES use none)."""
    monkeypatch.setattr(results, "MIN_PACKING_CORES", 1)


def _soft(objects: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Soft maps as propagation leaves them: smooth blobs with low noise around them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    maps = [255 * np.exp(-((yy - rng.uniform(0, shape[0])) ** 2 + (xx - rng.uniform(0, shape[1])) ** 2) / 5e3)
            + rng.uniform(0, 6, shape) for _ in range(objects)]
    return np.clip(maps, 0, 255).astype(np.uint8)


def test_large_soft_maps_are_stored_in_parts_and_read_back_exactly(packing_threads):
    labels = np.zeros((480, 854), np.uint8)
    labels[100:300, 200:500] = 2
    probs, own = _soft(3, (480, 854), 0), _soft(3, (480, 854), 1)
    store = ResultStore()
    store.put(7, labels, probs, [1, 2, 5], 0.25, own=(own, 0.5))
    entry = store.entry(7)
    assert len(entry.probs) == -(-probs.nbytes // PART_BYTES) > 1  # compressed side by side
    assert np.array_equal(store.soft(7)[1], probs) and store.soft(7)[0] == [1, 2, 5]
    assert np.array_equal(store.labels(7), labels)
    origin, (ids, maps), uncertainty = store.unblended(7)
    assert ids == [1, 2, 5] and np.array_equal(maps, own) and uncertainty == 0.5
    assert entry.nbytes == sum(len(part) for packed in (entry.labels, entry.probs, entry.own[0]) for part in packed)
    small = _soft(1, (24, 32), 2)
    store.put(8, labels[:24, :32], small, [1])
    assert len(store.entry(8).probs) == len(store.entry(8).labels) == 1 and np.array_equal(store.soft(8)[1], small)
    big = np.zeros((2160, 3840), np.uint8)  # a 4K label map: in parts too
    big[500:1500, 1000:3000] = 3
    store.put(9, big, None)
    assert len(store.entry(9).labels) > 1 and np.array_equal(store.labels(9), big)
    assert store.probability(9, 3).max() == 255 and dict(store.entry(9).areas)[3] == 1000 * 2000


def _store_in_child(queue: multiprocessing.Queue) -> None:
    store = ResultStore()
    probs = _soft(2, (480, 854), 3)
    store.put(0, np.zeros((480, 854), np.uint8), probs, [1, 2])
    queue.put(bool(np.array_equal(store.soft(0)[1], probs)))


@pytest.mark.skipif(sys.platform != "linux", reason="fork is the start method that copies a process's state")
def test_a_forked_child_compresses_with_threads_of_its_own(packing_threads):
    ResultStore().put(0, np.zeros((480, 854), np.uint8), _soft(2, (480, 854), 4), [1, 2])  # the parent's threads
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_store_in_child, args=(queue,))
    child.start()
    child.join(30)
    stored = queue.get(timeout=1) if not child.is_alive() else None
    if child.is_alive():
        child.kill()
    assert stored is True, "the forked child never stored its result (it waited for threads it does not have)"


def test_results_are_stored_when_the_packing_threads_take_no_more_work(packing_threads, monkeypatch):
    """QA pass 109: a thread storing results after the main thread had returned raised "cannot schedule new
    futures after shutdown" (the interpreter's exit shuts its pools), and the result was lost."""
    closed = ThreadPoolExecutor(1)
    closed.shutdown()
    monkeypatch.setattr(results._PACKERS, "_pool", closed)
    probs = _soft(2, (480, 854), 5)
    store = ResultStore()
    store.put(0, np.zeros((480, 854), np.uint8), probs, [1, 2])
    assert np.array_equal(store.soft(0)[1], probs)


def test_with_few_cores_the_parts_are_compressed_on_the_storing_thread(monkeypatch):
    monkeypatch.setattr(results, "MIN_PACKING_CORES", 10_000)
    monkeypatch.setattr(results._PACKERS, "_pool", None)
    probs = _soft(1, (480, 854), 6)
    store = ResultStore()
    store.put(0, np.zeros((480, 854), np.uint8), probs, [1])
    assert results._PACKERS._pool is None and len(store.entry(0).probs) > 1
    assert np.array_equal(store.soft(0)[1], probs)


def test_a_result_missing_a_part_is_an_error_not_garbage():
    """QA pass 109: read back with a part lost, the array came back with whatever memory held in its tail."""
    store = ResultStore()
    store.put(0, np.zeros((480, 854), np.uint8), _soft(1, (480, 854), 7), [1])
    entry = store.entry(0)
    damaged = results.StoredResult(**{**entry.__dict__, "probs": entry.probs[:-1]})
    with pytest.raises(ValueError, match="needs"):
        damaged.soft_maps()
