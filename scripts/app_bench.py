"""Measure what an annotator feels: brush latency and frame switching at 1080p, opening and reopening a
10,000-frame video, redrawing its timeline, and how fast the window answers while propagation runs.

    QT_QPA_PLATFORM=offscreen python scripts/app_bench.py [--frames 10000] [--json out.json]

The engine runs with an untrained network (`random_init`): this measures the application, not the model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.controller import AppController  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.settings import AppSettings  # noqa: E402
from stm_core.engine.settings import EngineSettings  # noqa: E402


def write_frames(folder: Path, count: int, size: tuple[int, int]) -> Path:
    """`count` copies of one noisy PNG (decoding cost without gigabytes of test data)."""
    folder.mkdir(parents=True)
    ok, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8))
    for i in range(count):
        (folder / f"{i:05d}.png").write_bytes(png.tobytes())
    return folder


def window(tmp: Path) -> tuple[MainWindow, AppController]:
    settings = AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    controller = AppController(settings, tmp)
    win = MainWindow(controller)
    win.resize(1400, 900)
    win.show()
    return win, controller


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    AppSettings.engine_settings = lambda self: EngineSettings(device="cpu", random_init=True)
    app = QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="stm-app-bench-"))
    out: dict[str, float] = {}

    win, c = window(tmp / "a")
    c.open(write_frames(tmp / "hd", 3, (1080, 1920)))
    app.processEvents()
    doc = c.document
    doc.begin_stroke((100.0, 100.0), 1, 40, erase=False)
    t0 = time.perf_counter()
    for i in range(300):
        doc.extend_stroke((100.0 + 5 * i, 100.0 + 3 * i))
        app.processEvents()
    out["brush_move_ms_1080p"] = (time.perf_counter() - t0) / 300 * 1000
    t0 = time.perf_counter()
    doc.end_stroke()
    out["stroke_commit_ms_1080p"] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    for i in range(30):
        doc.seek(i % 3)
        app.processEvents()
    out["frame_switch_ms_1080p"] = (time.perf_counter() - t0) / 30 * 1000
    c.shutdown()

    long_clip = write_frames(tmp / "long", args.frames, (48, 64))
    win, c = window(tmp / "b")
    t0 = time.perf_counter()
    c.open(long_clip)
    app.processEvents()
    out["open_s"] = time.perf_counter() - t0
    doc = c.document
    labels = np.zeros((48, 64), np.uint8)
    labels[10:20, 10:20] = 1
    for i in range(0, args.frames, 2):
        doc.session.set_result(i, labels)
        doc.note_result(i, doc.annotation_key())
    t0 = time.perf_counter()
    c.autosaver.save_now(600)
    out["save_results_s"] = time.perf_counter() - t0
    out["saved_results"] = args.frames // 2
    c.shutdown()
    win, c = window(tmp / "b")
    t0 = time.perf_counter()
    c.open(long_clip)
    app.processEvents()
    out["reopen_s"] = time.perf_counter() - t0
    while c._loader is not None:
        app.processEvents()
        time.sleep(0.01)
    out["reopen_all_results_loaded_s"] = time.perf_counter() - t0

    doc = c.document
    for _ in range(4):  # the timeline draws a lane per object
        doc.add_object()
    t0 = time.perf_counter()
    for _ in range(10):
        win.timeline.refresh()
    out["timeline_refresh_ms_5_objects"] = (time.perf_counter() - t0) / 10 * 1000
    doc.seek(0)
    doc.begin_stroke((20.0, 20.0), 1, 9, erase=False)
    doc.end_stroke()
    c.propagation.start("forward", 0)
    latencies = []
    while c.propagation.running and len(latencies) < 300:
        t0 = time.perf_counter()
        doc.seek(len(latencies) * 7 % args.frames)
        app.processEvents()
        latencies.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.02)
    c.propagation.cancel_and_wait()
    out["seek_during_propagation_median_ms"] = float(np.median(latencies))
    out["seek_during_propagation_p95_ms"] = float(np.percentile(latencies, 95))
    c.shutdown()

    for key, value in out.items():
        print(f"{key:38s} {value:10.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
