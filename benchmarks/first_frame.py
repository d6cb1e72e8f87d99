"""Seconds from pressing propagate to the first new frame in a fresh process, with and without the warm-up the
application runs when a video opens (`AnnotationSession.warm_up`), alternated in fresh processes.

    python benchmarks/first_frame.py [--rounds 3]

Cases: the application's default (shipped weights, adaptation with a 25-frame preview: the first frame is the
preview's), no adaptation at the plain working height, no adaptation at the source's 480 px. Each process
opens a generated 854x480 clip with frame 0 annotated and times one propagation; with adaptation it is
cancelled once adaptation starts, after the preview.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

_ONE_RUN = """
import sys, threading, time
from stm_core.engine.settings import EngineSettings, INTERACTIVE_PREVIEW_FRAMES, RECOMMENDED_ADAPT_STEPS
from stm_core.io.generated import GeneratedVideo
from stm_core.session import AnnotationSession
case, warm = sys.argv[1], sys.argv[2] == "warm"
settings = {"app default": EngineSettings(device="cpu", adapt_steps=RECOMMENDED_ADAPT_STEPS,
                                          preview_frames=INTERACTIVE_PREVIEW_FRAMES),
            "plain height": EngineSettings(device="cpu", adapt_steps=0),
            "480 px": EngineSettings(device="cpu", adapt_steps=0, process_height=0)}[case]
video = GeneratedVideo(30, (480, 854), 1)
session = AnnotationSession(video, settings)
session.set_annotation(0, video.labels(0))
if warm:
    session.warm_up()
stamps, cancel = [], threading.Event()
t0 = time.perf_counter()
session.propagate(0, "forward", progress=lambda *_: stamps.append(time.perf_counter()),
                  previewed=lambda *_: stamps.append(time.perf_counter()), adapting=lambda *_: cancel.set(),
                  cancel=cancel)
print(stamps[0] - t0)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for case in ("app default", "plain height", "480 px"):
        for r in range(1, args.rounds + 1):
            for mode in ("cold", "warm"):
                out = subprocess.run([sys.executable, "-c", _ONE_RUN, case, mode], capture_output=True, text=True,
                                     check=True)
                print(f"{case:<13} round {r}  {mode}  first frame {float(out.stdout):.3f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
