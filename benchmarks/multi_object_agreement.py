"""Several objects at once: agreement of the default engine with the official STM on DAVIS-2017 sequences.

    python benchmarks/multi_object_agreement.py [--sequences bmx-trees,horsejump-high,kite-surf] [--json out.json]

The shared data hold the real DAVIS-2017 first-frame annotations of these sequences (2, 2 and 3 objects) and
the official STM's later frames, not ground truth. Each sequence is propagated from its first frame with the
default settings (adaptation as the weights recommend); per object, J and F against the official output over
frames 1..N-2 say how close the shipped model comes to the published one when objects touch and occlude.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from stm_core.engine.settings import EngineSettings
from stm_core.io.frames import open_frames
from stm_core.io.masks import read_mask
from stm_core.metrics import f_boundary, jaccard
from stm_core.session import AnnotationSession

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", default=str(SHARED))
    p.add_argument("--sequences", default="bmx-trees,horsejump-high,kite-surf")
    p.add_argument("--adapt-steps", type=int, help="test-time adaptation steps (default: as the weights recommend)")
    p.add_argument("--process-height", type=int, help="working height (default: as the weights recommend)")
    p.add_argument("--json")
    a = p.parse_args()
    images = Path(a.shared) / "davis2016" / "JPEGImages" / "480p"
    stm = Path(a.shared) / "stm-official-results" / "davis2017-val"
    if not images.is_dir() or not stm.is_dir():
        print(f"shared DAVIS data not found under {a.shared}", file=sys.stderr)
        return 2
    rows = []
    for seq in a.sequences.split(","):
        frames = open_frames(images / seq)
        ref = [read_mask(stm / seq / f"{n}.png", frames.size) for n in frames.names]
        session = AnnotationSession(frames, EngineSettings(adapt_steps=a.adapt_steps, process_height=a.process_height))
        session.set_annotation(0, ref[0])
        t0 = time.perf_counter()
        session.propagate(0, "forward")
        seconds = time.perf_counter() - t0
        pred = [session.labels(i) for i in range(len(ref))]
        for obj in session.object_ids():
            js = [jaccard(r == obj, q == obj) for r, q in zip(ref[1:-1], pred[1:-1])]
            fs = [f_boundary(r == obj, q == obj) for r, q in zip(ref[1:-1], pred[1:-1])]
            rows.append({"sequence": seq, "object": obj, "J": float(np.mean(js)), "F": float(np.mean(fs)),
                         "seconds": seconds})
            print(f"{seq:16s} object {obj}  J {rows[-1]['J']:.4f}  F {rows[-1]['F']:.4f}  ({seconds:.0f} s)",
                  flush=True)
    jf = float(np.mean([(r["J"] + r["F"]) / 2 for r in rows]))
    print(f"mean J&F agreement with the official STM over {len(rows)} objects: {jf:.4f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": rows, "mean_jf": jf}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
