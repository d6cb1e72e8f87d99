"""CUDA graphs compute what the eager network computes (runs where a GPU is present; skipped elsewhere)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from stm_core.engine.cuda_graphs import GraphedNetwork
from stm_core.engine.frame_outputs import PendingResult, frame_outputs
from stm_core.engine.frame_prep import Geometry
from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.metrics import jaccard
from stm_core.model.aggregation import aggregate
from stm_core.model.config import STM_SMALL
from stm_core.model.fusion import fold_batchnorm
from stm_core.model.stm import STM
from stm_core.session import AnnotationSession

from .engine_helpers import soft_discs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a.float() - b.float()).norm() <= 2e-2 * b.float().norm() + 1e-6)


@torch.inference_mode()
def test_replays_match_the_eager_network_on_fresh_inputs():
    torch.manual_seed(0)
    model = fold_batchnorm(STM(STM_SMALL).eval()).cuda().to(memory_format=torch.channels_last)
    graphed = GraphedNetwork(model)
    for _ in range(3):  # fresh inputs each time: a replay must read its inputs, not the captured ones
        frame = torch.rand(1, 3, 96, 160, device="cuda").contiguous(memory_format=torch.channels_last)
        probs = torch.rand(2, 1, 96, 160, device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            q, q_ref = graphed.encode_query(frame), model.encode_query(frame)
            (k, v), (k_ref, v_ref) = graphed.memorize(frame, probs), model.memorize(frame, probs)
            mk, mv = k.unsqueeze(2).repeat(1, 1, 3, 1, 1), v.unsqueeze(2).repeat(1, 1, 3, 1, 1)
            out, ref = graphed.segment(q, mk, mv), model.segment(q_ref, mk, mv)
        assert _close(q.key, q_ref.key) and _close(q.skip2, q_ref.skip2)
        assert _close(k, k_ref) and _close(v, v_ref)
        assert _close(out, ref)
    assert not graphed._failed and len(graphed._graphs) == 3


def test_repeated_runs_give_the_same_masks():
    """cuDNN keeps autotuned plans per thread: the network must run on one thread for the process, else each run
    re-tunes and may pick other kernels (seen on an H100: mask IoU 0.95-0.99 between identical runs)."""
    video = GeneratedVideo(16, (240, 432), 1)
    runs = []
    for _ in range(2):
        session = AnnotationSession(video, EngineSettings(device="cuda", process_height=0, adapt_steps=0))
        session.set_annotation(0, video.labels(0))
        session.propagate(0, "forward")
        runs.append(np.stack([session.labels(i) for i in range(1, 16)]))
    assert np.array_equal(*runs)


def test_propagation_with_graphs_matches_without():
    video = GeneratedVideo(12, (240, 432), 2)
    settings = EngineSettings(device="cuda", process_height=0, adapt_steps=0, random_init=True)
    labels = []
    for graphs in (True, False):
        torch.manual_seed(0)  # the same random network both times
        session = AnnotationSession(video, replace(settings, cuda_graphs=graphs))
        session.set_annotation(0, video.labels(0))
        session.propagate(0, "forward")
        labels.append([session.labels(i) for i in range(1, 12)])
    scores = [jaccard(b == o, a == o) for a, b in zip(*labels) for o in (1, 2) if (b == o).any()]
    assert scores and float(np.mean(scores)) >= 0.99


def test_a_frame_result_computed_on_the_gpu_matches_the_cpu():
    geo = Geometry.for_source((240, 416), 120)
    agg = aggregate(torch.nn.functional.pad(soft_discs(120, 208, 2), geo.pads), dim=0)
    lut = torch.tensor([0, 3, 9], dtype=torch.uint8)
    cpu = PendingResult(1, frame_outputs(agg, geo, lut)).result()
    gpu = PendingResult(1, frame_outputs(agg.cuda(), geo, lut.cuda())).result()
    assert (gpu.labels != cpu.labels).mean() < 1e-3  # bilinear upsampling may round a boundary pixel apart
    assert np.abs(gpu.probs.astype(int) - cpu.probs).max() <= 1
    assert abs(gpu.uncertainty - cpu.uncertainty) < 1e-4
    assert not torch.from_numpy(gpu.labels).is_pinned()  # copied out: pinned buffers go back to their cache
