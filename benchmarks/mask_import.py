"""Importing a long video's mask folder into the application: seconds the window is busy, seconds until the
autosave has written every mask, and the process's peak memory (RSS) on the way.

    QT_QPA_PLATFORM=offscreen python benchmarks/mask_import.py [--frames 2000] [--height 1080] [--old DIR]
        [--repeat 2] [--annotated] [--json out.json]

A flat grey video (H.264) and one 2-object palette PNG per frame are generated in a temporary folder; the
masks are imported as results (`--annotated`: as annotated frames) through `AppController.import_mask_folder`,
as the File menu does. `--old DIR`
measures another checkout too (e.g. `git archive <rev> app stm_core resources | tar -x -C DIR`), each variant in
its own fresh process, alternated `--repeat` times on the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _make_inputs(folder: Path, frames: int, height: int) -> tuple[Path, Path]:
    import av

    from stm_core.io.masks import write_mask

    width = round(height * 16 / 9) // 2 * 2
    video = folder / "video.mp4"
    with av.open(str(video), "w") as out:  # flat frames encode in no time
        stream = out.add_stream("libx264", rate=Fraction(30), options={"preset": "ultrafast"})
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="rgb24")
        for _ in range(frames):
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    masks = folder / "masks"
    masks.mkdir()
    yy, xx = np.mgrid[0:height, 0:width]
    for t in range(frames):
        labels = np.zeros((height, width), np.uint8)
        labels[((xx - width * (0.2 + 0.6 * (t % 100) / 100)) / (width / 10)) ** 2
               + ((yy - height / 2) / (height / 6)) ** 2 < 1] = 1
        labels[(yy > height * 0.7) & (xx > width * 0.1 * (1 + t % 7)) & (xx < width * 0.1 * (3 + t % 7))] = 2
        write_mask(masks / f"{t:05d}.png", labels)
    return video, masks


def _measure(video: Path, masks: Path, annotated: bool) -> dict:
    """In this process (run by `main` once per variant): open, import, wait for the autosave."""
    import psutil
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from app.controller import AppController
    from app.settings import AppSettings

    app = QApplication([])
    work = Path(tempfile.mkdtemp(prefix="mask-import-"))
    controller = AppController(AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)),
                               work / "data")
    assert controller.open(video), "the video did not open"
    process, peak, done = psutil.Process(), [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)
    threading.Thread(target=watch, daemon=True).start()
    rss0 = process.memory_info().rss
    t0 = time.perf_counter()
    assert controller.import_mask_folder(masks, as_annotations=annotated), "the import failed"
    busy = time.perf_counter() - t0
    assert controller.autosaver.save_now(timeout=3600), "the autosave did not finish"
    saved = time.perf_counter() - t0
    done.set()
    after = process.memory_info().rss
    controller.shutdown()
    app.processEvents()
    return {"busy_s": round(busy, 1), "saved_s": round(saved, 1), "rss_before_mb": rss0 >> 20,
            "rss_peak_mb": peak[0] >> 20, "rss_after_mb": after >> 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--old", default="", help="another checkout's root, measured as well")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the variants, alternated")
    parser.add_argument("--annotated", action="store_true", help="import the masks as annotated frames")
    parser.add_argument("--json", default="")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)  # video, masks: one variant, in-process
    a = parser.parse_args()
    if a.measure:
        print(json.dumps(_measure(Path(a.measure[0]), Path(a.measure[1]), a.annotated)))
        return
    folder = Path(tempfile.mkdtemp(prefix="mask-import-inputs-"))
    t0 = time.perf_counter()
    video, masks = _make_inputs(folder, a.frames, a.height)
    print(f"{a.frames} masks of {a.height} px written in {time.perf_counter() - t0:.0f} s", flush=True)
    variants = {"this tree": ROOT} | ({"old": Path(a.old).resolve()} if a.old else {})
    rows: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(a.repeat):
        for name, root in variants.items():
            env = {**os.environ, "PYTHONPATH": str(root), "QT_QPA_PLATFORM": "offscreen"}
            out = subprocess.run([sys.executable, __file__, "--measure", str(video), str(masks)]
                                 + (["--annotated"] if a.annotated else []), env=env, cwd=root, capture_output=True,
                                 text=True)
            if out.returncode:
                row = {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}
            else:
                row = json.loads(out.stdout.strip().splitlines()[-1])
            rows[name].append(row)
            print(f"{name:>10}: {row}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"frames": a.frames, "height": a.height, "annotated": a.annotated,
                                            "variants": rows}, indent=1))


if __name__ == "__main__":
    main()
