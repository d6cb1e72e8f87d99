"""Resumable training of the STM network from random initialisation (or from shipped weights).

The same loop runs on CUDA or the CPU (bf16 autocast where the hardware computes bf16). A run folder holds
`last.pt` (model, optimizer, step, minutes, RNG states: kill and rerun the same command to resume; the resumed
run draws fresh clips, its clip stream seeded from the step it resumes at, since worker processes' generators
cannot be saved, so its losses differ from an uninterrupted run's), `best.pt`,
`final.pt` (the weights at the end, weights-only like `best.pt`) and `log.jsonl`
(loss per logging interval, validation J&F per validation interval).
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.hardware import autocast, resolve_device
from ..engine.settings import EngineSettings
from ..errors import StmError
from ..io import locks
from ..io.atomic import atomic_write_bytes
from ..model.checkpoint import load_model, save_weights
from ..model.config import get_config
from ..model.stm import STM
from .clip_sampler import ClipBatchStream, ClipSampler, SharedInt
from .config import TrainConfig
from .loss import clip_loss
from .synthetic import SyntheticClips
from .validate import evaluate, mean_jf


def progress(step: int, minutes: float, cfg: TrainConfig) -> float:
    """Fraction of the run done: by steps, or by time when `max_minutes` ends it sooner, so that a time-limited
    run (a lent GPU, a CPU session) still anneals its schedules fully instead of stopping at a high rate."""
    done = step / max(1, cfg.steps)
    if cfg.max_minutes:
        done = max(done, minutes / cfg.max_minutes)
    return min(1.0, done)


def lr_at(step: int, t: float, cfg: TrainConfig) -> float:
    """Linear warm-up over the first steps, cosine decay to 5% of the peak over the run's progress `t`."""
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup)) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))


def hard_fraction_at(t: float, cfg: TrainConfig) -> float:
    if t < cfg.hard_start:
        return 1.0
    return 1.0 - (1.0 - cfg.hard_fraction) * min(1.0, (t - cfg.hard_start) / (1 - cfg.hard_start))


def max_skip_at(t: float, cfg: TrainConfig) -> int:
    return cfg.skip_schedule[min(len(cfg.skip_schedule) - 1, int(t * len(cfg.skip_schedule)))]


def build_sampler(cfg: TrainConfig, max_skip: int | SharedInt) -> ClipSampler:
    size = (cfg.crop, cfg.crop)
    sources: list[tuple[Any, float]] = [
        (SyntheticClips(size=size, frames=cfg.frames, max_objects=cfg.max_objects, seed=cfg.seed), 1.0)]
    if cfg.davis_root and cfg.davis_weight > 0:
        from .real_clips import DavisClips  # reads the DAVIS folder: only imported when training uses it

        davis = DavisClips(cfg.davis_root, size=size, frames=cfg.frames, max_skip=max_skip,
                           max_objects=cfg.max_objects, static_prob=cfg.static_prob,
                           paste_prob=cfg.paste_prob, seed=cfg.seed)
        sources = [(sources[0][0], 1 - cfg.davis_weight), (davis, cfg.davis_weight)]
    return ClipSampler(sources, seed=cfg.seed, max_objects=cfg.max_objects)


