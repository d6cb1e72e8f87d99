"""Training clips from the DAVIS-2016 training sequences (real appearance and real motion).

Two modes, mixed by `static_prob`, as in STM's two training stages:

* static-image mode: one frame and its mask, turned into T frames by independent random affine and
  elastic warps (STM's image pretraining; gives large, varied deformations of real objects);
* video mode: T frames in temporal order with random gaps of up to `max_skip` (a curriculum the trainer
  raises by setting the attribute), time-reversed half of the time, one shared random crop around the
  object, flip and colour jitter.

DAVIS-2016 has one object per sequence, so to train the "other objects" input a second (third) object
cut from another training sequence is sometimes pasted in with its own motion, in front of or behind
the first (COCO-style cut and paste).

The validation sequences must never reach training: only `TRAIN_SEQUENCES` are accepted, checked both
when a source is built and when a frame is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, SupportsInt

import cv2
import numpy as np

from stm_core.errors import InputError
from stm_core.io.frames import natural_key
from stm_core.io.masks import read_mask
from stm_core.train.augment import (
    affine_matrix,
    elastic_field,
    loguniform,
    photometric_clip,
    random_affine,
    to_chw,
    warp,
)
from stm_core.train.clip_sampler import Clip

__all__ = ["TRAIN_SEQUENCES", "VALIDATION_SEQUENCES", "check_training_sequences", "sequence_sizes", "DavisClips"]

TRAIN_SEQUENCES: tuple[str, ...] = (
    "blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "cows", "libby",
)
VALIDATION_SEQUENCES: tuple[str, ...] = ("dog", "horsejump-high", "kite-surf")


def check_training_sequences(sequences: Sequence[str]) -> tuple[str, ...]:
    """Return the names as a tuple, or raise ValueError for a validation sequence or any other name
    outside `TRAIN_SEQUENCES` (held-out acceptance sequences must not leak in either)."""
    if isinstance(sequences, str):
        sequences = (sequences,)
    leaked = sorted(set(sequences) & set(VALIDATION_SEQUENCES))
    if leaked:
        raise ValueError(f"validation sequences may not be used for training: {leaked}")
    unknown = sorted(set(sequences) - set(TRAIN_SEQUENCES))
    if unknown:
        raise ValueError(f"not training sequences: {unknown} (allowed: {TRAIN_SEQUENCES})")
    if not sequences:
        raise ValueError("no training sequences given")
    return tuple(sequences)


def sequence_sizes(davis_root: str | Path, sequences: Sequence[str],
                   resolution: str = "480p") -> dict[str, tuple[int, int]]:
    """(JPEG frames, PNG masks) of each of `sequences` under `davis_root`, (0, 0) for one that is not there: a run
    checks them before it starts (QA pass 37: a missing validation sequence ended a run at its first
    validation; own data in DAVIS layout left an empty run folder)."""
    return {seq: (len(pairs), sum(mask is not None for _, mask in pairs))
            for seq, pairs in ((seq, _pairs(Path(davis_root), seq, resolution)) for seq in sequences)}


def _pairs(root: Path, seq: str, resolution: str) -> list[tuple[Path, Path | None]]:
    """Each JPEG frame of `seq` in order, with the PNG mask of the same name (None where there is none): frames
    and masks are paired by name (QA pass 59: paired by position, a missing mask and a stray one shifted every
    later frame onto the next frame's mask)."""
    masks = {p.stem: p for p in (root / "Annotations" / resolution / seq).glob("*.png")}
    images = sorted((root / "JPEGImages" / resolution / seq).glob("*.jpg"), key=lambda p: natural_key(p.name))
    return [(image, masks.get(image.stem)) for image in images]


MAX_TRIES = 1000
"""Clips drawn at most for one sample: a clip is redrawn where its object is too small in the crop."""


class _Frame(NamedTuple):
    """A cached, downscaled frame: RGB plus the mask (0..255) as alpha, and the mask's box and area."""

    rgba: np.ndarray
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    area: float


class DavisClips:
    """Clips from DAVIS-2016 sequences under `davis_root` (the folder holding JPEGImages/ and
    Annotations/); `size` is (height, width).

    Decoded frames are cached in memory downscaled to a `cache_short_side` shorter side (7 sequences are
    about 160 MB); call `preload` before forking DataLoader workers to share that cache.
    """

    def __init__(
        self,
        davis_root: str | Path,
        sequences: Sequence[str] = TRAIN_SEQUENCES,
        size: tuple[int, int] = (192, 192),
        frames: int = 3,
        max_skip: int | SupportsInt = 5,
        max_objects: int = 3,
        static_prob: float = 0.3,
        paste_prob: float = 0.5,
        seed: int = 0,
        resolution: str = "480p",
        cache_short_side: int = 240,
        min_area_frac: float = 0.004,
    ) -> None:
        self.sequences = check_training_sequences(sequences)
        root = Path(davis_root)
        self._files: dict[str, list[tuple[Path, Path]]] = {}
        for seq in self.sequences:
            pairs = _pairs(root, seq, resolution)
            missing = next((image for image, mask in pairs if mask is None), None)
            if not pairs or missing is not None:
                raise FileNotFoundError(f"sequence {seq!r} under {root}: " + (
                    f"frame {missing.name} has no mask {missing.stem}.png" if missing else "no frames"))
            self._files[seq] = pairs  # type: ignore[assignment]
        shortest = min(len(f) for f in self._files.values())
        if frames < 1 or frames > shortest:
            raise ValueError(f"frames must be in 1..{shortest}")
        if max_objects < 1:
            raise ValueError("max_objects must be >= 1")
        self.size = (int(size[0]), int(size[1]))
        self.frames = frames
        self.max_skip = max_skip
        self.max_objects = max_objects
        self.static_prob = static_prob
        self.paste_prob = paste_prob
        self.cache_short_side = cache_short_side
        self.min_area_frac = min_area_frac
        self._cache: dict[tuple[str, int], _Frame] = {}
        self._rng = np.random.default_rng(seed)

    def __getstate__(self) -> dict[str, Any]:
        # Pickled copies (spawned workers) reload lazily instead of shipping the decoded frames.
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def preload(self) -> None:
        """Decode every frame now (otherwise frames are decoded on first use)."""
        for seq, files in self._files.items():
            for i in range(len(files)):
                self._frame(seq, i)

    def _frame(self, seq: str, index: int) -> _Frame:
        key = (seq, index)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        check_training_sequences((seq,))
        image_path, mask_path = self._files[seq][index]
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read {image_path}")
        # every object of the mask is the foreground, read as the app and the CLI read masks (QA pass 59: DAVIS-2017
        # palette masks read as grey were empty, and sampling waited forever for an object)
        mask = read_mask(mask_path, image.shape[:2], size_of=f"frame {image_path.name} is")
        rgba = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
        rgba[..., 3] = np.where(mask > 0, 255, 0)
        scale = self.cache_short_side / min(rgba.shape[:2])
        if scale < 1:
            rgba = cv2.resize(rgba, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ys, xs = np.nonzero(rgba[..., 3] > 127)
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) if xs.size else (0, 0, 0, 0)
        frame = _Frame(rgba, tuple(float(v) for v in box), float(xs.size))
        self._cache[key] = frame
        return frame

    def sample(self, rng: np.random.Generator | None = None) -> Clip:
        """A new random clip (deterministic for a given generator state)."""
        rng = self._rng if rng is None else rng
        for _ in range(MAX_TRIES):
            clip = self._render(rng, static=rng.random() < self.static_prob)
            if clip is not None:
                return clip
        raise InputError(f"no training clip in {MAX_TRIES} tries: the masks of {', '.join(self.sequences)} show no "
                         "object, or only tiny ones")

    def _frame_indices(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """T ordered indices with gaps in 1..max_skip (halved until they fit), reversed half the time."""
        gaps = rng.integers(1, max(1, int(self.max_skip)) + 1, size=self.frames - 1)
        while gaps.sum() > length - 1:
            gaps = np.maximum(1, gaps // 2)
        start = rng.integers(0, length - gaps.sum())
        idx = start + np.concatenate([[0], np.cumsum(gaps)])
        return idx[::-1] if rng.random() < 0.5 else idx

    def _crop_matrix(self, rng: np.random.Generator, frame: _Frame, fill: float) -> np.ndarray:
        """Source -> output matrix of a random resized crop around the object: the object covers
        5%-50% of the crop (as far as the image allows), off-centre, sometimes flipped. The crop
        stays inside the image and spans at most `fill` of its height or width (a margin for later
        warps), so mirrored borders, which would duplicate the object, are rare."""
        h, w = self.size
        ih, iw = frame.rgba.shape[:2]
        side = np.sqrt(frame.area / loguniform(rng, 0.05, 0.5) * w / h)  # crop width
        side = float(np.clip(side, 0.35 * min(ih, iw), fill * min(ih * w / h, iw)))
        crop = np.array([side, side * h / w])
        x0, y0, x1, y1 = frame.box
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + rng.uniform(-0.25, 0.25, 2) * crop
        centre = np.clip(centre, crop / 2, np.maximum(crop / 2, (iw, ih) - crop / 2))
        return affine_matrix(src_center=tuple(centre), dst_center=(w / 2, h / 2), scale=w / side,
                             aspect=loguniform(rng, 0.85, 1.18), flip=bool(rng.random() < 0.5))

    def _render(self, rng: np.random.Generator, static: bool) -> Clip | None:
        h, w = self.size
        unit = max(h, w) / 192
        seq = self.sequences[rng.integers(len(self.sequences))]
        length = len(self._files[seq])
        idx = [int(rng.integers(length))] * self.frames if static else self._frame_indices(rng, length)
        items = [self._frame(seq, int(i)) for i in idx]
        if items[0].area == 0:
            return None
        base = self._crop_matrix(rng, items[0], 0.7 if static else 1.0)
        layers = []
        for item in items:
            if static:
                jitter = random_affine(rng, (w / 2, h / 2), max_rotation=20, scale_range=(0.9, 1.1),
                                       max_shear=0.15, max_translation=0.1 * w)
                field = elastic_field(rng, (h, w), rng.uniform(0, 4) * unit, int(rng.integers(3, 7)))
                layers.append(warp(item.rgba, jitter @ base, (h, w), field, cv2.BORDER_REFLECT101))
            else:
                layers.append(warp(item.rgba, base, (h, w), border=cv2.BORDER_REFLECT101))
        labels = [(layer[..., 3] > 127).astype(np.uint8) for layer in layers]
        min_area = self.min_area_frac * h * w
        if labels[0].sum() < min_area:
            return None
        frames = []
        for layer in layers:
            frame = layer.astype(np.float32) * (1 / 255)
            frame[..., 3] = 1.0
            frames.append(frame)

        n = 1
        for k in range(self.max_objects - 1):
            if rng.random() >= self.paste_prob * 0.6 ** k:
                break
            n += self._paste(rng, frames, labels, n + 1, seq, static, min_area)
        frames = photometric_clip(frames, rng, strength=0.7)
        return Clip(to_chw(frames), np.stack(labels), n)

    def _paste(self, rng: np.random.Generator, frames: list[np.ndarray], labels: list[np.ndarray],
               obj_id: int, primary: str, static: bool, min_area: float) -> bool:
        """Cut an object from another sequence (a still frame, or T frames of its own video so that it
        also deforms naturally), move it along its own smooth path and composite it in front of (or,
        30% of the time, behind) the objects already there. Rejected, leaving the clip unchanged, if
        it or an earlier object would not be visible enough in frame 0."""
        h, w = self.size
        unit = max(h, w) / 192
        others = [s for s in self.sequences if s != primary] or list(self.sequences)
        seq = others[rng.integers(len(others))]
        length = len(self._files[seq])
        idx = [int(rng.integers(length))] * self.frames if static else self._frame_indices(rng, length)
        items = [self._frame(seq, int(i)) for i in idx]
        if items[0].area == 0:
            return False
        x0, y0, x1, y1 = items[0].box
        scale0 = np.sqrt(loguniform(rng, 0.03, 0.25) * h * w / items[0].area)
        c0 = rng.uniform(0.15, 0.85, 2) * (w, h)
        a = rng.uniform(0, 2 * np.pi)
        velocity = loguniform(rng, 1, 20) * unit * np.array([np.cos(a), np.sin(a)])
        angle0, spin, growth = rng.normal(0, 15), rng.normal(0, 5), rng.normal(0, 0.05)
        flip = bool(rng.random() < 0.5)
        behind = rng.random() < 0.3
        new_frames, new_labels = [], []
        for t, item in enumerate(items):
            m = affine_matrix(src_center=((x0 + x1) / 2, (y0 + y1) / 2),
                              dst_center=tuple(c0 + velocity * t), angle_deg=angle0 + spin * t,
                              scale=scale0 * np.exp(growth * t), flip=flip)
            rgba = warp(item.rgba, m, (h, w)).astype(np.float32) * (1 / 255)
            alpha = rgba[..., 3:]
            if behind:
                alpha *= (labels[t] == 0)[..., None]
            frame = frames[t].copy()
            frame[..., :3] += (rgba[..., :3] - frame[..., :3]) * alpha
            label = labels[t].copy()
            label[alpha[..., 0] > 0.5] = obj_id
            new_frames.append(frame)
            new_labels.append(label)
        areas = np.bincount(new_labels[0].ravel(), minlength=obj_id + 1)[1:obj_id + 1]
        if areas.min() < min_area:
            return False
        frames[:] = new_frames
        labels[:] = new_labels
        return True
