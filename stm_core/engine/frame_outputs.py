"""A propagated frame's result: computed on the network's device, then handed to the host without stalling it.

On a GPU, every `.cpu()` of a result waits for all the work queued before it, so reading labels, soft masks
and uncertainty right after each frame kept the host and the card taking turns. Here the whole result is
computed as tensors on the device (on a GPU with no host round trip, so a CUDA graph holds it), copied to
pinned host memory asynchronously, and only read (`PendingResult.result`) by the consumer, frames later,
while the network already works on the next frames. On the CPU the same code runs and the copy is a no-op.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..model.padding import unpad
from .cuda_graphs import CAPTURE_LOCK
from .frame_prep import Geometry, probs_to_source


class FrameResult(NamedTuple):
    """One propagated frame: labels at the source size, probabilities at the working size (upsampled when
    read), boundary uncertainty. `preview` marks a result shown while adapting, redone after it; `fill_only`
    marks a preview of the unadapted network, which must not replace a result the frame already has;
    `network` names the network that made it: () for the loaded one, else the annotations it was adapted to."""

    index: int
    labels: np.ndarray  # uint8 HxW
    probs: np.ndarray  # uint8 [K,h,w], one channel per object id
    uncertainty: float
    preview: bool = False
    fill_only: bool = False
    network: tuple = ()


class FrameTensors(NamedTuple):
    """A frame's result on the device: object ids uint8 [H,W] at the source size, soft masks uint8 [K,h,w] at
    the working size, uncertainty as a 0-d float tensor."""

    labels: torch.Tensor
    probs: torch.Tensor
    uncertainty: torch.Tensor


def winner(probs: torch.Tensor) -> torch.Tensor:
    """Index (uint8) of the most probable channel of [K+1,H,W] per pixel (the first on ties). `max(0)` rather
    than `argmax(0)`: on the CPU argmax over a short leading dimension was 9x slower at 480p (44 vs 5 ms). One
    object's two channels are compared instead: 1.4 against 14 ms at 1080p on two cores, where the winner is
    taken at the source size (py-spy: a tenth of the network thread's time for a 1080p video at 240 px)."""
    if probs.shape[0] == 2:
        return (probs[1] > probs[0]).to(torch.uint8)
    return probs.max(0).indices.to(torch.uint8)


def boundary_uncertainty(probs: torch.Tensor, channel: torch.Tensor, band: int = 7) -> torch.Tensor:
    """Mean normalised entropy of the distribution [K+1,H,W] in a `band`-wide square around the boundaries of
    its winning channels `channel` [H,W] (uint8), as a 0-d tensor.

    Boundaries are where a mistake shows first; with no boundary (nothing segmented) the whole frame counts.
    The band is where a dilation and an erosion of the winners differ.
    """
    mean = _band_mean_weighted(probs, channel, band) if probs.is_cuda else _band_mean_indexed(probs, channel, band)
    return mean / math.log(probs.shape[0])


def _band_mean_weighted(probs: torch.Tensor, channel: torch.Tensor, band: int) -> torch.Tensor:
    """On a GPU: the band from max filters, the mean weighted by it, so nothing waits for the host."""
    c = channel.float()[None, None]
    dilated = F.max_pool2d(c, band, stride=1, padding=band // 2)
    eroded = -F.max_pool2d(-c, band, stride=1, padding=band // 2)
    edge = (dilated != eroded)[0, 0].float()
    entropy = _entropy(probs)
    count = edge.sum()
    return torch.where(count > 0, (entropy * edge).sum() / count.clamp_min(1), entropy.mean())


def _band_mean_indexed(probs: torch.Tensor, channel: torch.Tensor, band: int) -> torch.Tensor:
    """On the CPU: OpenCV finds the band 70x faster than a max filter (0.2 vs 16 ms at 480p) and only the
    band's pixels are read."""
    labels = channel.numpy()
    kernel = np.ones((band, band), np.uint8)
    edge = torch.from_numpy(cv2.dilate(labels, kernel) != cv2.erode(labels, kernel))
    return _entropy(probs[:, edge] if edge.any() else probs.flatten(1)).mean()


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    p = probs.float().clamp_min(1e-6)
    return -(p * p.log()).sum(0)


def frame_outputs(agg: torch.Tensor, geo: Geometry, lut: torch.Tensor | None) -> FrameTensors:
    """The result of aggregated probabilities [K+1,Hp,Wp] (padded working size): labels mapped through `lut`
    (channel -> object id, uint8 on the device; None when channel k is object k), soft masks and uncertainty
    at the working size."""
    work = unpad(agg, geo.pads)
    work_winner = winner(work)
    uncertainty = boundary_uncertainty(work, work_winner)
    labels = winner(probs_to_source(agg, geo)) if geo.resized else work_winner
    if lut is not None:
        labels = lut[labels.long()]
    probs = (work[1:].float() * 255).round().to(torch.uint8)
    return FrameTensors(labels, probs, uncertainty)


class PendingResult:
    """A frame's result on its way to the host: on a GPU the copies are queued behind the network's work and
    `result` waits for them, so the thread that queued them never waits."""

    def __init__(self, index: int, tensors: FrameTensors) -> None:
        self.index = index
        self._event: torch.cuda.Event | None = None
        if tensors.labels.is_cuda:  # pinned destinations (non_blocking), so the copy runs in the background
            tensors = FrameTensors(*(t.to("cpu", non_blocking=True) for t in tensors))
            self._event = torch.cuda.Event()
            self._event.record()
        self._tensors: FrameTensors | None = tensors

    def result(self) -> FrameResult:
        """The frame's result as NumPy (waits for the device's copies; call once)."""
        assert self._tensors is not None, "result() was already taken"
        on_gpu = self._event is not None
        # a graph capture on the network's thread fails if this thread touches CUDA meanwhile (the event wait,
        # freeing the event, freeing the pinned buffers, which queries their events), so all of it is locked
        with CAPTURE_LOCK if on_gpu else nullcontext():
            (tensors, self._tensors), (event, self._event) = (self._tensors, None), (self._event, None)
            if event is not None:
                event.synchronize()
            # pinned memory is copied out, so it goes back to its cache rather than into stored results
            out = FrameResult(self.index, _array(tensors.labels, on_gpu), _array(tensors.probs, on_gpu),
                              float(tensors.uncertainty))
            del tensors, event
        return out


def _array(t: torch.Tensor, copy: bool) -> np.ndarray:
    a = t.numpy()
    return a.copy() if copy else a
