"""Where each thread of a propagation spent its time, from py-spy's raw output (`gpu_session.sh` with SPY=1).

    python scripts/spy_summary.py pyspy_480_source.txt [--rate 250]

Samples of the main thread outside `propagate` (imports, loading) are left out. Per thread: seconds sampled,
the functions samples ended in (waits included: `Condition.wait` is a thread with nothing to do) and the
project's functions by inclusive time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

LINE = re.compile(r":\d+\)")


def summarise(path: str, rate: float, top: int = 12) -> list[str]:
    threads: Counter[str] = Counter()
    leaves: defaultdict[str, Counter[str]] = defaultdict(Counter)
    inclusive: defaultdict[str, Counter[str]] = defaultdict(Counter)
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            thread, *frames = stack.split(";")
            if "MainThread" in thread and not any("propagate" in frame for frame in frames):
                continue
            n = int(count)
            threads[thread] += n
            names = [LINE.sub(")", frame) for frame in frames]
            if names:
                leaves[thread][names[-1]] += n
            for name in set(names):
                inclusive[thread][name] += n
    lines = []
    for thread, n in threads.most_common(6):
        lines.append(f"== {thread}: {n} samples ({n / rate:.2f} s)")
        lines += [f"   leaf {c:6d} {100 * c / n:5.1f}%  {name[:110]}" for name, c in leaves[thread].most_common(top)]
        ours = [(name, c) for name, c in inclusive[thread].most_common() if "stm_core/" in name][:top]
        lines += [f"   incl {c:6d} {100 * c / n:5.1f}%  {name[:110]}" for name, c in ours]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path")
    p.add_argument("--rate", type=float, default=250.0, help="py-spy's samples per second (--rate)")
    a = p.parse_args()
    print("\n".join(summarise(a.path, a.rate)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
