"""Small synthetic videos and sessions for engine tests (random-init network, tiny frames, CPU)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch
from PIL import Image

from stm_core.engine.settings import EngineSettings
from stm_core.session import AnnotationSession

T = TypeVar("T")


def write_clip(folder: Path, frames: int = 6, size: tuple[int, int] = (48, 80)) -> Path:
    """A square moving right over a gradient: frames 00000.jpg.. in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    for t in range(frames):
        img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], -1).astype(np.uint8)
        img[10:26, 8 + 4 * t:24 + 4 * t] = (250, 40, 40)
        Image.fromarray(img).save(folder / f"{t:05d}.png")
    return folder


def square_mask(size: tuple[int, int] = (48, 80), t: int = 0, label: int = 1) -> np.ndarray:
    m = np.zeros(size, np.uint8)
    m[10:26, 8 + 4 * t:24 + 4 * t] = label
    return m


def tiny_session(folder: Path, **kw) -> AnnotationSession:
    settings = EngineSettings(random_init=True, device="cpu", **kw)
    return AnnotationSession.open(folder, settings)


def soft_discs(height: int, width: int, count: int) -> torch.Tensor:
    """Foreground probabilities [count,H,W] of blurred discs, so boundaries are uncertain and the rest is not."""
    maps = []
    for k in range(count):
        disc = np.zeros((height, width), np.float32)
        cv2.circle(disc, (width // 4 + k * width // 4, height // 2), height // 5 + 4 * k, 1.0, -1)
        maps.append(cv2.GaussianBlur(disc, (15, 15), 4) * 0.98 + 0.01)
    return torch.from_numpy(np.stack(maps))


def write_cut_video(path: Path, frames: int = 30, kept: float = 0.6, audio_seconds: float = 0.0,
                    vfr: bool = False, start_seconds: float = 0.0) -> Path:
    """A noise video in Matroska (10 fps; with `vfr`, frames 0.04 or 0.2 s apart), with a silent audio track of
    `audio_seconds` if asked, timestamps from `start_seconds`, whose file is then cut to its first `kept` share
    of bytes, as an interrupted download leaves it (the header still gives the whole length)."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        if vfr or start_seconds:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        audio = out.add_stream("aac", rate=48000) if audio_seconds else None  # every stream before muxing
        for t, img in enumerate(np.random.default_rng(0).integers(0, 255, (frames, 48, 64, 3), dtype=np.uint8)):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if vfr or start_seconds:  # vfr: two steps of 40 ms, then one of 200, far from any guessed rate
                step = 280 * (t // 3) + 40 * (t % 3) if vfr else 100 * t
                frame.pts, frame.time_base = round(1000 * start_seconds) + step, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if audio is not None:
            for start in range(0, int(audio_seconds * 48000), 1024):
                chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(audio.encode(chunk))
            out.mux(audio.encode())
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * kept)])
    return path


def surviving_denormals() -> int:
    """How many of 4M products of a denormal float stay nonzero: none where every OpenMP worker of the calling
    thread flushes denormals (the product is large enough to run in parallel)."""
    return int((torch.full((1 << 22,), 1e-39) * 1.0).count_nonzero())


def on_new_thread(work: Callable[[], T]) -> T:
    """`work()` on a thread Python starts afresh (no denormal flushing inherited from a set-up thread)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(work()))
    thread.start()
    thread.join()
    return result[0]
