"""Seconds per propagated frame of the checkout on PYTHONPATH: the one measurement `scripts/ab_speed.py` runs in
each tree, and what a sampling profiler (py-spy) watches on a lent GPU. Only the session API every tree since
the run-ahead engine shares is used.

    python scripts/time_propagation.py DEVICE FRAMES OBJECTS HEIGHT [decoded]

HEIGHT 0 is the source's 480 px. `decoded`: every frame is decoded (rendered) before the run, so the figure
leaves out the frame source's own cost. Prints one JSON line.
"""

import json
import sys
import time

from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.session import AnnotationSession

device, frames, objects, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
decoded = sys.argv[5:] == ["decoded"]
video = GeneratedVideo(frames, (480, 854), objects, cache_size=frames if decoded else 8)
if decoded:
    for i in range(frames):
        video[i]
session = AnnotationSession(video, EngineSettings(device=device, process_height=height or 0, adapt_steps=0))
session.prepare()
session.set_annotation(0, video.labels(0))
stamps = []
session.propagate(0, "forward", progress=lambda *_: stamps.append(time.perf_counter()))
print(json.dumps({"s_per_frame": (stamps[-1] - stamps[0]) / (len(stamps) - 1), "decoded": decoded}))
