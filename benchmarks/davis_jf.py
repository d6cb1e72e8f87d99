"""J&F of the engine on the shared DAVIS-2016 sequences, first-frame mask only and with corrections.

    python benchmarks/davis_jf.py [--weights FILE] [--process-height 240] [--corrections 2] [--json out.json]
    python benchmarks/davis_jf.py --sequences val --adapt-steps 20   # with test-time adaptation

Corrections simulate the annotator: the worst frame (by IoU with the ground truth) gets its true mask as an
annotated frame and the video is re-propagated both ways from it, `--corrections` times. With
`--adapt-steps`, the engine fine-tunes a copy of the network on the annotated frames before each propagation
(as the application does with that setting); its time is included in the per-sequence seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from stm_core.engine.settings import EngineSettings
from stm_core.train.validate import VALIDATION_SEQUENCES, evaluate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016"
ALL = ("blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "cows", "dog", "horsejump-high",
       "kite-surf", "libby")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--davis-root", default=str(SHARED))
    p.add_argument("--weights")
    p.add_argument("--model", default="stm-small")
    p.add_argument("--process-height", type=int)
    p.add_argument("--top-k", type=int)
    p.add_argument("--corrections", type=int, default=0)
    p.add_argument("--adapt-steps", type=int, default=0, help="test-time adaptation steps (0: off)")
    p.add_argument("--sequences", default="all", help="all, val, or a comma-separated list")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json")
    a = p.parse_args()
    if not Path(a.davis_root).is_dir():
        print(f"DAVIS data not found at {a.davis_root}", file=sys.stderr)
        return 2
    seqs = ALL if a.sequences == "all" else VALIDATION_SEQUENCES if a.sequences == "val" \
        else tuple(a.sequences.split(","))
    settings = EngineSettings(model=a.model, weights=a.weights, device=a.device, process_height=a.process_height,
                              top_k=a.top_k, adapt_steps=a.adapt_steps)
    rows = []
    for seq in seqs:
        t0 = time.perf_counter()
        score = evaluate(None, a.davis_root, (seq,), settings, corrections=a.corrections)[0]
        seconds = time.perf_counter() - t0
        frames = len(list((Path(a.davis_root) / "JPEGImages" / "480p" / seq).glob("*.jpg")))
        rows.append({"sequence": seq, "J": score.j_mean, "F": score.f_mean, "JF": score.jf_mean, "seconds": seconds,
                     "frames": frames, "validation": seq in VALIDATION_SEQUENCES})
        print(f"{seq:16s} J {score.j_mean:.4f}  F {score.f_mean:.4f}  J&F {score.jf_mean:.4f}  {seconds:6.1f} s",
              flush=True)

    def mean(sel):
        sel = list(sel)
        return sum(r["JF"] for r in sel) / len(sel) if sel else float("nan")
    summary = {"all": mean(rows), "validation": mean(r for r in rows if r["validation"]),
               "train_sequences": mean(r for r in rows if not r["validation"])}
    print(f"mean J&F: all {summary['all']:.4f}  validation {summary['validation']:.4f}  "
          f"training sequences {summary['train_sequences']:.4f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"settings": vars(a), "rows": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
