"""Training: a step on a fixed batch lowers the loss; a run resumes from its checkpoint."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import pytest
import torch

from stm_core.errors import StmError
from stm_core.io import locks
from stm_core.model.checkpoint import load_model, save_weights
from stm_core.model.config import STM_SMALL
from stm_core.model.stm import STM
from stm_core.train.clip_sampler import ClipSampler
from stm_core.train.loss import clip_loss
from stm_core.train.synthetic import SyntheticClips
from stm_core.train.trainer import RUN_LOCK, TrainConfig, hard_fraction_at, lr_at, max_skip_at, progress, train


def test_training_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    clips = SyntheticClips(size=(64, 64), frames=3, max_objects=2, min_objects=2, seed=1)
    sampler = ClipSampler([(clips, 1.0)], seed=1)
    batch = sampler.batch(2)
    model = STM(STM_SMALL).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss, stats = clip_loss(model, batch.frames, batch.labels, batch.num_objects)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(stats["loss"])
    assert losses[-1] < losses[0] * 0.8, losses
    # the soft aggregation is part of the graph: the memory encoder's mask input gets gradients
    assert model.Encoder_M.conv1_m.weight.grad.abs().sum() > 0
    assert model.Encoder_M.conv1_o.weight.grad.abs().sum() > 0


def test_schedules():
    cfg = TrainConfig(steps=1000, warmup=100, lr=1e-3, skip_schedule=(2, 4), hard_start=0.5, hard_fraction=0.25)
    assert lr_at(0, 0.0, cfg) < lr_at(99, 0.099, cfg) <= 1e-3 and lr_at(999, 0.999, cfg) < 1e-4
    assert max_skip_at(0.0, cfg) == 2 and max_skip_at(0.999, cfg) == 4
    assert hard_fraction_at(0.1, cfg) == 1.0 and abs(hard_fraction_at(1.0, cfg) - 0.25) < 1e-9
    assert progress(500, 0.0, cfg) == 0.5


def test_a_time_limit_anneals_the_schedule_to_fit():
    """A run stopped by its time limit ends at the bottom of its schedules, not at its peak learning rate."""
    cfg = TrainConfig(steps=10000, max_minutes=10, warmup=10, lr=1e-3, skip_schedule=(2, 4))
    assert progress(100, 5.0, cfg) == 0.5 and progress(100, 12.0, cfg) == 1.0
    assert lr_at(100, progress(100, 9.99, cfg), cfg) < 1e-4 and max_skip_at(progress(100, 9.99, cfg), cfg) == 4


def test_training_resumes_from_its_checkpoint(tmp_path, capsys):
    cfg = dict(out_dir=str(tmp_path / "run"), batch_size=2, crop=64, workers=0, warmup=1, log_every=1,
               ckpt_every=1, val_every=0)
    train(TrainConfig(steps=2, **cfg))
    with (tmp_path / "run" / "log.jsonl").open("a") as log:  # logged after last.pt by a run killed then
        log.write(json.dumps({"step": 3, "loss": 1.0}) + "\n" + '{"step": 4, "lo')
    train(TrainConfig(steps=3, **cfg))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and log[-1]["loss"] != 1.0  # no step twice, no torn line
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ckpt["step"] == 3 and "rng" in ckpt and "optimizer" in ckpt and ckpt["minutes"] > 0
    assert load_model("stm-small", tmp_path / "run" / "best.pt").cfg == STM_SMALL
    assert load_model("stm-small", tmp_path / "run" / "final.pt").cfg == STM_SMALL
    # never validated: best.pt is the latest weights, not those of the first call
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=False)["meta"]["step"] == 3
    for name in ("best.pt", "final.pt", "last.pt"):  # QA pass 73: weights of their own ran at the source size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # last.pt: "a training checkpoint: its weights at step 3 are used"
            model = load_model("stm-small", tmp_path / "run" / name)
        assert model.recommended_height == model.recommended_adapt_height == 240
    with pytest.raises(StmError, match="continues a stm-small run, not stm-r50: pass --model stm-small"):
        train(TrainConfig(steps=4, model="stm-r50", **cfg))
    train(TrainConfig(steps=4, **dict(cfg, crop=80)))  # seventh CLI QA pass: resumed without a word
    assert "resuming with changed options: crop 64 -> 80" in capsys.readouterr().err
    written = (tmp_path / "run" / "final.pt").stat().st_mtime_ns
    with pytest.raises(StmError, match=r"last.pt is at step 4 already, --steps 2 asks for no more: pass a larger "
                                       r"--steps"):  # QA pass 30: went by as "best weights", its files rewritten
        train(TrainConfig(steps=2, **cfg))
    assert (tmp_path / "run" / "final.pt").stat().st_mtime_ns == written
    assert not (tmp_path / "run" / RUN_LOCK).exists()  # let go when a run ends, refused or not
    locks.take(tmp_path / "run" / RUN_LOCK, "another run")  # QA pass 97: a second run logged steps beside the
    with pytest.raises(StmError, match="another training run .* is writing into"):  # first and overwrote last.pt
        train(TrainConfig(steps=6, **cfg))
    locks.release(tmp_path / "run" / RUN_LOCK, "another run")
    (tmp_path / "run" / "last.pt").write_bytes(b"truncated")
    with pytest.raises(StmError, match="cannot resume from .*last.pt: not a readable training checkpoint"):
        train(TrainConfig(steps=4, **cfg))


def test_an_error_mid_run_keeps_the_steps_done(tmp_path, monkeypatch):
    """QA pass 37: a run that failed at its first validation kept no last.pt, so its steps were lost; an error
    now saves it as Ctrl+C does, and rerunning the command resumes there."""
    from stm_core.train import trainer

    calls = []

    def failing_loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("not found: dog")
        return clip_loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "clip_loss", failing_loss)
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=4, batch_size=1, crop=32, frames=2, workers=0, warmup=1,
                      ckpt_every=1000, val_every=0)
    with pytest.raises(OSError, match="not found: dog"):
        train(cfg)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 2
    assert not (tmp_path / "run" / "final.pt").exists()


def test_a_run_stopped_while_validating_validates_that_step_when_resumed(tmp_path, monkeypatch):
    """QA pass 59: stopped during a validation, the resumed run never validated that step; stopped during the
    final one, the run was refused as done and never wrote final.pt."""
    from stm_core.train import trainer

    validated, stops = [], [2, 4]

    def validate(model, cfg, settings, step, best, out, log):
        if stops and stops[0] == step:
            stops.pop(0)
            raise KeyboardInterrupt
        validated.append(step)
        log.write(json.dumps({"step": step, "val_jf": 0.5}) + "\n")
        log.flush()
        return max(best, 0.5)

    monkeypatch.setattr(trainer, "_validate", validate)
    monkeypatch.setattr(trainer, "check_davis_root", lambda cfg: None)
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=4, batch_size=1, crop=32, frames=2, workers=0, warmup=1,
                      davis_root=str(tmp_path), davis_weight=0.0, val_every=2)
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    assert validated == [2] and not (tmp_path / "run" / "final.pt").exists()
    train(cfg)  # at step 4 of 4 already: its end is still to do
    assert validated == [2, 4] and (tmp_path / "run" / "final.pt").exists()
    with pytest.raises(StmError, match="asks for no more"):
        train(cfg)
    save_weights(STM(STM_SMALL), tmp_path / "start.pt", {})
    train(replace(cfg, out_dir=str(tmp_path / "tuned"), init_weights=str(tmp_path / "start.pt")))
    assert validated == [2, 4, 0, 2, 4]  # the weights it starts from first: best.pt is never worse than them


def test_a_resume_past_its_time_limit_is_refused(tmp_path):
    """QA pass 37: resuming with a --max-minutes already used up exited 0 after no step, saying "best weights",
    where a --steps already reached is refused."""
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), steps=50, batch_size=1, crop=32, frames=2, workers=0,
                      warmup=1, val_every=0, max_minutes=0.0001)
    train(cfg)
    written = (tmp_path / "run" / "final.pt").stat().st_mtime_ns
    with pytest.raises(StmError, match=r"last.pt has trained 0.\d\d minutes already, --max-minutes 0.0001 allows "
                                       r"no more: pass a larger --max-minutes"):
        train(cfg)
    assert (tmp_path / "run" / "final.pt").stat().st_mtime_ns == written


def test_shipped_model_segments_an_unseen_davis_sequence():
    """The shipped weights on a validation sequence never used in training (model card, plain: J&F 0.65 on dog)."""
    from stm_core.engine.settings import EngineSettings
    from stm_core.train.validate import evaluate

    from .conftest import require_shared

    davis = require_shared("data", "davis2016")
    score = evaluate(None, davis, ("dog",), EngineSettings(device="cpu"))[0]
    assert score.sequence == "dog" and score.frames == 58
    assert score.jf_mean > 0.45


def _read_shared(value, out) -> None:
    out.put(int(value))


def test_a_spawned_worker_reads_the_curriculum_value_live():
    """The loader's workers see the max skip the trainer raises, without being respawned."""
    import multiprocessing

    from stm_core.train.clip_sampler import SharedInt

    skip = SharedInt(3)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    skip.set(15)
    worker = ctx.Process(target=_read_shared, args=(skip, out))
    worker.start()
    assert out.get(timeout=60) == 15
    worker.join(timeout=60)
