"""Frames resized on the GPU's side take the weights OpenCV's INTER_AREA takes on the CPU's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stm_core.engine.frame_prep import Geometry, frame_tensor, resized_on_device


@pytest.mark.parametrize("source", [(480, 854), (1080, 1920), (854, 480)])
@pytest.mark.parametrize("height", [176, 240, 360])
def test_resizing_on_the_device_matches_area_averaging(source, height):
    rng = np.random.default_rng(height)
    frame = rng.integers(0, 256, (*source, 3), dtype=np.uint8)  # noise: any misplaced weight shows
    geo = Geometry.for_source(source, height)
    on_host = frame_tensor(frame, geo, torch.device("cpu"), channels_last=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as the engine calls it: the network's number format
        on_device = resized_on_device(torch.from_numpy(frame), geo, channels_last=True)
    assert on_device.shape == on_host.shape and on_device.is_contiguous(memory_format=torch.channels_last)
    assert on_device.dtype == torch.float32
    # OpenCV rounds its result to uint8; the device keeps the exact mean
    assert float((on_device - on_host).abs().max()) <= 0.5 / 255 + 1e-5