def check_davis_root(cfg: TrainConfig) -> None:
    """The DAVIS sequences a run reads (the training ones for its real clips, the validation ones where it
    validates) are there, checked before it starts or writes anything; an `StmError` says what training reads."""
    from .real_clips import TRAIN_SEQUENCES, VALIDATION_SEQUENCES, sequence_sizes

    if not cfg.davis_root:
        return
    reads = [("training", TRAIN_SEQUENCES, "--davis-weight 0: synthetic clips only")] if cfg.davis_weight > 0 else []
    if cfg.val_every:
        reads.append(("validation", VALIDATION_SEQUENCES, "--val-every 0: no validation"))
    lacking, hints = [], []
    for kind, names, hint in reads:
        sizes = sequence_sizes(cfg.davis_root, names)
        bad = {seq: size for seq, size in sizes.items() if not size[0] or size[0] != size[1]}
        if bad and all(size == (0, 0) for size in sizes.values()):
            lacking.append(f"none of the DAVIS-2016 {kind} sequences")
        elif bad:
            lacking.append(f"not the {kind} sequence{'s' * (len(bad) > 1)} " + ", ".join(
                seq if size == (0, 0) else f"{seq} ({size[0]} frames, {size[1]} with a mask of their name)"
                for seq, size in bad.items()))
        hints += [hint] if bad else []
        if kind == "training" and not bad and cfg.frames > (shortest := min(size[0] for size in sizes.values())):
            raise StmError(f"--frames {cfg.frames} is more than the {shortest} frames of the shortest training "
                           "sequence")
    if lacking:
        raise StmError(f"--davis-root {cfg.davis_root} holds {' and '.join(lacking)}: training reads the seven "
                       f"DAVIS-2016 training sequences ({', '.join(TRAIN_SEQUENCES)}) and validates on the three "
                       f"validation ones ({', '.join(VALIDATION_SEQUENCES)}), each as JPEGImages/480p/NAME/*.jpg "
                       "with one Annotations/480p/NAME/*.png per frame; it reads no other sequences, so not data "
                       f"of your own ({'; '.join(hints)})")


def _batches(cfg: TrainConfig, step: int, max_skip: SharedInt):
    stream = ClipBatchStream(build_sampler(cfg, max_skip), cfg.batch_size, seed=cfg.seed * 100003 + step)
    if cfg.workers <= 0:
        return iter(stream)
    # spawn, not fork: a worker forked from a process whose OpenMP pool is running can deadlock
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=cfg.workers, prefetch_factor=4,
                                         multiprocessing_context="spawn")
    return iter(loader)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _save_checkpoint(path: Path, model: STM, opt: torch.optim.Optimizer, step: int, minutes: float,
                     cfg: TrainConfig, best: float) -> None:
    buf = io.BytesIO()
    heights = {"process_height": model.recommended_height, "adapt_process_height": model.recommended_adapt_height}
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "minutes": minutes,
                "best": best, "config": asdict(cfg), "rng": _rng_state(),
                "meta": {k: v for k, v in heights.items() if v}}, buf)  # as final.pt: its weights run as the parent's
    atomic_write_bytes(path, buf.getvalue())


