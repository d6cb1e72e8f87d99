"""Peak process memory of one segmentation step at a large working size, with the memory read in blocks of
queries (the engine's) or in one block (as the paper's code does). Each variant runs in a process of its own,
so its peak RSS is its own.

    python benchmarks/memory_read_blocks.py --height 1080 --width 1920 --memory 3
    python benchmarks/memory_read_blocks.py --height 2160 --width 3840 --memory 3 --only blocks

One block at 3840x2160 with 3 memory frames needs ~21 GB (the kernel killed it on a 24 GB machine)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def _measure(variant: str, height: int, width: int, memory: int) -> dict:
    import functools
    import resource
    import time

    import torch

    import stm_core.model.stm as stm_module
    from stm_core.model import memory_read as read_module
    from stm_core.model.config import STM_SMALL
    from stm_core.model.stm import STM

    if variant == "whole":
        stm_module.memory_read = functools.partial(read_module.memory_read, max_affinity_bytes=1 << 62)
    torch.set_grad_enabled(False)
    model = STM(STM_SMALL).eval()
    frame = torch.rand(1, 3, height, width)
    key, value = model.memorize(frame, torch.rand(1, 1, height, width))
    keys, values = torch.stack([key] * memory, 2), torch.stack([value] * memory, 2)
    query = model.encode_query(frame)
    start = time.perf_counter()
    model.segment(query, keys, values)
    return {"variant": variant, "size": f"{width}x{height}", "memory_frames": memory,
            "segment_s": round(time.perf_counter() - start, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--memory", type=int, default=3, help="memory frames")
    parser.add_argument("--only", choices=("blocks", "whole"))
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # the child process's
    a = parser.parse_args()
    if a.variant:
        print(json.dumps(_measure(a.variant, a.height, a.width, a.memory)))
        return
    for variant in [a.only] if a.only else ["blocks", "whole"]:
        done = subprocess.run([sys.executable, __file__, "--variant", variant, "--height", str(a.height),
                               "--width", str(a.width), "--memory", str(a.memory)], capture_output=True, text=True)
        print(done.stdout.strip() or f'{{"variant": "{variant}", "failed": {done.returncode}}}')


if __name__ == "__main__":
    main()
