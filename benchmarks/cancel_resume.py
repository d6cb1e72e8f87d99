"""Seconds until a run cancelled part-way and asked for again has covered the video, when it goes on from where
it stopped (the engine's checkpoints) and when it starts over (the checkpoint dropped first), and whether both
give the masks of one uninterrupted run.

    python benchmarks/cancel_resume.py [--frames 300] [--cancel-at 200] [--height 0]

A generated 854x480 clip with one object, annotated on frame 0, the shipped model without adaptation at its
plain working height (`--height` sets another; 0 = the source's 480 px). Both cases run in one process on
one session each, alternated with the reference run, so they share the machine's state.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.session import AnnotationSession


def _session(video: GeneratedVideo, height: int | None) -> AnnotationSession:
    session = AnnotationSession(video, EngineSettings(device="cpu", adapt_steps=0, process_height=height))
    session.prepare()
    session.set_annotation(0, video.labels(0))
    return session


def _masks(session: AnnotationSession) -> np.ndarray:
    return np.stack([session.labels(i) for i in range(1, session.num_frames)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--cancel-at", type=int, default=200, help="frames stored before the cancel")
    parser.add_argument("--height", type=int, default=None, help="working height (default: the model's)")
    args = parser.parse_args()
    video = GeneratedVideo(args.frames, (480, 854), 1)
    whole = _session(video, args.height)
    t0 = time.perf_counter()
    whole.propagate(0, "forward")
    print(f"uninterrupted run: {time.perf_counter() - t0:.1f} s for {args.frames - 1} frames")
    for resume in (True, False):
        session, cancel = _session(video, args.height), threading.Event()
        session.propagate(0, "forward", cancel=cancel,
                          progress=lambda i, done, total: cancel.set() if done == args.cancel_at else None)
        if not resume:  # as before checkpoints: the query features of the frames done stay cached
            session._propagator._checkpoints.clear()
        t0 = time.perf_counter()
        report = session.propagate(0, "forward")
        same = np.array_equal(_masks(session), _masks(whole))
        print(f"{'goes on' if resume else 'starts over'}: {time.perf_counter() - t0:.1f} s, "
              f"{len(report.frames)} frames computed, {len(report.reused)} kept; masks as uninterrupted: {same}")


if __name__ == "__main__":
    main()
