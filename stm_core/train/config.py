"""The settings of a training run, apart from the loop, so the command line can show their defaults without
importing PyTorch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in the checkpoint so a resume continues the same run."""

    out_dir: str = "runs/default"
    model: str = "stm-small"
    init_weights: str | None = None  # continue from a weights file (e.g. the shipped model)
    steps: int = 20000
    batch_size: int = 8
    crop: int = 192
    frames: int = 3
    max_objects: int = 3
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup: int = 300
    davis_root: str | None = None
    davis_weight: float = 0.35
    static_prob: float = 0.3  # share of real clips made by warping one still frame (STM's image pretraining)
    paste_prob: float = 0.5  # chance of pasting a second object from another sequence into a real clip
    skip_schedule: tuple[int, ...] = (3, 6, 10, 15, 20)  # max frame skip per fifth of the run
    hard_start: float = 0.3  # bootstrapped CE: from this fraction of the run, keep only hard pixels ...
    hard_fraction: float = 0.25  # ... down to this fraction of pixels at the end
    val_every: int = 1000
    val_height: int | None = 240
    log_every: int = 25
    ckpt_every: int = 200
    max_minutes: float | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 1
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
