"""A 10,000-frame video through the real application: open, scrub end to end from the keyboard, annotate,
propagate, export; the process memory is sampled all along.

    QT_QPA_PLATFORM=offscreen python scripts/app_long_video.py [--frames 10000] [--json out.json]

The video is an H.264 file rendered from `GeneratedVideo` (a moving disc over a textured background, exact
masks known), so the run also reports the propagated masks' mean IoU. The engine runs the shipped model with
the application's default settings. Output: one line per phase and a memory curve in the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.controller import AppController  # noqa: E402
from app.export import MASKS_DIR, ExportOptions  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from stm_core.io.generated import GeneratedVideo  # noqa: E402
from stm_core.metrics import jaccard  # noqa: E402


def write_video(path: Path, source: GeneratedVideo) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.height, stream.width = source.size
        stream.pix_fmt = "yuv420p"
        for i in range(len(source)):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(source[i], format="rgb24")))
        out.mux(stream.encode())
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--height", type=int, default=144)
    p.add_argument("--json", default="")
    a = p.parse_args()
    app = QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="stm-long-video-"))
    process = psutil.Process()
    curve: list[dict] = []
    out: dict = {"frames": a.frames, "curve": curve}

    def sample(phase: str, frame: int) -> None:
        curve.append({"phase": phase, "frame": frame, "rss_mb": round(process.memory_info().rss / 2**20, 1),
                      "seconds": round(time.perf_counter() - t_start, 1)})

    def wait(condition, phase: str, frame_of) -> None:
        while condition():
            app.processEvents()
            time.sleep(0.05)
            if not curve or time.perf_counter() - t_start - curve[-1]["seconds"] > 10:
                sample(phase, frame_of())

    source = GeneratedVideo(a.frames, size=(a.height, round(a.height * 16 / 9) // 2 * 2), objects=1, seed=3)
    t0 = time.perf_counter()
    video = write_video(tmp / "long video.mp4", source)
    print(f"wrote {video} ({video.stat().st_size / 2**20:.1f} MB) in {time.perf_counter() - t0:.0f} s", flush=True)

    settings = AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    controller = AppController(settings, tmp / "data")
    win = MainWindow(controller)
    win.resize(1400, 900)
    win.show()
    win.activateWindow()  # the frame-stepping shortcuts belong to the active window
    while QApplication.activeWindow() is not win:
        app.processEvents()
    t_start = time.perf_counter()
    sample("start", 0)
    assert controller.open(video), "the video did not open"
    doc = controller.document
    out["open_s"] = round(time.perf_counter() - t_start, 2)
    sample("opened", 0)
    print(f"opened {doc.num_frames} frames in {out['open_s']} s", flush=True)

    t0 = time.perf_counter()
    for i in range(doc.num_frames - 1):
        QTest.keyClick(win.canvas, Qt.Key.Key_Right)
        if i % 1000 == 0:
            sample("scrub", doc.current_frame)
    assert doc.current_frame == doc.num_frames - 1, doc.current_frame
    out["scrub_ms_per_frame"] = round((time.perf_counter() - t0) / (doc.num_frames - 1) * 1000, 2)
    sample("scrubbed", doc.current_frame)
    print(f"scrubbed to the end: {out['scrub_ms_per_frame']} ms per frame", flush=True)

    QTest.keyClick(win.canvas, Qt.Key.Key_Home)
    doc.replace_labels(source.labels(0))  # as an imported mask: one undoable edit, annotated frame 0
    t0 = time.perf_counter()
    controller.propagation.start("forward", 0)
    wait(lambda: controller.propagation.running, "propagate",
         lambda: sum(doc.session.has_result(i) for i in range(0, doc.num_frames, 100)) * 100)
    done = [i for i in range(1, doc.num_frames) if doc.session.has_result(i)]
    out["propagate_s_per_frame"] = round((time.perf_counter() - t0) / max(1, len(done)), 4)
    out["propagated_frames"] = len(done)
    ious = [jaccard(source.labels(i) > 0, doc.session.labels(i) > 0) for i in range(1, doc.num_frames, 50)]
    out["mean_iou_every_50th"] = round(float(np.mean(ious)), 4)
    sample("propagated", doc.num_frames - 1)
    print(f"propagated {len(done)} frames, {out['propagate_s_per_frame']} s per frame, "
          f"mean IoU {out['mean_iou_every_50th']}", flush=True)

    t0 = time.perf_counter()
    controller.start_export(ExportOptions(tmp / "export"))
    wait(lambda: controller.exporting, "export", lambda: len(list((tmp / "export" / MASKS_DIR).glob("*.png"))))
    out["export_s"] = round(time.perf_counter() - t0, 1)
    out["exported_masks"] = len(list((tmp / "export" / MASKS_DIR).glob("*.png")))
    sample("exported", doc.num_frames - 1)
    print(f"exported {out['exported_masks']} masks in {out['export_s']} s", flush=True)
    controller.shutdown()
    rss = [c["rss_mb"] for c in curve]
    out["rss_mb"] = {"start": rss[0], "peak": max(rss), "end": rss[-1]}
    print(f"RSS MB: {out['rss_mb']}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    ok = out["exported_masks"] == a.frames and out["propagated_frames"] == a.frames - 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
