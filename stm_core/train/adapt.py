"""Test-time adaptation: fine-tune a copy of the network on the user's annotated frames before propagating.

The only ground truth a video has is what the annotator painted. Warping an annotated frame and its mask
(STM's static-image pretraining, applied to this one video) gives clips of this video's objects and
background, and a few optimizer steps on them specialise a small, weakly trained model to the video.
BatchNorm statistics stay frozen: a batch of near-identical clips would skew them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch

from ..engine.hardware import autocast
from ..model.stm import STM
from .augment import elastic_field, photometric_clip, random_affine, to_chw, warp
from .clip_sampler import Clip, ClipSampler
from .loss import clip_loss


class StillFrameClips:
    """Clips made by warping annotated frames: each clip frame is a random affine + elastic warp of one
    (image, labels) pair. Images are RGB uint8 at the working size; labels are 0..num_objects."""

    def __init__(self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], frames: int = 3) -> None:
        if not images or len(images) != len(labels):
            raise ValueError("need one label map per annotated image")
        h, w = images[0].shape[:2]
        self.size = (h // 16 * 16, w // 16 * 16)  # the network works on multiples of 16
        self.frames = frames
        self._layers = []
        for image, lab in zip(images, labels):
            rgba = np.dstack([image, lab.astype(np.uint8)])[: self.size[0], : self.size[1]]
            self._layers.append(rgba)
        self.max_objects = max(1, max(int(lab.max()) for lab in labels))

    def sample(self, rng: np.random.Generator | None = None) -> Clip:
        rng = rng or np.random.default_rng()
        h, w = self.size
        source = self._layers[int(rng.integers(len(self._layers)))]
        frames, labels = [], []
        for _ in range(self.frames):
            matrix = random_affine(rng, (w / 2, h / 2), max_rotation=15, scale_range=(0.85, 1.15),
                                   max_shear=0.1, max_translation=0.08 * w)
            field = elastic_field(rng, (h, w), rng.uniform(0, 3) * max(h, w) / 192, int(rng.integers(3, 7)))
            image = warp(source[..., :3], matrix, (h, w), field, cv2.BORDER_REFLECT101)
            lab = warp(source[..., 3], matrix, (h, w), field, cv2.BORDER_REFLECT101, nearest=True)
            frame = np.ones((h, w, 4), np.float32)
            frame[..., :3] = image * (1 / 255)
            frames.append(frame)
            labels.append(lab)
        frames = photometric_clip(frames, rng, strength=0.5)
        # A clip tracks the objects its first frame shows, numbered 1..K as `Clip` promises: a warp can push an
        # object out of frame 0 but not out of a later one, whose label the loss (sized by frame 0) cannot take.
        table = np.zeros(256, np.uint8)
        shown = np.unique(labels[0])
        shown = shown[shown > 0]
        table[shown] = np.arange(1, len(shown) + 1)
        return Clip(to_chw(frames), table[np.stack(labels)], len(shown))


def adapt(model: STM, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], steps: int = 60,
          lr: float = 1e-4, batch_size: int = 2, seed: int = 0, fast: bool = True,
          cancel: Callable[[], bool] | None = None, progress: Callable[[int, int], None] | None = None) -> STM:
    """A copy of `model` fine-tuned for `steps` steps on warps of the annotated frames (labels 0..K, with
    every object 1..K present in at least one frame). Returns the copy in eval mode; `model` is unchanged.
    `fast`: in the device's fast reduced precision where it has one, as the engine's setting of that name (off,
    everything is fp32). `progress(done, steps)` after each step: the wait is seconds long, so the user is
    shown it."""
    device = next(model.parameters()).device
    tuned = copy.deepcopy(model).train()
    for module in tuned.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    source = StillFrameClips(images, labels)
    sampler = ClipSampler([(source, 1.0)], seed=seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(tuned.parameters(), lr=lr, weight_decay=0.0)
    with torch.enable_grad():  # callers may run under no_grad (a benchmark, an inference thread)
        for step in range(1, steps + 1):
            if cancel is not None and cancel():
                break
            frames, labs, counts = sampler.batch(batch_size, rng)
            keep = [i for i, n in enumerate(counts) if n > 0]
            if keep:
                frames, labs = frames[keep].to(device), labs[keep].to(device)
                with autocast(device, fast):
                    loss, _ = clip_loss(tuned, frames, labs, [counts[i] for i in keep])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(tuned.parameters(), 1.0)
                opt.step()
            if progress is not None:
                progress(step, steps)
    return tuned.eval()
