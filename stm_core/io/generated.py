"""A procedurally rendered video of any length, for benchmarks and long-video checks without files.

Frame i is computed from i alone (a panning textured background, textured discs on smooth paths), so a
10,000-frame video costs no disk and no RAM beyond the frame cache; `labels(i)` gives its exact masks.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .frames import FrameSource


class GeneratedVideo(FrameSource):
    """`num_frames` frames of `size` (H, W) with `objects` moving discs labelled 1..objects."""

    def __init__(self, num_frames: int, size: tuple[int, int] = (480, 854), objects: int = 1,
                 seed: int = 0, cache_size: int = 8) -> None:
        names = [f"{i:0{max(5, len(str(num_frames - 1)))}d}" for i in range(num_frames)]
        super().__init__(Path(f"<generated {num_frames} frames>"), names, size, cache_size)
        rng = np.random.default_rng(seed)
        h, w = size
        noise = rng.normal(0, 1, (h // 8 + 8, w // 8 + 8, 3)).astype(np.float32)
        self._background = np.clip(110 + 40 * cv2.resize(noise, (w + 64, h + 64), interpolation=cv2.INTER_CUBIC),
                                   0, 255).astype(np.uint8)
        self._colours = rng.integers(40, 230, (objects, 3))
        self._radius = rng.uniform(0.08, 0.16, objects) * min(h, w)
        self._phase = rng.uniform(0, 2 * np.pi, (objects, 2))
        self._speed = rng.uniform(0.01, 0.04, (objects, 2))

    def _centres(self, index: int) -> np.ndarray:
        h, w = self.size
        t = self._phase + self._speed * index
        return np.stack([(0.5 + 0.3 * np.sin(t[:, 0])) * w, (0.5 + 0.3 * np.sin(t[:, 1])) * h], 1)

    def labels(self, index: int) -> np.ndarray:
        """Exact label map of frame `index` (later objects drawn on top)."""
        out = np.zeros(self.size, np.uint8)
        for k, (cx, cy) in enumerate(self._centres(index)):
            cv2.circle(out, (int(cx), int(cy)), int(self._radius[k]), k + 1, -1)
        return out

    def _decode(self, index: int) -> np.ndarray:
        h, w = self.size
        dx, dy = int(32 + 30 * np.sin(index * 0.05)), int(32 + 30 * np.cos(index * 0.037))
        frame = self._background[dy:dy + h, dx:dx + w].copy()
        labels = self.labels(index)
        for k, colour in enumerate(self._colours):
            region = labels == k + 1
            frame[region] = (0.6 * colour + 0.4 * frame[region]).astype(np.uint8)
        return frame

    def _describe(self, index: int) -> str:
        return f"generated frame {index}"
