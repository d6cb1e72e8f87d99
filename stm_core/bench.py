"""`python -m stm_core bench`: propagation speed and memory, optimised engine vs a naive reference port.

The reference path is what a literal port of the paper's inference loop does: fp32, NCHW, objects one by
one, every memory frame re-encoded at every step, no caches. Both run in the same process on the same
generated 854x480 video, so every figure is also a ratio measured on the same machine at the same time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date

import numpy as np
import psutil
import torch

from .engine.hardware import autocast, describe_precision, resolve_device
from .engine.settings import INTERACTIVE_PREVIEW_FRAMES, RECOMMENDED_ADAPT_STEPS, EngineSettings
from .io.atomic import atomic_write_bytes
from .io.generated import GeneratedVideo
from .model.aggregation import aggregate
from .model.checkpoint import DEFAULT_WEIGHTS, load_model
from .model.padding import pad, pad_amounts, unpad, zero_border
from .model.stm import STM
from .session import AnnotationSession

SIZE = (480, 854)


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def annotated_session(video: GeneratedVideo, settings: EngineSettings) -> AnnotationSession:
    """A session on a generated video with frame 0 annotated from its exact masks and the network loaded, so
    that a timed propagation measures propagating only."""
    session = AnnotationSession(video, settings)
    session.prepare()
    session.set_annotation(0, video.labels(0))
    return session


def run_engine(settings: EngineSettings, objects: int, frames: int) -> dict:
    """Propagate a generated video with the product engine; mean seconds per frame after the first frame (the
    network runs ahead of the stored results, so single intervals come in bursts and their median flatters)."""
    session = annotated_session(GeneratedVideo(frames, SIZE, objects), settings)
    stamps: list[float] = []
    peak = [_rss_mb()]

    def progress(i: int, done: int, total: int) -> None:
        stamps.append(time.perf_counter())
        peak.append(_rss_mb())
    report = session.propagate(0, "forward", progress=progress)
    spf = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else report.seconds
    path = "engine" + (f"+adapt{settings.adapt_steps}" if settings.adapt_steps else "") \
        + ("+preview" if settings.preview_frames else "") \
        + ("+eager" if settings.device.startswith("cuda") and not settings.cuda_graphs else "")
    return {"path": path,
            "model": settings.model, "objects": objects,
            "height": int(session.memory_status()["process_height"]) or SIZE[0], "s_per_frame": spf, "fps": 1 / spf,
            "first_frame_s": report.first_frame_seconds, "peak_rss_mb": max(peak), "frames": frames}


@torch.inference_mode()
def reference_propagate(model: STM, frames: Sequence[np.ndarray], labels0: np.ndarray, objects: int,
                        mem_every: int = 5, device: torch.device | None = None
                        ) -> Iterator[tuple[int, np.ndarray, float]]:
    """The naive port of the paper's loop: fp32, NCHW, objects one by one, every memory frame re-encoded at
    every step. Yields (frame index, labels HxW, seconds) for frames 1.. of `frames` (RGB uint8, any size
    the network accepts after padding to /16); labels0 holds objects 1..`objects`."""
    device = device or torch.device("cpu")
    model = model.float().eval().to(device, memory_format=torch.contiguous_format)
    pads = pad_amounts(*labels0.shape)

    def tensor(i: int) -> torch.Tensor:
        return pad(torch.from_numpy(np.array(frames[i])).to(device).permute(2, 0, 1)[None].float() / 255, pads)
    first = torch.from_numpy(labels0).to(device).long()
    probs = {0: pad(torch.stack([(first == o + 1).float() for o in range(objects)]), pads)}
    for t in range(1, len(frames)):
        t0 = time.perf_counter()
        mem = sorted({m for m in range(0, t - 1) if m % mem_every == 0} | {t - 1})
        seg = []
        q = model.encode_query(tensor(t))
        for o in range(objects):
            keys, values = [], []
            for m in mem:
                p = probs[m]
                other = (p.sum(0) - p[o]).clamp(0, 1)
                k, v = model.KV_M_r4(model.Encoder_M(tensor(m), p[o][None, None], other[None, None]))
                keys.append(k)
                values.append(v)
            seg.append(model.segment(q, torch.stack(keys, 2), torch.stack(values, 2))[0])
        agg = aggregate(torch.stack(seg), dim=0)
        probs[t] = zero_border(agg[1:], pads)  # the official code memorises it cut to the frame, padded with zeros
        labels = unpad(agg, pads).max(0).indices.cpu().numpy().astype(np.uint8)  # .cpu() waits for the GPU
        yield t, labels, time.perf_counter() - t0


def run_reference(model: STM, objects: int, frames: int, device: torch.device, mem_every: int = 5) -> dict:
    """Seconds per frame of the naive port on the generated video."""
    video = GeneratedVideo(frames, SIZE, objects)
    times = [s for _, _, s in reference_propagate(model, video, video.labels(0), objects, mem_every, device)]
    spf = statistics.mean(times[1:]) if len(times) > 1 else times[0]
    return {"path": "reference", "model": model.cfg.name, "objects": objects, "height": SIZE[0],
            "s_per_frame": spf, "fps": 1 / spf, "first_frame_s": times[0], "peak_rss_mb": _rss_mb(),
            "frames": frames}


def run_whole_clip(settings: EngineSettings, model: STM, frames: int, device: torch.device) -> list[dict]:
    """Mean seconds per frame over a whole clip (first frame and setup included), engine and reference. The
    reference re-encodes every memory frame at every step, so its cost grows along the clip while the engine's
    stays flat: the 12-frame means of the main table understate the gap on real videos (DAVIS clips have
    50-100 frames)."""
    video = GeneratedVideo(frames, SIZE, 1)
    report = annotated_session(video, settings).propagate(0, "forward")
    engine = report.seconds / len(report.frames)
    reference = statistics.mean(s for _, _, s in reference_propagate(model, video, video.labels(0), 1, device=device))
    return [{"path": path, "model": model.cfg.name, "frames": frames, "height": SIZE[0], "mean_s_per_frame": spf,
             "speedup": reference / spf} for path, spf in (("engine", engine), ("reference", reference))]


@torch.inference_mode()
def run_memory_sizes(model: STM, sizes: tuple[int, ...], use_sdpa: bool, device: torch.device,
                     repeats: int = 3) -> list[dict]:
    """Per-frame cost (query encoding + memory read + decoder) against the number of memory frames."""
    layout = torch.channels_last  # as the engine runs (faster on the CPU and on an H100)
    model = model.eval().to(device, memory_format=layout)
    model.use_sdpa = use_sdpa
    hp, wp = SIZE[0] + sum(pad_amounts(*SIZE)[2:]), SIZE[1] + sum(pad_amounts(*SIZE)[:2])
    frame = torch.rand(1, 3, hp, wp, device=device).contiguous(memory_format=layout)
    rows = []
    with autocast(device):
        k, v = model.memorize(frame, torch.rand(1, 1, hp, wp, device=device))
        for t in sizes:
            mk, mv = k.unsqueeze(2).expand(-1, -1, t, -1, -1), v.unsqueeze(2).expand(-1, -1, t, -1, -1)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                model.segment(model.encode_query(frame), mk, mv)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                best = min(best, time.perf_counter() - t0)
            rows.append({"memory_frames": t, "read": "sdpa" if use_sdpa else "matmul", "s_per_frame": best})
    model.use_sdpa = False
    return rows


RSS_NOTE = ("peak_rss_mb: the process's resident memory at the row's end (reference rows) or its peak during the "
            "row (engine rows), with earlier rows' allocations still counted: rows run in the order listed")


def _cpu_name() -> str:
    """The processor's model name (Linux), else what `platform` knows."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SPEEDUP_NOTE = ("speedup: against the reference port at the source height (480 px) with the same model and "
                "object count; at a lower working height it includes what the smaller frames save")


