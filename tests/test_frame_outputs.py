"""A frame's result computed as tensors: labels, soft masks and boundary uncertainty."""

from __future__ import annotations

import math

import numpy as np
import torch

from stm_core.engine.frame_outputs import (PendingResult, _band_mean_indexed, _band_mean_weighted,
                                           boundary_uncertainty, frame_outputs, winner)
from stm_core.engine.frame_prep import Geometry
from stm_core.model.aggregation import aggregate

from .engine_helpers import soft_discs


def test_gpu_and_cpu_ways_to_find_the_band_give_the_same_uncertainty():
    agg = aggregate(soft_discs(120, 208, 3), dim=0)
    channel = agg.max(0).indices.to(torch.uint8)
    assert math.isclose(float(_band_mean_weighted(agg, channel, 7)), float(_band_mean_indexed(agg, channel, 7)),
                        rel_tol=1e-5)
    empty = torch.zeros_like(channel)  # no boundary: the whole frame counts, in both ways
    assert math.isclose(float(_band_mean_weighted(agg, empty, 7)), float(_band_mean_indexed(agg, empty, 7)),
                        rel_tol=1e-5)


def test_uncertainty_is_high_on_soft_boundaries_and_low_on_confident_masks():
    soft = aggregate(soft_discs(120, 208, 1), dim=0)
    hard = aggregate((soft_discs(120, 208, 1) > 0.5).float() * 0.998 + 0.001, dim=0)
    u_soft = float(boundary_uncertainty(soft, soft.max(0).indices.to(torch.uint8)))
    u_hard = float(boundary_uncertainty(hard, hard.max(0).indices.to(torch.uint8)))
    assert 0 <= u_hard < 0.05 < u_soft <= 1


def test_frame_result_maps_channels_to_object_ids_at_the_source_size():
    geo = Geometry.for_source((240, 416), 120)  # working size 120x208, padded to 128x208
    fg = torch.nn.functional.pad(soft_discs(120, 208, 2), geo.pads)
    agg = aggregate(fg, dim=0)
    result = PendingResult(7, frame_outputs(agg, geo, torch.tensor([0, 3, 9], dtype=torch.uint8))).result()
    assert result.index == 7 and result.labels.shape == (240, 416) and result.labels.dtype == np.uint8
    assert set(np.unique(result.labels)) == {0, 3, 9}
    assert result.probs.shape == (2, 120, 208) and result.probs.dtype == np.uint8
    # the label map at the source size is the upsampled working-size winner, object by object
    assert abs((result.labels == 3).mean() - (result.probs[0] > 127).mean()) < 0.01
    same_ids = PendingResult(7, frame_outputs(agg, geo, None)).result()
    assert set(np.unique(same_ids.labels)) == {0, 1, 2}
    assert same_ids.uncertainty == result.uncertainty


def test_one_objects_winner_is_the_first_most_probable_channel_as_for_several():
    """The two-channel shortcut gives what `max(0)` gives, ties (to the background) included."""
    rng = torch.Generator().manual_seed(0)
    for channels in (2, 3):
        probs = torch.softmax(torch.randn(channels, 64, 96, generator=rng) * 3, 0)
        probs[:, :8, :8] = 1 / channels  # exact ties
        probs[:, 8:16, :8] = probs[:, 8:16, :8].to(torch.bfloat16).float()  # near ties, rounded
        expected = probs.max(0).indices.to(torch.uint8)
        assert torch.equal(winner(probs), expected) and winner(probs).dtype == torch.uint8
        assert int(winner(probs)[:8, :8].max()) == 0
