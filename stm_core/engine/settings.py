"""Engine settings: which model, where it runs, and the memory schedule; plain data, shared by CLI and app."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass

from ..errors import SettingsError
from ..model.config import CONFIGS, MIN_PROCESS_HEIGHT

RECOMMENDED_ADAPT_STEPS = 60
"""Test-time adaptation steps for weights that recommend adaptation (their meta names an adapted working
height, as the shipped model's does): on the validation sequences it lifts the shipped model's J&F from 0.45 to
0.72 for 35-80 s per set of annotations on a 2-core CPU. Chosen with the round-1 weights: 40 steps gave 0.69
on them and 0.77 instead of 0.78 on all ten shared sequences, 80 steps no more (benchmarks/adapt_sweep.py)."""

INTERACTIVE_PREVIEW_FRAMES = 25
"""`preview_frames` for interactive use (the application): while the engine adapts (tens of seconds on a CPU),
this many frames are propagated first, about a second of work, so the annotator sees where the mask goes."""


_WHOLE_NUMBERS = ("mem_every", "max_memory", "process_height", "top_k", "adapt_steps", "adapt_batch", "preview_frames")


@dataclass(frozen=True)
class EngineSettings:
    """How the propagator runs.

    model: "stm-small" (shipped default, ResNet-18-style encoders) or "stm-r50" (the paper's network, loads the
        official STM_weights.pth). weights: a checkpoint path; None means the shipped default weights. device:
        "auto" (CUDA if present), "cpu" or "cuda". mem_every: every N-th propagated frame joins memory (paper: 5).
        max_memory: cap on memory frames; annotated frames are never evicted, the oldest propagated ones are;
        past the cap, a run memorises the first annotated frame and those nearest its start.
        process_height: run the network at this frame height (e.g. 480, 360, 240; the width of a portrait frame)
        and upsample results to source size; 0 keeps the source size; None uses the height the weights file
        recommends (the scale the model was trained and validated at), else the source size. Frames under 128 px
        are scaled up to it unless a smaller height is set (`frame_prep.MIN_SIDE`). fast: channels_last, and
        bf16 autocast where the hardware computes bf16 (an Ampere+ GPU, an x86 CPU with AVX-512 BF16), else fp32.
        cuda_graphs: on a GPU, replay CUDA graphs of the network's per-frame calls (the same results, far fewer
        kernel launches).
        top_k: keep only the k strongest memory matches per query position (None: all, as in the paper).
        adapt_steps: test-time adaptation, fine-tune a copy of the network for this many steps on warps of the
        annotated frames before propagating (0, the default here: off; None, what the CLI and the app use:
        RECOMMENDED_ADAPT_STEPS if the weights recommend adaptation, else off, so the strong official weights are
        not slowed); it is redone whenever the annotations
        change. adapt_lr / adapt_batch: its learning rate and clips per step (benchmarks/adapt_sweep.py). With
        adaptation on and no process_height, the network runs at the height the weights recommend for adapted
        propagation: adaptation teaches the model the video's own scale. preview_frames: while an adaptation is to
        be done, first propagate this many frames with the network at hand (the previous adaptation after a
        correction, else the unadapted one) so a result shows at once (0: off, as for a batch run).
        random_init: build the network without weights (tests only).
    """

    model: str = "stm-small"
    weights: str | None = None
    device: str = "auto"
    mem_every: int = 5
    max_memory: int = 20
    process_height: int | None = None
    fast: bool = True
    cuda_graphs: bool = True
    top_k: int | None = None
    adapt_steps: int | None = 0
    adapt_lr: float = 1e-4
    adapt_batch: int = 2
    preview_frames: int = 0
    random_init: bool = False

    def __post_init__(self) -> None:
        """Out-of-range values fail here with one line, not later as blank masks or a library's assertion."""
        for field in _WHOLE_NUMBERS:  # QA pass 21: mem_every=2.5 ran, max_memory="20" raised a TypeError
            value = getattr(self, field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
                raise SettingsError(field, f"must be a whole number, not {value!r}")
        checks = (
            ("model", self.model in CONFIGS, f"must be one of {', '.join(CONFIGS)}"),
            ("device", isinstance(self.device, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None,
             "must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
            ("mem_every", self.mem_every >= 1, "must be at least 1"),
            ("max_memory", self.max_memory >= 1, "must be at least 1"),
            ("process_height", self.process_height in (None, 0) or self.process_height >= MIN_PROCESS_HEIGHT,
             f"must be 0 (the source size) or at least {MIN_PROCESS_HEIGHT}"),
            ("top_k", self.top_k is None or self.top_k >= 1, "must be at least 1"),
            ("adapt_steps", self.adapt_steps is None or self.adapt_steps >= 0, "must be at least 0"),
            ("adapt_lr", self.adapt_lr > 0, "must be above 0"),
            ("adapt_batch", self.adapt_batch >= 1, "must be at least 1"),
            ("preview_frames", self.preview_frames >= 0, "must be at least 0"),
        )
        for field, ok, requirement in checks:
            if not ok:
                raise SettingsError(field, f"{requirement}, not {getattr(self, field)!r}")
