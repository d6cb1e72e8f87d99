"""Validation the way a user runs the tool: propagate each sequence from its first-frame mask, score J&F."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.propagator import Propagator
from ..engine.settings import EngineSettings
from ..io.frames import open_frames
from ..io.masks import read_mask
from ..metrics import ObjectScore, f_boundary, jaccard
from ..model.stm import STM
from ..session import AnnotationSession
from .real_clips import VALIDATION_SEQUENCES


def score_frames(gt: list[np.ndarray], pred: list[np.ndarray]) -> tuple[float, float]:
    """DAVIS-2016 J and F means over frames 1..N-2 (binary: any object vs background)."""
    js, fs = [], []
    for g, p in zip(gt[1:-1], pred[1:-1]):
        js.append(jaccard(g > 0, p > 0))
        fs.append(f_boundary(g > 0, p > 0))
    return float(np.mean(js)), float(np.mean(fs))


def run_sequence(session: AnnotationSession, gt: list[np.ndarray], corrections: int = 0) -> list[np.ndarray]:
    """Propagate from frame 0; then `corrections` times annotate the worst frame with its ground truth and
    re-propagate both ways from it (the annotator's correction loop, simulated)."""
    session.set_annotation(0, gt[0])
    session.propagate(0, "forward")
    for _ in range(corrections):
        preds = [session.labels(i) for i in range(session.num_frames)]
        ious = [jaccard(g > 0, p > 0) if not session.is_annotated(i) else 2.0
                for i, (g, p) in enumerate(zip(gt, preds))]
        worst = int(np.argmin(ious))
        session.set_annotation(worst, gt[worst])
        session.propagate(worst, "both")
    return [session.labels(i) for i in range(session.num_frames)]  # type: ignore[misc]


def evaluate(model: STM | None, davis_root: str | Path, sequences: tuple[str, ...] = VALIDATION_SEQUENCES,
             settings: EngineSettings | None = None, corrections: int = 0) -> list[ObjectScore]:
    """J&F of `model` (None: load per `settings`) on DAVIS-2016-layout sequences under `davis_root`."""
    settings = settings or EngineSettings()
    root = Path(davis_root)
    was_training = model is not None and model.training
    propagator = Propagator(settings, model=model)
    scores = []
    for name in sequences:
        frames = open_frames(root / "JPEGImages" / "480p" / name)
        gt = [read_mask(root / "Annotations" / "480p" / name / f"{n}.png", frames.size) for n in frames.names]
        session = AnnotationSession(frames, settings, propagator)
        pred = run_sequence(session, gt, corrections)
        propagator.forget_all()
        scores.append(ObjectScore(name, 1, *score_frames(gt, pred), len(gt) - 2))
    if was_training:
        model.train()  # type: ignore[union-attr]
    return scores


def mean_jf(scores: list[ObjectScore]) -> float:
    return float(np.mean([s.jf_mean for s in scores])) if scores else float("nan")