RUN_LOCK = ".stm-training"
"""In a run's folder while a run writes there: two runs in one folder logged each other's steps and overwrote each
other's last.pt, and a second resumed from the first's (QA pass 97)."""


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; returns the path of the best weights file."""
    out = Path(cfg.out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    check_davis_root(cfg)  # before the run folder: a refused run leaves none
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model = _initial_model(cfg, device)
    token = uuid.uuid4().hex
    try:
        holder = locks.take(out / RUN_LOCK, token)  # before last.pt is read: a second run resumed the first's
    except OSError as exc:
        raise StmError(f"cannot write into {out}: {exc.strerror or exc}") from None
    if holder is not None:
        raise StmError(f"another training run ({locks.who(holder)}) is writing into {out}: wait for it or give "
                       f"another --out-dir. If no run is writing there, delete {out / RUN_LOCK}")
    try:
        return _run(cfg, out, model, device)
    finally:
        locks.release(out / RUN_LOCK, token)


def _run(cfg: TrainConfig, out: Path, model: STM, device: torch.device) -> Path:
    """`train` once its folder is this run's: resume, step, validate and save."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, minutes_before = 0, -1.0, 0.0
    last = out / "last.pt"
    if last.exists():
        step, best, minutes_before = _resume_unless_over(last, model, opt, cfg, device)
    out.mkdir(parents=True, exist_ok=True)  # after the checks: a refused run leaves no empty folder (QA pass 27)
    _trim_log(out / "log.jsonl", step)
    log = (out / "log.jsonl").open("a")
    t_start = time.time()

    def minutes() -> float:
        return minutes_before + (time.time() - t_start) / 60

    max_skip = SharedInt(max_skip_at(progress(step, minutes(), cfg), cfg))  # workers read it live
    batches = _batches(cfg, step, max_skip)
    acc: dict[str, float] = {"loss": 0.0, "iou": 0.0, "n": 0}
    val_settings = EngineSettings(device=str(device), process_height=cfg.val_height)
    try:
        # a step stopped while validating is validated now (QA pass 59: it never was), and so are the weights a
        # run starts from, so that best.pt is never worse than them (QA pass 59: a fine-tune at small crops
        # scored 0.27 where the shipped weights score 0.53, and called that its best weights)
        if cfg.davis_root and cfg.val_every and (step % cfg.val_every == 0 if step else cfg.init_weights) \
                and not _validated(out / "log.jsonl", step):
            best = _validate(model, cfg, val_settings, step, best, out, log)
            _save_checkpoint(last, model, opt, step, minutes(), cfg, best)
        while step < cfg.steps:
            t = progress(step, minutes(), cfg)
            if cfg.max_minutes is not None and minutes() >= cfg.max_minutes:
                break
            max_skip.set(max_skip_at(t, cfg))
            rate = lr_at(step, t, cfg)
            stats = _step(model, opt, next(batches), rate, hard_fraction_at(t, cfg), device)
            step += 1
            acc["loss"] += stats["loss"]
            acc["iou"] += stats["iou"]
            acc["n"] += 1
            if step % cfg.log_every == 0:
                rec = {"step": step, "loss": acc["loss"] / acc["n"], "iou": acc["iou"] / acc["n"],
                       "lr": rate, "skip": int(max_skip), "minutes": round(minutes(), 3)}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(json.dumps(rec), flush=True)
                acc = {"loss": 0.0, "iou": 0.0, "n": 0}
            if step % cfg.ckpt_every == 0:
                _save_checkpoint(last, model, opt, step, minutes(), cfg, best)
            if cfg.davis_root and cfg.val_every and step % cfg.val_every == 0:
                best = _validate(model, cfg, val_settings, step, best, out, log)
                _save_checkpoint(last, model, opt, step, minutes(), cfg, best)
    except BaseException:  # Ctrl+C or an error (QA pass 37: an unreadable validation sequence lost every step):
        _save_checkpoint(last, model, opt, step, minutes(), cfg, best)  # keep every finished step, so rerunning
        raise  # the command resumes here
    _save_checkpoint(last, model, opt, step, minutes(), cfg, best)
    if cfg.davis_root and cfg.val_every and not _validated(out / "log.jsonl", step):
        best = _validate(model, cfg, val_settings, step, best, out, log)
    save_weights(model, out / "final.pt", {"step": step, "minutes": round(minutes(), 2), "train_config": asdict(cfg)})
    if best < 0:  # never validated (no --davis-root): the best weights are the latest ones
        save_weights(model, out / "best.pt", {"step": step, "train_config": asdict(cfg)})
    log.close()
    return out / "best.pt"


def _initial_model(cfg: TrainConfig, device: torch.device) -> STM:
    """The network a run starts from (`--init-weights`, else random), on `device`, in training mode."""
    if cfg.init_weights:
        model = load_model(cfg.model, cfg.init_weights)
        if model.cfg.name != cfg.model:  # QA pass 25: trained as one network, recorded as the other: no resume
            raise StmError(f"--model {cfg.model} asked for, but {cfg.init_weights} holds a {model.cfg.name} "
                           f"network: pass --model {model.cfg.name}")
    else:
        model = STM(get_config(cfg.model))
        # its files recommend the height it is validated at (the scale of its training frames, 240 px by default)
        # with and without adaptation, as the shipped file does (QA pass 73: recommending none, they ran at the
        # source size, 1080 px for a 1080p video, and without adaptation)
        model.recommended_height = model.recommended_adapt_height = cfg.val_height or None
    model = model.to(device).train()
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    else:  # one crop size for the whole run: let cuDNN pick its fastest kernels once
        torch.backends.cudnn.benchmark = True
    return model


