"""Turn a training checkpoint into the shipped weights file, choosing its working height on validation.

    python scripts/ship_weights.py runs/main/last.pt resources/weights/stm_small.pt \
        --davis-root ../shared/data/davis2016 --heights 128 144 176 208

The model is trained on small crops, so the frame height at which it propagates best is a property of the
weights: each candidate height is scored on the three validation sequences (never trained on) and the best
is stored in the file's meta; the engine uses it unless the user sets a processing height. The height for
propagation with test-time adaptation is chosen by `benchmarks/adapt_sweep.py` and recorded with
`--adapt-height`. A shipped weights file may be given as the input to re-record its meta.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from stm_core.engine.settings import EngineSettings
from stm_core.model.checkpoint import FORMAT, load_model, save_weights
from stm_core.model.config import get_config
from stm_core.model.stm import STM
from stm_core.train.validate import evaluate, mean_jf


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", help="a trainer checkpoint (last.pt) or a weights file (best.pt)")
    p.add_argument("output")
    p.add_argument("--dry-run", action="store_true", help="only print the sweep")
    p.add_argument("--davis-root", required=True)
    p.add_argument("--heights", type=int, nargs="+", default=[128, 144, 176, 208])
    p.add_argument("--training-minutes", type=float, help="recorded in the meta")
    p.add_argument("--adapt-height", type=int, help="working height with test-time adaptation (adapt_sweep.py)")
    p.add_argument("--hardware", help="where and how long each training round ran, recorded in the meta")
    a = p.parse_args()
    ckpt = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    if ckpt.get("format") == FORMAT:  # a weights file: the trainer's best.pt or a shipped file
        model = load_model(weights=a.checkpoint)
        old = ckpt["meta"]
        a.training_minutes = a.training_minutes or old.get("training_minutes")
        a.hardware = a.hardware or old.get("hardware")
        ckpt = {"step": old["step"], "config": old["train_config"]}
    else:
        model = STM(get_config(ckpt["config"]["model"]))
        model.load_state_dict(ckpt["model"])
    cfg = ckpt["config"]
    model.eval()
    sweep = {}
    for h in a.heights:
        scores = evaluate(model, a.davis_root, settings=EngineSettings(process_height=h))
        sweep[h] = {"mean": mean_jf(scores), **{s.sequence: round(s.jf_mean, 4) for s in scores}}
        print(f"height {h}: validation J&F {sweep[h]['mean']:.4f}  {sweep[h]}", flush=True)
    best = max(sweep, key=lambda h: sweep[h]["mean"])
    meta = {"step": ckpt["step"], "process_height": best, "validation_sweep": sweep,
            "adapt_process_height": a.adapt_height, "training_minutes": a.training_minutes, "train_config": cfg,
            "trained_from": "random initialisation" if not cfg.get("init_weights")
            else f"continued from {cfg['init_weights']} (round 1, itself trained from random initialisation)",
            **({"hardware": a.hardware} if a.hardware else {})}
    if a.dry_run:
        return 0
    save_weights(model, a.output, meta)
    print(json.dumps({"output": a.output, "process_height": best, "val_jf": sweep[best]["mean"],
                      "bytes": Path(a.output).stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
