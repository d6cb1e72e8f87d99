"""Process memory while propagating a long generated video: it must stay flat (bounded memory bank,
bounded frame and feature caches, compressed results).

    python benchmarks/long_video.py --frames 10000 --height 240 --csv out.csv --plot out.png
"""

from __future__ import annotations

import argparse
import sys
import time

import psutil

from stm_core.bench import annotated_session
from stm_core.engine.settings import EngineSettings
from stm_core.io.generated import GeneratedVideo
from stm_core.model.checkpoint import DEFAULT_WEIGHTS


def plot_png(path: str, xs: list[int], ys: list[float], title: str, size: tuple[int, int] = (640, 300)) -> None:
    """A minimal line chart with Pillow (y axis from 0, so a flat line reads as flat)."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    left, bottom, top = 50, h - 30, 25
    ymax = max(ys) * 1.2
    pts = [(left + (w - left - 10) * x / max(xs), bottom - (bottom - top) * y / ymax) for x, y in zip(xs, ys)]
    d.line([(left, top), (left, bottom), (w - 10, bottom)], fill="black")
    d.line(pts, fill="blue", width=2)
    d.text((left, 5), title, fill="black")
    d.text((5, top), f"{ymax:.0f}", fill="black")
    d.text((5, bottom - 10), "0", fill="black")
    d.text((w - 80, bottom + 8), f"{max(xs)} frames", fill="black")
    img.save(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10000)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--every", type=int, default=250, help="sample memory every N frames")
    p.add_argument("--csv")
    p.add_argument("--plot")
    a = p.parse_args()
    width = round(a.height * 16 / 9)
    video = GeneratedVideo(a.frames, (a.height, width), objects=2)
    session = annotated_session(video, EngineSettings(device="cpu", random_init=not DEFAULT_WEIGHTS.exists()))
    proc = psutil.Process()
    samples: list[tuple[int, float, float, int]] = []
    t0 = time.perf_counter()

    def progress(i: int, done: int, total: int) -> None:
        if done % a.every == 0 or done == total:
            status = session.memory_status()
            samples.append((done, proc.memory_info().rss / 2**20, time.perf_counter() - t0,
                            int(status["memory_frames"])))
            print(f"{done:6d} frames  rss {samples[-1][1]:7.1f} MB  memory frames {samples[-1][3]:3d}  "
                  f"results {int(status['result_bytes']) / 2**20:6.1f} MB  {samples[-1][2]:7.1f} s", flush=True)
    session.propagate(0, "forward", progress=progress)
    rss = [s[1] for s in samples]
    later = rss[len(rss) // 4:]
    print(f"rss: first sample {rss[0]:.1f} MB, max {max(rss):.1f} MB, growth over the last 3/4 of the run "
          f"{later[-1] - later[0]:+.1f} MB")
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("frames,rss_mb,seconds,memory_frames\n")
            f.writelines(f"{d},{r:.1f},{s:.1f},{m}\n" for d, r, s, m in samples)
    if a.plot:
        plot_png(a.plot, [s[0] for s in samples], rss, f"process RSS (MB), {a.frames} frames at {width}x{a.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