def _resume_unless_over(last: Path, model: STM, opt: torch.optim.Optimizer, cfg: TrainConfig,
                        device: torch.device) -> tuple[int, float, float]:
    """`_resume` from `last`, refused where that run is over and the options ask for no more of it."""
    step, best, minutes_before = _resume(last, model, opt, cfg, device)
    # a run is over once `final.pt` is written after `last.pt`; a run stopped after its last step (in its final
    # validation) still has its end to do (QA pass 59: refused as done, it could never end)
    final = last.with_name("final.pt")
    ended = final.exists() and final.stat().st_mtime >= last.stat().st_mtime
    if step >= cfg.steps and ended:  # QA pass 30: went by with "best weights", its files rewritten
        raise StmError(f"{last} is at step {step} already, --steps {cfg.steps} asks for no more: pass a larger "
                       "--steps to train on, or train into another --out-dir")
    if cfg.max_minutes is not None and minutes_before >= cfg.max_minutes and ended:  # QA pass 37: exit 0
        raise StmError(f"{last} has trained {minutes_before:.2f} minutes already, --max-minutes "
                       f"{cfg.max_minutes:g} allows no more: pass a larger --max-minutes to train on, or train "
                       "into another --out-dir")
    print(f"resumed from {last} at step {step}", flush=True)
    return step, best, minutes_before


def _step(model: STM, opt: torch.optim.Optimizer, batch: tuple[torch.Tensor, torch.Tensor, list[int]],
          rate: float, hard_fraction: float, device: torch.device) -> dict[str, float]:
    """One optimiser step on a batch of clips at learning rate `rate`; the loss's statistics."""
    frames, labels, counts = batch
    frames, labels = frames.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    for g in opt.param_groups:
        g["lr"] = rate
    with autocast(device):
        loss, stats = clip_loss(model, frames, labels, counts, hard_fraction)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return stats


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past `step` (logged after the checkpoint a resume starts from), so steps never repeat."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if _logged_step(line) <= step]
    if len(kept) != len(lines):
        atomic_write_bytes(path, "".join(kept).encode("utf-8"))


def _validated(path: Path, step: int) -> bool:
    """Whether the log holds the validation of `step`."""
    if not path.exists():
        return False
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("step") == step and "val_jf" in record:
            return True
    return False


def _logged_step(line: str) -> float:
    """The step of one log line; a line torn by a kill counts as past every step."""
    try:
        return float(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return float("inf")


def _resume(last: Path, model: STM, opt: torch.optim.Optimizer, cfg: TrainConfig,
            device: torch.device) -> tuple[int, float, float]:
    """Load `last` into the model and optimizer and restore the RNGs: (step, best J&F, minutes so far). A file
    that cannot continue this run is an `StmError` that says what to do, not a traceback."""
    advice = "delete it or train into another --out-dir"
    try:
        ckpt = torch.load(last, map_location=device, weights_only=False)
        saved_model = ckpt["config"]["model"]
    except Exception as exc:  # truncated, foreign or from an older layout
        raise StmError(f"cannot resume from {last}: not a readable training checkpoint ({type(exc).__name__}); "
                       f"{advice}") from None
    if saved_model != cfg.model:
        raise StmError(f"{last} continues a {saved_model} run, not {cfg.model}: pass --model {saved_model} or "
                       f"{advice}")
    try:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise StmError(f"cannot resume from {last}: it does not fit this model ({str(exc).splitlines()[0][:100]}); "
                       f"{advice}") from None
    _set_rng_state(ckpt["rng"])
    changed = [f"{k} {v} -> {getattr(cfg, k)}" for k, v in ckpt["config"].items()
               if k not in ("steps", "out_dir", "max_minutes") and hasattr(cfg, k) and getattr(cfg, k) != v]
    if changed:  # seventh CLI QA pass: a resume with another --crop or --batch-size went by without a word
        print(f"note: resuming with changed options: {', '.join(changed)}", file=sys.stderr, flush=True)
    return ckpt["step"], ckpt["best"], ckpt.get("minutes", 0.0)


def _validate(model: STM, cfg: TrainConfig, settings: EngineSettings, step: int, best: float, out: Path,
              log: Any) -> float:
    t0 = time.time()
    scores = evaluate(model, cfg.davis_root, settings=settings)  # type: ignore[arg-type]
    jf = mean_jf(scores)
    rec = {"step": step, "val_jf": jf, "val": {s.sequence: round(s.jf_mean, 4) for s in scores},
           "val_seconds": round(time.time() - t0, 1)}
    log.write(json.dumps(rec) + "\n")
    log.flush()
    print(json.dumps(rec), flush=True)
    model.train()
    if jf > best:
        save_weights(model, out / "best.pt", {"step": step, "val_jf": jf, "val_height": cfg.val_height,
                                              "train_config": asdict(cfg)})
        return jf
    return best
