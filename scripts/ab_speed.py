"""Propagation speed of this checkout against another one (e.g. `git worktree add /tmp/old HEAD~1`), run
alternately in fresh processes on the same machine, so a change is judged against noise measured beside it.

    python scripts/ab_speed.py /tmp/old [--device cuda] [--rounds 3] [--frames 48] [--objects 1] [--height 0]

Only the session API both trees share is used. Each line: tree, round, mean seconds per frame after the first
(and frames per second), for the shipped weights at the given working height (0: the source's 480 px).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_TIMING = """
import json, sys, time
from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.session import AnnotationSession
device, frames, objects, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
video = GeneratedVideo(frames, (480, 854), objects)
session = AnnotationSession(video, EngineSettings(device=device, process_height=height or 0, adapt_steps=0))
session.prepare()
session.set_annotation(0, video.labels(0))
stamps = []
session.propagate(0, "forward", progress=lambda *_: stamps.append(time.perf_counter()))
print(json.dumps({"s_per_frame": (stamps[-1] - stamps[0]) / (len(stamps) - 1)}))
"""


def time_tree(tree: Path, args: argparse.Namespace) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", _TIMING, args.device, str(args.frames), str(args.objects),
                          str(args.height)], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["s_per_frame"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=Path, help="the other checkout's root")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--objects", type=int, default=1)
    parser.add_argument("--height", type=int, default=0)
    args = parser.parse_args()
    trees = {"this": REPO, "other": args.other.resolve()}
    for r in range(1, args.rounds + 1):
        for name, tree in trees.items():
            spf = time_tree(tree, args)
            print(f"{name:<6} round {r}  {spf:.4f} s/frame  {1 / spf:7.1f} fps  ({tree})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
