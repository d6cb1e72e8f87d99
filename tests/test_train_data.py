"""Training-data generators: format, content (motion, multiple objects, occlusion), determinism and the
train/validation split. Speed is measured by scripts/bench_data.py, not here."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stm_core.train.clip_sampler import BackgroundIterator, Clip, ClipBatchStream, ClipSampler
from stm_core.train.real_clips import (
    TRAIN_SEQUENCES,
    VALIDATION_SEQUENCES,
    DavisClips,
    check_training_sequences,
)
from stm_core.train.synthetic import SyntheticClips

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DAVIS_ROOT = SHARED / "data" / "davis2016"
needs_davis = pytest.mark.skipif(not DAVIS_ROOT.is_dir(),
                                 reason=f"shared DAVIS data not found at {DAVIS_ROOT}")

SIZE = (96, 128)  # small and non-square: catches (h, w) mix-ups and keeps the tests fast


def check_clip(clip: Clip, frames: int, size: tuple[int, int], max_objects: int) -> None:
    assert isinstance(clip, Clip)
    assert clip.frames.shape == (frames, 3, *size) and clip.frames.dtype == np.float32
    assert clip.labels.shape == (frames, *size) and clip.labels.dtype == np.uint8
    assert clip.frames.flags.c_contiguous
    assert 0.0 <= clip.frames.min() and clip.frames.max() <= 1.0
    assert 1 <= clip.num_objects <= max_objects
    n = clip.num_objects
    assert set(np.unique(clip.labels[0])) == set(range(n + 1)), "frame 0 must show every object"
    assert set(np.unique(clip.labels)) <= set(range(n + 1))
    assert np.bincount(clip.labels[0].ravel(), minlength=n + 1)[1:].min() >= 0.003 * size[0] * size[1]


def objects_touch(labels: np.ndarray) -> bool:
    """Two different objects sharing a boundary: with random placements this means one overlaps
    (occludes) the other."""
    for lab in labels:
        for a, b in ((lab[1:], lab[:-1]), (lab[:, 1:], lab[:, :-1])):
            if np.any((a != b) & (a > 0) & (b > 0)):
                return True
    return False


def mask_moves(clip: Clip) -> bool:
    return bool(np.any(clip.labels[0] != clip.labels[-1])) and not np.allclose(
        clip.frames[0], clip.frames[-1], atol=1e-3)


@pytest.fixture(scope="module")
def synthetic_clips() -> list[Clip]:
    source = SyntheticClips(size=SIZE, frames=3, max_objects=3, seed=1)
    rng = np.random.default_rng(0)
    return [source.sample(rng) for _ in range(60)]


def test_synthetic_format(synthetic_clips: list[Clip]) -> None:
    for clip in synthetic_clips:
        check_clip(clip, 3, SIZE, 3)


def test_synthetic_content(synthetic_clips: list[Clip]) -> None:
    counts = np.bincount([c.num_objects for c in synthetic_clips], minlength=4)
    assert counts[1] > 0 and counts[2] > 0 and counts[3] > 0, counts
    assert np.mean([mask_moves(c) for c in synthetic_clips]) > 0.9
    assert sum(objects_touch(c.labels) for c in synthetic_clips) >= 5
    # textures are varied: frames are not flat and clips differ in colour
    assert np.mean([c.frames[0].std() for c in synthetic_clips]) > 0.05
    means = np.array([c.frames[0].mean(axis=(1, 2)) for c in synthetic_clips])
    assert means.std(axis=0).min() > 0.05


def test_synthetic_options_and_determinism() -> None:
    long = SyntheticClips(size=(64, 64), frames=5, max_objects=2, seed=3).sample()
    check_clip(long, 5, (64, 64), 2)
    a = SyntheticClips(size=SIZE, seed=7)
    b = SyntheticClips(size=SIZE, seed=7)
    for _ in range(3):
        ca, cb = a.sample(), b.sample()
        assert np.array_equal(ca.frames, cb.frames) and np.array_equal(ca.labels, cb.labels)
    c1 = a.sample(np.random.default_rng(5))
    c2 = b.sample(np.random.default_rng(5))
    assert np.array_equal(c1.frames, c2.frames)
    assert not np.array_equal(c1.frames, a.sample(np.random.default_rng(6)).frames)
    with pytest.raises(ValueError):
        SyntheticClips(min_objects=4, max_objects=3)


def test_validation_sequences_rejected(tmp_path: Path) -> None:
    assert not set(TRAIN_SEQUENCES) & set(VALIDATION_SEQUENCES)
    assert {"dog", "horsejump-high", "kite-surf"} <= set(VALIDATION_SEQUENCES)
    for seq in VALIDATION_SEQUENCES:
        with pytest.raises(ValueError, match="validation"):
            check_training_sequences(["camel", seq])
        with pytest.raises(ValueError, match="validation"):
            DavisClips(tmp_path, sequences=("camel", seq))
    with pytest.raises(ValueError, match="validation"):
        check_training_sequences("dog")
    with pytest.raises(ValueError, match="not training"):
        check_training_sequences(["camel", "some-acceptance-sequence"])
    assert check_training_sequences(list(TRAIN_SEQUENCES)) == TRAIN_SEQUENCES
    with pytest.raises(FileNotFoundError):
        DavisClips(tmp_path)


def _davis_layout(root: Path, frames: int = 4, empty: bool = False) -> Path:
    """One training sequence (camel) of small frames with a disc's masks, as palette PNGs (DAVIS-2017 style)."""
    import cv2

    from stm_core.io.masks import write_mask

    for t in range(frames):
        image = np.full((60, 80, 3), 90, np.uint8)
        mask = np.zeros((60, 80), np.uint8)
        if not empty:
            cv2.circle(mask, (30 + 3 * t, 30), 14, 1, -1)
        image[mask > 0] = (200, 60, 40)
        for kind in ("JPEGImages", "Annotations"):
            (root / kind / "480p" / "camel").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "JPEGImages" / "480p" / "camel" / f"{t:05d}.jpg"), image)
        write_mask(root / "Annotations" / "480p" / "camel" / f"{t:05d}.png", mask)
    return root


