"""Conversions between source-resolution NumPy frames/masks and the network's padded tensors."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..model.padding import Pads, pad, pad_amounts, unpad


MIN_SIDE = 128
"""Smaller frames are scaled up to this shorter side: the network sees them at 1/16, and a 64x48 frame gave it
4x3 feature cells, too few to tell an object from the background (every propagated mask came out empty)."""
MAX_UPSCALED_SIDE = 1024
"""Scaling up stops before the longer side passes this (a sliver of a frame stays as it is)."""


@dataclass(frozen=True)
class Geometry:
    """Source size, processing size (aspect kept) and padding to /16.

    The processing height of a landscape frame, `process_height`, applies to the shorter side: a portrait
    phone video at 240 runs 240 px wide, not 135. Frames under `MIN_SIDE` are scaled up to it, or to a smaller
    `process_height` asked for (QA pass 30: 99 asked for 77 px frames ran at 128)."""

    source: tuple[int, int]
    work: tuple[int, int]
    pads: Pads

    @classmethod
    def for_source(cls, source: tuple[int, int], process_height: int | None) -> "Geometry":
        h, w = source
        short, long = min(h, w), max(h, w)
        scale = 1.0
        if process_height and process_height < short:
            scale = process_height / short
        elif short < MIN_SIDE:
            target = MIN_SIDE if process_height is None else min(MIN_SIDE, process_height)
            scale = max(1.0, min(target / short, MAX_UPSCALED_SIDE / long))
        work = (h, w) if scale == 1.0 else (max(16, round(h * scale)), max(16, round(w * scale)))
        return cls(source, work, pad_amounts(*work))

    @property
    def resized(self) -> bool:
        return self.work != self.source


def frame_tensor(frame: np.ndarray, geo: Geometry, device: torch.device,
                 channels_last: bool) -> torch.Tensor:
    """RGB uint8 HxWx3 -> padded [1,3,Hp,Wp] float in [0,1] at the processing size.

    Resized and zero-padded as uint8, then converted once: an HxWx3 image already is the channels_last layout
    of [1,3,H,W], so the conversion is the only pass over float data (converting first, then padding and
    changing the layout, took three; 480p: 5.4 ms -> 0.6 ms on one core). On a GPU a frame to resize is resized
    there (`resized_on_device`)."""
    if geo.resized and device.type == "cuda" and geo.work[0] < geo.source[0]:
        pinned = torch.empty(frame.shape, dtype=torch.uint8, pin_memory=True)
        pinned.numpy()[...] = frame
        return resized_on_device(pinned.to(device, non_blocking=True), geo, channels_last)
    if geo.resized:
        frame = cv2.resize(frame, geo.work[::-1], interpolation=cv2.INTER_AREA)
    left, right, top, bottom = geo.pads
    if any(geo.pads):  # zeros on the [0,1] image, as the official code pads
        frame = cv2.copyMakeBorder(frame, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
    elif not frame.flags.writeable:  # cached frames are read-only; torch wants memory it may write
        frame = frame.copy()
    t = torch.from_numpy(frame)
    # on a GPU an upload from pinned memory is queued; one from pageable memory waits for all queued work
    t = t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t.to(device)
    t = t.unsqueeze(0).permute(0, 3, 1, 2).float().div_(255)
    return t if channels_last else t.contiguous()


def resized_on_device(frame: torch.Tensor, geo: Geometry, channels_last: bool) -> torch.Tensor:
    """RGB uint8 HxWx3 tensor (a frame `geo` scales down) -> padded [1,3,Hp,Wp] float in [0,1] at the
    processing size, on the frame's device.

    The weights of OpenCV's INTER_AREA (each output pixel the area-weighted mean of the source pixels it covers)
    as two matrix products. INTER_AREA itself, at a ratio that is not a whole number (176 or 360 px from 480),
    took 3.6-4.6 ms of host time per 480p frame on the thread that feeds the GPU, so there the plain default
    (176 px) ran slower than 240 px (H200: 132 against 244 fps); the card does this in microseconds."""
    t = frame.permute(2, 0, 1).unsqueeze(0).float().div_(255)
    rows, cols = (_area_weights(n_in, n_out, str(frame.device)) for n_in, n_out in zip(geo.source, geo.work))
    with torch.autocast(frame.device.type, enabled=False):  # in fp32 as on the host, whatever the network's
        t = rows @ t @ cols.T
    t = pad(t, geo.pads)
    return t.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@functools.lru_cache(maxsize=16)
def _area_weights(n_in: int, n_out: int, device: str) -> torch.Tensor:
    """[n_out, n_in]: how much of output pixel i each input pixel covers, as a fraction of i's extent."""
    scale = n_in / n_out
    edges = torch.arange(n_out + 1, dtype=torch.float64) * scale
    first = torch.arange(n_in, dtype=torch.float64)
    overlap = torch.minimum(edges[1:, None], first + 1) - torch.maximum(edges[:-1, None], first)
    return (overlap.clamp_min(0) / scale).float().to(device)


def labels_to_probs(labels: np.ndarray, obj_ids: list[int], geo: Geometry,
                    device: torch.device) -> torch.Tensor:
    """Label map -> per-object masks [K,1,Hp,Wp] (area-averaged when downscaled, so edges stay soft)."""
    masks = [(labels == o).astype(np.float32) for o in obj_ids]
    if geo.resized:  # one object at a time: OpenCV's area resize takes at most 4 channels
        masks = [cv2.resize(m, geo.work[::-1], interpolation=cv2.INTER_AREA) for m in masks]
    t = torch.from_numpy(np.stack(masks)).to(device).unsqueeze(1)
    return pad(t, geo.pads)


def probs_to_source(probs: torch.Tensor, geo: Geometry) -> torch.Tensor:
    """Aggregated probabilities [K+1,Hp,Wp] -> [K+1,H,W] at the source size (bilinear when resized)."""
    probs = unpad(probs, geo.pads)
    if geo.resized:
        probs = torch.nn.functional.interpolate(probs.unsqueeze(0), size=geo.source, mode="bilinear",
                                                align_corners=False, antialias=geo.work[0] > geo.source[0]
                                                ).squeeze(0)
    return probs
