"""What the annotator sees after a correction: how soon the first updated frame shows, and how good it is.

    python benchmarks/correction_preview.py [--sequence horsejump-high] [--frames 25]

Runs the application's default (adaptation as the weights recommend, a preview of `--frames` frames): the
first-frame mask, one propagation, then the worst frame gets its true mask and the video is re-propagated
from it. Prints the seconds to the first new frame and to the first adapted frame of both runs, and the IoU
of the frames after the correction before it, in its preview and after the adapted pass.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from stm_core.engine.settings import EngineSettings
from stm_core.io.frames import open_frames
from stm_core.io.masks import read_mask
from stm_core.metrics import jaccard
from stm_core.session import AnnotationSession

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016"


def mean_iou(gt: list[np.ndarray], labels: dict[int, np.ndarray]) -> float:
    return float(np.mean([jaccard(gt[i] > 0, m > 0) for i, m in labels.items()]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--davis-root", default=str(SHARED))
    p.add_argument("--sequence", default="horsejump-high")
    p.add_argument("--frames", type=int, default=25, help="preview frames (the application uses 25)")
    a = p.parse_args()
    root = Path(a.davis_root)
    if not (root / "JPEGImages" / "480p" / a.sequence).is_dir():
        print(f"sequence {a.sequence} not found under {root}", file=sys.stderr)
        return 2
    frames = open_frames(root / "JPEGImages" / "480p" / a.sequence)
    gt = [read_mask(root / "Annotations" / "480p" / a.sequence / f"{n}.png", frames.size) for n in frames.names]
    session = AnnotationSession(frames, EngineSettings(adapt_steps=None, preview_frames=a.frames))
    session.set_annotation(0, gt[0])
    r = session.propagate(0, "forward")
    print(f"first run: first frame after {r.first_frame_seconds:.2f} s, adapted frames after "
          f"{r.adapt_seconds:.1f} s, {r.seconds:.1f} s in all")
    ious = [jaccard(g > 0, session.labels(i) > 0) if i else 2.0 for i, g in enumerate(gt)]
    worst = int(np.argmin(ious))
    after = range(worst + 1, min(worst + 1 + a.frames, len(gt)))
    old = {i: session.labels(i) for i in after}
    session.set_annotation(worst, gt[worst])
    preview: dict[int, np.ndarray] = {}
    r = session.propagate(worst, "forward", previewed=lambda i: preview.update({i: session.labels(i)}))
    print(f"correction at frame {worst}: first frame after {r.first_frame_seconds:.2f} s, adapted frames after "
          f"{r.adapt_seconds:.1f} s; IoU of the {len(after)} frames after it: before {mean_iou(gt, old):.3f}, "
          f"preview {mean_iou(gt, {i: preview[i] for i in after if i in preview}):.3f}, "
          f"adapted {mean_iou(gt, {i: session.labels(i) for i in after}):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
