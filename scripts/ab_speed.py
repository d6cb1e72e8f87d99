"""Propagation speed of this checkout against another one (e.g. `git worktree add /tmp/old HEAD~1`), run
alternately in fresh processes on the same machine, so a change is judged against noise measured beside it.

    python scripts/ab_speed.py /tmp/old [--device cuda] [--rounds 3] [--frames 48] [--objects 1] [--height 0]
        [--decoded]

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

TIMING = Path(__file__).with_name("time_propagation.py").read_text()


def time_tree(tree: Path, args: argparse.Namespace) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    argv = [sys.executable, "-c", TIMING, args.device, str(args.frames), str(args.objects), str(args.height)]
    out = subprocess.run(argv + (["decoded"] if args.decoded else []), env=env, cwd=tree, capture_output=True,
                         text=True)
    if out.returncode:
        raise SystemExit(f"timing failed in {tree}:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["s_per_frame"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=Path, help="the other checkout's root")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--objects", type=int, default=1)
    parser.add_argument("--height", type=int, default=0)
    parser.add_argument("--decoded", action="store_true", help="frames rendered before each run (no source cost)")
    args = parser.parse_args()
    trees = {"this": REPO, "other": args.other.resolve()}
    for r in range(1, args.rounds + 1):
        for name, tree in trees.items():
            spf = time_tree(tree, args)
            print(f"{name:<6} round {r}  {spf:.4f} s/frame  {1 / spf:7.1f} fps  ({tree})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
