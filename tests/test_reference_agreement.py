"""The optimised engine (bf16, channels_last, folded BatchNorm, caches, batched objects) against the naive
fp32 port of the paper's loop: the masks must agree, or the speed-up would be bought with accuracy."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from stm_core.bench import reference_propagate
from stm_core.engine.settings import EngineSettings
from stm_core.io.masks import read_mask
from stm_core.metrics import jaccard
from stm_core.model.checkpoint import load_model
from stm_core.session import AnnotationSession

from .conftest import require_shared

FRAMES = 6


@pytest.mark.parametrize("sequence", ["blackswan", "dog"])
def test_engine_masks_agree_with_the_reference_port(tmp_path, sequence):
    davis = require_shared("data", "davis2016")
    for jpg in sorted((davis / "JPEGImages" / "480p" / sequence).glob("*.jpg"))[:FRAMES]:
        shutil.copy(jpg, tmp_path / jpg.name)
    session = AnnotationSession.open(tmp_path, EngineSettings(device="cpu", process_height=0))
    first = (read_mask(davis / "Annotations" / "480p" / sequence / "00000.png", session.frames.size) > 0)
    session.set_annotation(0, first.astype(np.uint8))
    session.propagate(0, "forward")
    frames = [session.frames[i] for i in range(FRAMES)]
    ious = [jaccard(session.labels(t) > 0, labels > 0)
            for t, labels, _ in reference_propagate(load_model(), frames, first.astype(np.uint8), 1)]
    assert len(ious) == FRAMES - 1 and np.mean(ious) >= 0.99, ious