def test_davis_layout_masks_are_read_as_the_app_reads_them_and_paired_by_name(tmp_path: Path, monkeypatch) -> None:
    """QA pass 59: palette masks (DAVIS-2017, or this program's export) read as grey were empty, and sampling
    waited forever for an object; frames and masks paired by position shifted every frame after a missing mask
    onto the next one's."""
    import stm_core.errors
    import stm_core.train.real_clips as real_clips

    root = _davis_layout(tmp_path / "pal")
    clips = DavisClips(root, sequences=("camel",), size=(48, 64), frames=2, paste_prob=0, seed=0)
    assert clips._frame("camel", 0).area > 0 and clips.sample().labels.any()
    masks = root / "Annotations" / "480p" / "camel"
    (masks / "00002.png").rename(masks / "00099.png")  # a missing mask and a stray one: as many as frames
    with pytest.raises(FileNotFoundError, match="frame 00002.jpg has no mask 00002.png"):
        DavisClips(root, sequences=("camel",), frames=2)
    monkeypatch.setattr(real_clips, "MAX_TRIES", 20)
    empty = DavisClips(_davis_layout(tmp_path / "empty", empty=True), sequences=("camel",), frames=2)
    with pytest.raises(stm_core.errors.InputError, match="show no object"):
        empty.sample()


@pytest.fixture(scope="module")
def davis() -> DavisClips:
    if not DAVIS_ROOT.is_dir():
        pytest.skip(f"shared DAVIS data not found at {DAVIS_ROOT}")
    return DavisClips(DAVIS_ROOT, size=SIZE, frames=3, max_skip=8, seed=0)


@needs_davis
def test_davis_clips(davis: DavisClips) -> None:
    rng = np.random.default_rng(0)
    clips = [davis.sample(rng) for _ in range(40)]
    for clip in clips:
        check_clip(clip, 3, SIZE, 3)
    assert np.mean([mask_moves(c) for c in clips]) > 0.8
    assert any(c.num_objects >= 2 for c in clips) and any(c.num_objects == 1 for c in clips)
    assert any(objects_touch(c.labels) for c in clips)
    assert {seq for seq, _ in davis._cache} <= set(TRAIN_SEQUENCES)