def _table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v: object) -> str:  # None: not measured for this row (e.g. no reference run to compare with)
        return f"{v:.3f}" if isinstance(v, float) else "" if v is None else str(v)
    widths = [max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(fmt(r.get(c, "")).rjust(w) for c, w in zip(cols, widths)) for r in rows]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    torch.set_grad_enabled(False)
    device = resolve_device(args.device)
    # a GPU frame takes milliseconds: more frames keep the mean off the first frames' kernel selection
    frames = (6 if args.quick else 12) * (4 if device.type == "cuda" else 1)
    base = EngineSettings(device=str(device), process_height=0, random_init=not DEFAULT_WEIGHTS.exists())
    r50 = replace(base, model="stm-r50", random_init=True)
    default = replace(base, process_height=None)  # the height the shipped weights recommend
    rows = []
    counts = (1, 3) if args.quick else (1, 3, 5)
    for objects in counts:
        rows.append(run_engine(base, objects, frames))
    if device.type == "cuda":  # the same run without CUDA graphs: what replaying them gains
        rows += [run_engine(replace(base, cuda_graphs=False), objects, frames) for objects in (1, counts[-1])]
    for height in (360, 240):
        rows.append(run_engine(replace(base, process_height=height), 1, frames))
    for objects in counts:
        rows.append(run_engine(default, objects, frames))
    if not args.quick:  # adapting takes a minute of a 2-core CPU
        adapted = replace(default, adapt_steps=RECOMMENDED_ADAPT_STEPS)
        rows.append(run_engine(adapted, 1, frames))
        rows.append(run_engine(replace(adapted, preview_frames=INTERACTIVE_PREVIEW_FRAMES), 1, frames))
    rows.append(run_engine(r50, 1, frames if args.quick or device.type == "cuda" else 8))
    small = load_model(base.model, base.weights, base.random_init)
    for objects in ((1,) if args.quick else (1, 3)):
        rows.append(run_reference(small, objects, frames, device))
    rows.append(run_reference(load_model("stm-r50", random_init=True), 1, 4 if args.quick else 6, device))
    ref = {(r["model"], r["objects"]): r["s_per_frame"] for r in rows if r["path"] == "reference"}
    for r in rows:
        base_spf = ref.get((r["model"], r["objects"]))
        r["speedup"] = base_spf / r["s_per_frame"] if base_spf and r["path"] != "reference" else None
    clip = run_whole_clip(base, small, 20 if args.quick else 50, device)
    sizes = (1, 5) if args.quick else (1, 5, 10, 20)
    mem_rows = run_memory_sizes(small, sizes, False, device) + run_memory_sizes(small, sizes, True, device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{_cpu_name()}  {psutil.cpu_count()} cores  threads {torch.get_num_threads()}"
    where += f"  engine precision {describe_precision(device)}"
    load = f"  load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""  # a busy machine is slow
    print(f"# {date.today()}  {where}  torch {torch.__version__}{load}")
    print(_table(rows, ["path", "model", "objects", "height", "s_per_frame", "fps", "first_frame_s",
                        "speedup", "peak_rss_mb"]))
    print(SPEEDUP_NOTE)
    print()
    print(_table(clip, ["path", "model", "frames", "height", "mean_s_per_frame", "speedup"]))
    print()
    print(_table(mem_rows, ["memory_frames", "read", "s_per_frame"]))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak process memory (ru_maxrss): {peak:.0f} MB")
    if args.json:
        payload = {"date": str(date.today()), "device": where, "torch": torch.__version__, "quick": args.quick,
                   "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,  # a busy machine
                   "rows": rows, "speedup": SPEEDUP_NOTE, "rss": RSS_NOTE, "clip": clip, "memory": mem_rows,
                   "peak_rss_mb": round(peak)}
        atomic_write_bytes(args.json, json.dumps(payload, indent=2).encode("utf-8"))
    return 0
