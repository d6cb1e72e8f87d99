"""Test-time adaptation settings against validation J&F and time: which steps, rate, batch and working height.

    python benchmarks/adapt_sweep.py --json benchmarks/results/adapt_sweep.json 20:1e-4:2:144 60:1e-4:2:240

Each configuration is STEPS:LR:BATCH:HEIGHT; every one propagates the validation sequences (never trained
on) from their first-frame masks through the engine, adaptation included in the seconds. The weights' meta
records the height chosen from this sweep (`scripts/ship_weights.py --adapt-height`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from stm_core.engine.settings import EngineSettings
from stm_core.train.validate import VALIDATION_SEQUENCES, evaluate, mean_jf

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016"


def parse(spec: str) -> EngineSettings:
    steps, lr, batch, height = spec.split(":")
    return EngineSettings(adapt_steps=int(steps), adapt_lr=float(lr), adapt_batch=int(batch),
                          process_height=int(height))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="+", help="STEPS:LR:BATCH:HEIGHT")
    p.add_argument("--davis-root", default=str(SHARED))
    p.add_argument("--json")
    a = p.parse_args()
    if not Path(a.davis_root).is_dir():
        print(f"DAVIS data not found at {a.davis_root}", file=sys.stderr)
        return 2
    rows = []
    for spec in a.configs:
        settings = parse(spec)
        t0 = time.perf_counter()
        scores = evaluate(None, a.davis_root, VALIDATION_SEQUENCES, settings)
        row = {"steps": settings.adapt_steps, "lr": settings.adapt_lr, "batch": settings.adapt_batch,
               "height": settings.process_height, "validation_jf": mean_jf(scores),
               "seconds": time.perf_counter() - t0, **{s.sequence: s.jf_mean for s in scores}}
        rows.append(row)
        print(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
        if a.json:  # written after every configuration: a long sweep keeps what it measured
            Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