@needs_davis
def test_davis_modes_curriculum_and_determinism(davis: DavisClips) -> None:
    rng = np.random.default_rng(1)
    davis.static_prob = 1.0
    check_clip(davis.sample(rng), 3, SIZE, 3)
    davis.static_prob = 0.0
    davis.max_skip = 1
    idx = [davis._frame_indices(rng, 50) for _ in range(50)]
    assert all(np.abs(np.diff(i)).max() == 1 for i in idx)
    assert any(i[0] > i[-1] for i in idx) and any(i[0] < i[-1] for i in idx)  # time reversal
    davis.max_skip = 20
    assert max(np.abs(np.diff(davis._frame_indices(rng, 50))).max() for _ in range(50)) > 5
    davis.static_prob, davis.max_skip = 0.3, 8
    a = davis.sample(np.random.default_rng(9))
    b = davis.sample(np.random.default_rng(9))
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels)
    # a pickled copy (a spawned DataLoader worker) drops the cache but samples the same clips
    copy = pickle.loads(pickle.dumps(davis))
    assert not copy._cache
    assert np.array_equal(copy.sample(np.random.default_rng(9)).labels, a.labels)


def test_sampler_batches() -> None:
    sources = [(SyntheticClips(size=SIZE, max_objects=3, seed=0), 1.0),
               (SyntheticClips(size=SIZE, max_objects=2, min_objects=2, seed=1), 0.5)]
    sampler = ClipSampler(sources, seed=0, max_objects=2)
    frames, labels, counts = sampler.batch(4, np.random.default_rng(0))
    assert frames.shape == (4, 3, 3, *SIZE) and frames.dtype == torch.float32
    assert labels.shape == (4, 3, *SIZE) and labels.dtype == torch.long
    assert len(counts) == 4 and max(counts) <= 2 and int(labels.max()) <= 2
    assert sampler.size == SIZE and sampler.frames == 3
    for b, n in enumerate(counts):
        assert set(torch.unique(labels[b, 0]).tolist()) == set(range(n + 1))
    again = sampler.batch(4, np.random.default_rng(0))
    assert torch.equal(again.frames, frames)
    with pytest.raises(ValueError):
        ClipSampler([(SyntheticClips(size=SIZE), 1.0), (SyntheticClips(size=(64, 64)), 1.0)])


def test_spawned_workers_stream_and_exit_cleanly_while_sending(monkeypatch) -> None:
    """Dropping the loader while its workers still send batches used to abort them (SIGABRT): interpreter
    shutdown ended the sending thread inside torch's C++ pickling code. The parent then printed "DataLoader
    worker is killed by signal: Aborted" (14 of 20 workers in this setup; a warning in 3 of 4 full test runs;
    a trainer that ends while its workers are still sending, i.e. waiting on data, would print it too)."""
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    sampler = ClipSampler([(SyntheticClips(size=(256, 256), seed=0), 1.0)], seed=0)
    for _ in range(2):
        # spawn as the trainer does: a fork after torch's OpenMP pool has run can deadlock the worker
        loader = torch.utils.data.DataLoader(ClipBatchStream(sampler, batch_size=8, seed=3), batch_size=None,
                                             num_workers=2, prefetch_factor=4, multiprocessing_context="spawn")
        it = iter(loader)
        a, b = next(it), next(it)
        assert a.frames.shape == (8, 3, 3, 256, 256) and not torch.equal(a.frames, b.frames)
        del it
    assert not unraisable, [str(u.exc_value) for u in unraisable]


def test_sampler_streams() -> None:
    sampler = ClipSampler([(SyntheticClips(size=(64, 64), seed=0), 1.0)], seed=0)
    stream = ClipBatchStream(sampler, batch_size=2, seed=3)
    first = next(iter(pickle.loads(pickle.dumps(stream))))
    assert torch.equal(first.frames, next(iter(stream)).frames)
    background = BackgroundIterator(sampler.batches(2, seed=4), depth=2)
    batch = next(background)
    background.close()
    assert torch.equal(batch.frames, next(sampler.batches(2, seed=4)).frames)
    with pytest.raises(StopIteration):
        next(background)

    def failing():
        yield 1
        raise RuntimeError("generator failed")

    background = BackgroundIterator(failing())
    assert next(background) == 1
    with pytest.raises(RuntimeError, match="generator failed"):
        next(background)
