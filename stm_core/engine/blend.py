"""A frame between two annotated frames takes the results of the runs from both, weighted by distance.

A correction on frame b propagates backwards over frames that the run from an earlier annotated frame a
already segmented (and a correction on a forwards over those from b). Each run is most reliable near the
annotated frame it started from and drifts with distance, so replacing the old result outright throws away
what was good near a (on DAVIS with the round-1 weights a correction made bmx-trees worse that way). Instead
the soft maps of both runs are averaged with weights linear in the distance to each annotated frame (the
nearer run counts more) and the labels come from the average, as interactive VOS systems after STM do when
they fuse the two directions.
"""

from __future__ import annotations

import cv2
import numpy as np


def blend_weight(frame: int, new_origin: int, old_origin: int) -> float:
    """Weight of the new run's result on `frame`, lying between the two runs' annotated frames."""
    to_new, to_old = abs(frame - new_origin), abs(frame - old_origin)
    return to_old / (to_new + to_old)


def blend_soft(new: np.ndarray, old: np.ndarray, weight: float, obj_ids: list[int],
               size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8 at `size`, soft maps uint8 [K,h,w]) of `weight` * new + (1 - weight) * old, where both are
    soft-aggregated object probabilities uint8 [K,h,w] (0..255) for `obj_ids`. The background's probability is
    what the objects leave (aggregated probabilities sum to one); labels are the most probable channel after
    upsampling to `size` (H, W) bilinearly, as the engine makes them."""
    probs = weight * new.astype(np.float32) + (1.0 - weight) * old.astype(np.float32)
    channels = [np.clip(255.0 - probs.sum(0), 0.0, None)] + list(probs)
    if probs.shape[1:] != size:  # one channel at a time: OpenCV's resize takes only so many channels
        channels = [cv2.resize(c, size[::-1], interpolation=cv2.INTER_LINEAR) for c in channels]
    lut = np.array([0] + obj_ids, np.uint8)
    return lut[np.argmax(np.stack(channels), axis=0)], np.round(probs).astype(np.uint8)
