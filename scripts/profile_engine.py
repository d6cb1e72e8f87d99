"""Where a propagated frame's time goes, on this machine's CPU or a lent GPU: the network's parts timed alone in
both memory layouts, then the engine's own loop under torch.profiler (operators by host and device time).

    python scripts/profile_engine.py --device cuda --height 480 --frames 40 > profile.txt

The layout table decides `Propagator._channels_last` per device; the operator tables show whether a frame is
bound by the network's kernels or by the host work around them (launches, copies, NumPy).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from stm_core.bench import annotated_session
from stm_core.engine.hardware import (autocast_dtype, autocast_to, describe_precision, precision_name,
                                      prepare_compute_thread, resolve_device)
from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.model.checkpoint import DEFAULT_WEIGHTS, load_model
from stm_core.model.fusion import fold_batchnorm
from stm_core.model.padding import pad_amounts
from stm_core.session import AnnotationSession


def _median_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    times = []
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 3:  # the first calls pick kernels (cudnn.benchmark) and allocate
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.inference_mode()
def time_parts(model_name: str, height: int, device: torch.device, repeats: int,
               dtype: torch.dtype | None) -> list[str]:
    """Milliseconds of query encoding, memorising one object and reading 1 or 10 memory frames, per layout,
    with autocast to `dtype` (None: fp32)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    random_init = model_name != "stm-small" or not DEFAULT_WEIGHTS.exists()  # only stm-small ships weights
    base = fold_batchnorm(load_model(model_name, random_init=random_init).eval()).to(device)
    width = round(854 * height / 480)
    pads = pad_amounts(height, width)
    hp, wp = height + pads[2] + pads[3], width + pads[0] + pads[1]
    lines = [f"{model_name} at {height}x{width} (padded {hp}x{wp}), {precision_name(dtype)}, "
             f"ms (median of {repeats})",
             "layout          query  memorize  read+decode(1)  read+decode(10)"]
    for layout in (torch.contiguous_format, torch.channels_last):
        model = copy.deepcopy(base).to(memory_format=layout)
        model.use_sdpa = device.type == "cuda"
        frame = torch.rand(1, 3, hp, wp, device=device).contiguous(memory_format=layout)
        mask = torch.rand(1, 1, hp, wp, device=device)
        with autocast_to(device, dtype):
            q = model.encode_query(frame)
            k, v = model.memorize(frame, mask)
            k10, v10 = (x.unsqueeze(2).expand(-1, -1, 10, -1, -1) for x in (k, v))
            row = [_median_seconds(lambda: model.encode_query(frame), device, repeats),
                   _median_seconds(lambda: model.memorize(frame, mask), device, repeats),
                   _median_seconds(lambda: model.segment(q, k.unsqueeze(2), v.unsqueeze(2)), device, repeats),
                   _median_seconds(lambda: model.segment(q, k10, v10), device, repeats)]
        name = "channels_last" if layout is torch.channels_last else "contiguous"
        lines.append(f"{name:<14}" + "".join(f"{1000 * s:>{w}.2f}" for s, w in zip(row, (7, 10, 16, 17))))
    return lines


def _all_threads() -> tuple[dict, str]:
    """Profiler arguments that follow every thread, and which threads the tables cover. The engine's network
    loop runs on a long-lived thread of its own; without `profile_all_threads` (newer PyTorch) the profiler
    records operators of the calling thread only (CUDA runtime calls and kernels still of all threads)."""
    try:
        return {"experimental_config": torch._C._profiler._ExperimentalConfig(profile_all_threads=True)}, \
            "all threads"
    except TypeError:
        return {}, "the calling thread only (no profile_all_threads in this PyTorch)"


def profile_engine(height: int, objects: int, frames: int, device: torch.device) -> list[str]:
    """The engine's forward pass over a generated video under torch.profiler: top operators by self time."""
    from torch.profiler import ProfilerActivity, profile

    settings = EngineSettings(device=str(device), process_height=height, adapt_steps=0,
                              random_init=not DEFAULT_WEIGHTS.exists())

    def session(length: int) -> AnnotationSession:
        return annotated_session(GeneratedVideo(length, (480, 854), objects), settings)
    session(4).propagate(0, "forward")  # kernels chosen and memory allocated outside the profiled run
    profiled = session(frames)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    t0 = time.perf_counter()
    config, threads = _all_threads()
    with profile(activities=activities, **config) as prof:
        report = profiled.propagate(0, "forward")
    wall = time.perf_counter() - t0
    done = len(report.frames)
    lines = [f"engine, {objects} object(s), working height {height}, {done} frames: "
             f"{wall / max(1, done) * 1000:.2f} ms/frame under the profiler ({1000 / report.fps:.2f} without); "
             f"operators of {threads}"]
    sort_keys = ["self_cpu_time_total"] + (["self_device_time_total"] if device.type == "cuda" else [])
    for key in sort_keys:
        lines += [f"-- top operators by {key}", prof.key_averages().table(sort_by=key, row_limit=18)]
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--objects", type=int, default=1)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--precision", choices=("engine", "fp32", "bf16"), default="engine",
                   help="for the parts table: what the engine uses on this hardware (default), or forced")
    p.add_argument("--models", nargs="+", default=["stm-small", "stm-r50"])
    p.add_argument("--parts-only", action="store_true", help="skip the profiled engine run")
    a = p.parse_args()
    prepare_compute_thread()  # the parts are timed on this thread, set up as the engine's network thread is
    device = resolve_device(a.device)
    torch.set_grad_enabled(False)
    dtype = {"engine": autocast_dtype(device), "fp32": None, "bf16": torch.bfloat16}[a.precision]
    for model_name in a.models:
        print("\n".join(time_parts(model_name, a.height, device, a.repeats, dtype)), flush=True)
    if not a.parts_only:
        print(f"engine precision: {describe_precision(device)}")
        print("\n".join(profile_engine(a.height, a.objects, a.frames, device)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
