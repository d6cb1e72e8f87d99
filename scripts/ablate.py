"""Controlled ablation runs for the model card: which data and model choices help the shipped model.

    python scripts/ablate.py --davis-root ../shared/data/davis2016 --steps 300 \
        --out runs/ablation --json benchmarks/results/ablation.json

Every training variant continues from the same weights (the shipped file by default) for the same number of
steps with the same schedule and seed, changing one thing; each run's *final* weights (not its best
checkpoint, which would be selected on the validation sequences) are scored on the three validation
sequences at several working heights and the mean is reported. A second seed of the control run shows
how much of a difference is noise. Inference-only choices (top-k memory read, memory interval) are scored on
the starting weights without training. Finished variants are skipped on a rerun, so the script resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from stm_core.engine.settings import EngineSettings
from stm_core.model.checkpoint import DEFAULT_WEIGHTS, load_model
from stm_core.model.config import get_config
from stm_core.model.stm import STM
from stm_core.train.validate import evaluate, mean_jf

# name -> (what changes, extra `python -m stm_core train` arguments)
TRAINING_VARIANTS: dict[str, tuple[str, list[str]]] = {
    "control": ("round-1 recipe: 35% real clips, 3 frames, 30% static warps", []),
    "control-seed1": ("the control with another seed (noise level)", ["--seed", "1"]),
    "real-70": ("70% real clips, 30% synthetic", ["--davis-weight", "0.7"]),
    "synthetic-only": ("no real clips", ["--davis-weight", "0"]),
    "static-0.7": ("70% of real clips are warps of one still frame", ["--static-prob", "0.7"]),
    "frames-4": ("4-frame clips (memory of 3 frames in training)", ["--frames", "4"]),
}

INFERENCE_VARIANTS: dict[str, tuple[str, dict]] = {
    "read-all": ("memory read over all keys, memory every 5 frames (default)", {}),
    "top-k-32": ("top-32 memory read", {"top_k": 32}),
    "top-k-128": ("top-128 memory read", {"top_k": 128}),
    "mem-every-3": ("a memory frame every 3 frames", {"mem_every": 3}),
    "mem-every-10": ("a memory frame every 10 frames", {"mem_every": 10}),
}


def score(model: STM, davis_root: str, heights: list[int], **settings) -> dict:
    """Validation J&F per working height and their mean (one height alone is too noisy to rank runs)."""
    per_height = {}
    for h in heights:
        scores = evaluate(model, davis_root, settings=EngineSettings(process_height=h, **settings))
        per_height[h] = {"mean": round(mean_jf(scores), 4), **{s.sequence: round(s.jf_mean, 4) for s in scores}}
    return {"mean": round(sum(v["mean"] for v in per_height.values()) / len(heights), 4), "heights": per_height}


def final_model(run_dir: Path, model_name: str) -> STM:
    ckpt = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=False)
    model = STM(get_config(model_name))
    model.load_state_dict(ckpt["model"])
    return model.eval()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--davis-root", required=True)
    p.add_argument("--init-weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--model", default="stm-small")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--heights", type=int, nargs="+", default=[128, 144, 176])
    p.add_argument("--variants", nargs="+", help="training variants to run (default: all)")
    p.add_argument("--skip-inference", action="store_true")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--json", default="benchmarks/results/ablation.json")
    a = p.parse_args()
    out = Path(a.out)
    results_path = Path(a.json)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.setdefault("setup", {"init_weights": a.init_weights, "steps": a.steps, "lr": a.lr,
                                 "heights": a.heights})

    def save() -> None:
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=2))

    start = load_model(a.model, a.init_weights).eval()
    if "start" not in results:
        results["start"] = score(start, a.davis_root, a.heights)
        save()
    print(f"start: {results['start']['mean']}", flush=True)
    if not a.skip_inference:
        inference = results.setdefault("inference", {})
        for name, (what, settings) in INFERENCE_VARIANTS.items():
            if name not in inference:
                inference[name] = {"what": what, **score(start, a.davis_root, a.heights, **settings)}
                save()
            print(f"inference {name}: {inference[name]['mean']}", flush=True)
    training = results.setdefault("training", {})
    for name in a.variants or list(TRAINING_VARIANTS):
        what, extra = TRAINING_VARIANTS[name]
        if name in training:
            continue
        run_dir = out / name
        t0 = time.time()
        cmd = [sys.executable, "-m", "stm_core", "train", "--out-dir", str(run_dir), "--model", a.model,
               "--init-weights", a.init_weights, "--davis-root", a.davis_root, "--steps", str(a.steps),
               "--lr", str(a.lr), "--warmup", str(max(1, a.steps // 10)), "--val-every", "0",
               "--batch-size", "8", "--crop", "192", "--workers", "1", *extra]
        subprocess.run(cmd, check=True)
        training[name] = {"what": what, "args": extra, "minutes": round((time.time() - t0) / 60, 1),
                          **score(final_model(run_dir, a.model), a.davis_root, a.heights)}
        save()
        print(f"training {name}: {training[name]['mean']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
