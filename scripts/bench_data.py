"""Measure training-clip generation speed on one core and optionally save a montage for inspection.

    python scripts/bench_data.py [--clips 200] [--davis-root PATH] [--montage /tmp/clips.png]

The DAVIS root defaults to ../shared/data/davis2016 next to the repository (skipped if absent).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stm_core.train.clip_sampler import Clip, ClipSampler  # noqa: E402
from stm_core.train.real_clips import DavisClips  # noqa: E402
from stm_core.train.synthetic import SyntheticClips  # noqa: E402

_COLORS = np.array([[0, 0, 0], [255, 40, 40], [40, 220, 40], [60, 120, 255], [255, 220, 0]], np.uint8)


def time_source(name: str, sample: Callable[[np.random.Generator], Clip], clips: int,
                rng: np.random.Generator) -> None:
    """Print mean and 95th-percentile milliseconds per clip (after one warm-up call)."""
    sample(rng)
    times = []
    for _ in range(clips):
        t0 = time.perf_counter()
        sample(rng)
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    print(f"{name:34s} {ms.mean():6.2f} ms/clip (p95 {np.percentile(ms, 95):6.2f}, n={clips})")


def render(clip: Clip) -> np.ndarray:
    """One montage row: the clean frames, then the same frames with tinted masks and outlines."""
    clean, annotated = [], []
    for frame, label in zip(clip.frames, clip.labels):
        img = np.ascontiguousarray((frame.transpose(1, 2, 0) * 255).astype(np.uint8))
        color = _COLORS[np.minimum(label, len(_COLORS) - 1)]
        tinted = np.where(label[..., None] > 0, (0.6 * img + 0.4 * color).astype(np.uint8), img)
        for k in range(1, clip.num_objects + 1):
            contours, _ = cv2.findContours((label == k).astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(tinted, contours, -1, tuple(int(c) for c in _COLORS[min(k, 4)]), 1)
        clean.append(img)
        annotated.append(tinted)
    gap = np.full((clip.labels.shape[1], 3, 3), 255, np.uint8)
    wide = np.full((clip.labels.shape[1], 12, 3), 255, np.uint8)
    tiles = [t for img in clean for t in (img, gap)][:-1] + [wide]
    tiles += [t for img in annotated for t in (img, gap)][:-1]
    return np.concatenate(tiles, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=(192, 192), metavar=("H", "W"))
    parser.add_argument("--davis-root", type=Path, default=REPO.parent / "shared" / "data" / "davis2016")
    parser.add_argument("--montage", type=Path, help="write a PNG montage of clips here")
    parser.add_argument("--rows", type=int, default=6, help="clips per source in the montage")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    size = tuple(args.size)
    print(f"clips of 3 frames, {size[0]}x{size[1]}, one thread")
    sources = [("synthetic", SyntheticClips(size=size, seed=args.seed))]
    time_source("synthetic (1-3 objects)", sources[0][1].sample, args.clips, rng)
    three = SyntheticClips(size=size, min_objects=3, max_objects=3, seed=args.seed)
    time_source("synthetic (3 objects)", three.sample, args.clips, rng)

    if args.davis_root.is_dir():
        davis = DavisClips(args.davis_root, size=size, seed=args.seed)
        davis.preload()
        sources.append(("davis", davis))
        time_source("davis (mixed modes)", davis.sample, args.clips, rng)
    else:
        print(f"DAVIS root {args.davis_root} not found: skipping real clips")

    sampler = ClipSampler([(s, 1.0) for _, s in sources], seed=args.seed)
    t0 = time.perf_counter()
    for _ in range(5):
        sampler.batch(8, rng)
    print(f"{'sampler batch of 8':34s} {(time.perf_counter() - t0) / 5 * 1e3:6.2f} ms/batch")

    if args.montage:
        rows = [render(src.sample(rng)) for _, src in sources for _ in range(args.rows)]
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        cv2.imwrite(str(args.montage), cv2.cvtColor(np.concatenate(rows), cv2.COLOR_RGB2BGR))
        print(f"montage written to {args.montage}")


if __name__ == "__main__":
    main()
