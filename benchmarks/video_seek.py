"""Reading a long-GOP video the way the application does: a far jump in the window, a backward run, and a run
reading on while the annotator jumps about. Prints one row per variant and can write JSON:

    QT_QPA_PLATFORM=offscreen python benchmarks/video_seek.py [--video FILE] [--old DIR] [--json FILE]

Without `--video`, a 300-frame 1920x1080 H.264 clip with x264's default 250-frame GOP is generated from a moving
pattern (phones and cameras write 30-250 frame GOPs). `--old DIR` measures another checkout's root as well; every
variant runs in a fresh process, one after the other. Columns:
- `jump_blocked_s`: how long the window's event loop is held by `Document.seek` to frame 249 (the canvas shows it);
  `jump_shown_s`: until the picture of frame 249 is on the canvas.
- `backward_s_per_frame`: reading frames 248 down to 189, as a backward run does.
- `run_s_per_frame`: reading frames 0..119 in order (their reads timed) while, every 10th frame, another reader
  asks for frame 240.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _make_video(path: Path, frames: int = 300, size: tuple[int, int] = (1080, 1920)) -> None:
    import av

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(frames):
            rgb = np.stack([(xx + 4 * i) % 256, (yy + 2 * i) % 256, (xx // 8 + yy // 8 + i) % 256], -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _measure(video: Path) -> dict:
    import threading

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.controller import AppController
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from stm_core.io.frames import open_frames

    row: dict = {}
    frames = open_frames(video)
    row["frames"], row["keyframes"] = len(frames), len(getattr(frames, "_keys", []))
    frames[len(frames) - 52]
    t0 = time.perf_counter()
    for i in range(len(frames) - 52, len(frames) - 112, -1):
        frames[i]
    row["backward_s_per_frame"] = round((time.perf_counter() - t0) / 60, 4)

    frames = open_frames(video)
    run = 0.0
    for i in range(120):
        t0 = time.perf_counter()
        frames[i]
        run += time.perf_counter() - t0
        if i % 10 == 5:
            jumper = threading.Thread(target=frames.__getitem__, args=(len(frames) - 60,))
            jumper.start()
            jumper.join()
            frames._cache.pop(len(frames) - 60, None)  # each jump decodes again, as to another far frame
    row["run_s_per_frame"] = round(run / 120, 4)

    home = Path(tempfile.mkdtemp(prefix="video-seek-"))
    app = QApplication.instance() or QApplication([])
    controller = AppController(AppSettings(QSettings(str(home / "s.ini"), QSettings.Format.IniFormat)), home)
    window = MainWindow(controller)
    window.show()
    assert controller.open(video), "the video did not open"
    controller.wait_for_warm_up()  # the network's first run on opening, not measured here
    doc = window.document
    target = len(frames) - 51
    t0 = time.perf_counter()
    doc.seek(target)
    row["jump_blocked_s"] = round(time.perf_counter() - t0, 3)
    while getattr(doc, "picture_pending", False):
        app.processEvents()
        time.sleep(0.002)
    row["jump_shown_s"] = round(time.perf_counter() - t0, 3)
    window.close()
    controller.shutdown()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="", help="a video file (default: a generated 1080p long-GOP clip)")
    parser.add_argument("--old", default="", help="another checkout's root, measured as well")
    parser.add_argument("--json", default="")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one variant, in-process
    a = parser.parse_args()
    if a.measure:
        print(json.dumps(_measure(Path(a.measure))))
        return
    video = Path(a.video) if a.video else Path(tempfile.mkdtemp(prefix="video-seek-")) / "gop250_1080p.mp4"
    if not a.video:
        t0 = time.perf_counter()
        _make_video(video)
        print(f"{video} written in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = {}
    for name, root in {"this tree": ROOT, **({"old": Path(a.old).resolve()} if a.old else {})}.items():
        env = {**os.environ, "PYTHONPATH": str(root), "QT_QPA_PLATFORM": "offscreen"}
        out = subprocess.run([sys.executable, __file__, "--measure", str(video)], env=env, cwd=root,
                             capture_output=True, text=True)
        rows[name] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else \
            {"error": (out.stderr.strip().splitlines() or [str(out.returncode)])[-1]}
        print(f"{name:>10}: {rows[name]}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"video": str(video), "variants": rows}, indent=1))


if __name__ == "__main__":
    main()
