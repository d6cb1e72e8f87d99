"""The optimised engine (bf16, channels_last, folded BatchNorm, caches, batched objects) against the naive
fp32 port of the paper's loop: the masks must agree, or the speed-up would be bought with accuracy. The bf16
cases force bf16 whatever the CPU (the engine uses it only with hardware bf16; elsewhere it is emulated, slower
but the same numbers), so the check runs on every machine.

Both run on the same frames at 240 px, the shipped model's default working height. At 480 px, a scale the
plain shipped model never saw in training, its masks are uncertain enough that bf16 rounding flips boundary
pixels: the round-2 weights agree there at mean IoU 0.984 (blackswan) and 0.989 (dog), the round-1 weights
at 0.99 and more; in fp32 the engine equals the port at either height (BENCHMARKS.md)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from stm_core.bench import reference_propagate
from stm_core.engine import hardware
from stm_core.engine.settings import EngineSettings
from stm_core.io.masks import read_mask
from stm_core.metrics import jaccard
from stm_core.model.checkpoint import load_model
from stm_core.session import AnnotationSession

from .conftest import require_shared

FRAMES = 6
HEIGHT = 240


@pytest.mark.parametrize("sequence,dtype,floor", [("blackswan", torch.bfloat16, 0.99), ("dog", torch.bfloat16, 0.99),
                                                  ("dog", None, 0.999)])
def test_engine_masks_agree_with_the_reference_port(tmp_path, monkeypatch, sequence, dtype, floor):
    """With bf16 the masks agree to 0.99; in fp32 the engine's other optimisations (channels_last, folded
    BatchNorm, caches, batched objects, the run-ahead loop) must not change them at all (at 480 px too:
    BENCHMARKS.md)."""
    monkeypatch.setattr(hardware, "autocast_dtype", lambda device: dtype)
    davis = require_shared("data", "davis2016")
    width = round(854 * HEIGHT / 480)
    for jpg in sorted((davis / "JPEGImages" / "480p" / sequence).glob("*.jpg"))[:FRAMES]:
        frame = cv2.resize(cv2.imread(str(jpg)), (width, HEIGHT), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(tmp_path / f"{jpg.stem}.png"), frame)
    session = AnnotationSession.open(tmp_path, EngineSettings(device="cpu", process_height=0))
    first = read_mask(davis / "Annotations" / "480p" / sequence / "00000.png", (480, 854)) > 0
    first = cv2.resize(first.astype(np.uint8), (width, HEIGHT), interpolation=cv2.INTER_NEAREST)
    session.set_annotation(0, first)
    session.propagate(0, "forward")
    frames = [session.frames[i] for i in range(FRAMES)]
    ious = [jaccard(session.labels(t) > 0, labels > 0)
            for t, labels, _ in reference_propagate(load_model(), frames, first, 1)]
    assert len(ious) == FRAMES - 1 and np.mean(ious) >= floor, ious
