"""Does a weights file keep hold of an object over a long clip? Mean IoU on generated videos with exact masks.

    python benchmarks/long_clip_tracking.py --weights a.pt b.pt --seeds 1 2 3 --frames 1000

DAVIS clips are 50-100 frames, so they say little about losing an object after hundreds of frames. Here a
textured disc moves over a panning background (`GeneratedVideo`, 256x144, the clip the application's
10,000-frame run uses with seed 3); frame 0 is annotated, the engine propagates with its default settings
(the weights' adaptation and working height), and every 50th frame is scored against the exact mask.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from stm_core.bench import annotated_session
from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.metrics import jaccard


def track(weights: str | None, seed: int, frames: int) -> list[float]:
    """IoU of every 50th propagated frame of one generated clip."""
    video = GeneratedVideo(frames, size=(144, 256), objects=1, seed=seed)
    session = annotated_session(video, EngineSettings(weights=weights, adapt_steps=None))
    session.propagate(0, "forward")
    return [jaccard(video.labels(i) > 0, session.labels(i) > 0) for i in range(1, frames, 50)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", nargs="+", default=[None], help="weights files (default: the shipped one)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--json")
    a = p.parse_args()
    rows = []
    for weights in a.weights:
        name = weights or "shipped"
        means = []
        for seed in a.seeds:
            ious = track(weights, seed, a.frames)
            means.append(float(np.mean(ious)))
            rows.append({"weights": name, "seed": seed, "frames": a.frames, "mean_iou": means[-1],
                         "min_iou": float(np.min(ious)), "ious": ious})
            print(f"{name}  seed {seed}  mean IoU {means[-1]:.3f}  min {np.min(ious):.2f}", flush=True)
        print(f"{name}  mean over seeds {np.mean(means):.3f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
