"""Screenshot of the real application on a DAVIS sequence: open, annotate frame 0 (and any `--annotate`
frames, standing in for the annotator's corrections) from the ground-truth masks, propagate forward from each
annotated frame through the worker thread, show a frame, save the window as a PNG.

    python scripts/app_screenshot.py [--sequence blackswan] [--annotate 0,25] [--frames N] [--weights W]
                                     [--process-height 240] [--look 1.0] [--out docs/screenshot.png]

It also prints when the first result arrived in the window after propagation was asked for (`--look`: seconds
the annotator looks at the opened video first, while the engine warms up; 0 presses propagate at once).

Runs on any Qt platform (use Xvfb or QT_QPA_PLATFORM=offscreen without a display). The workspace goes to a
temporary folder, so nothing is written next to the shared data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.controller import AppController  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.settings import AppSettings, Preferences  # noqa: E402


def wait(ms: int) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def save(window: MainWindow, shot: Path) -> None:
    window.grab().save(str(shot))
    # 256-colour PNG: a UI screenshot stays sharp and well under 500 KB for the README
    Image.open(shot).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(shot, optimize=True)
    print(f"{shot} ({shot.stat().st_size // 1024} KB)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequence", default="blackswan")
    parser.add_argument("--davis", default=str(ROOT.parent / "shared" / "data" / "davis2016"))
    parser.add_argument("--annotate", default="0", help="comma-separated frames annotated from ground truth")
    parser.add_argument("--frames", type=int, default=0, help="stop each run after this many frames (0: all)")
    parser.add_argument("--show", type=int, default=30, help="frame shown in the screenshot")
    parser.add_argument("--weights", default="")
    parser.add_argument("--process-height", type=int, default=-1, choices=(-1, 0, 480, 360, 240),
                        help="-1: the height the weights recommend, 0: source size")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--adapting-out", help="also save the window halfway through test-time adaptation")
    parser.add_argument("--look", type=float, default=1.0,
                        help="seconds between opening and propagating, as an annotator looks (the engine warms up)")
    args = parser.parse_args()
    davis = Path(args.davis)
    frames = davis / "JPEGImages" / "480p" / args.sequence
    masks = davis / "Annotations" / "480p" / args.sequence
    annotated = sorted(int(i) for i in args.annotate.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="stm-shot-"))

    app = QApplication(sys.argv[:1])  # noqa: F841 (must outlive the window)
    settings = AppSettings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat))
    settings.set_preferences(Preferences(weights=args.weights, process_height=args.process_height))
    controller = AppController(settings, tmp)
    window = MainWindow(controller)
    window.resize(1440, 900)
    window.show()
    controller.error.disconnect(window.show_error)
    controller.error.connect(lambda title, text: print(f"ERROR {title}: {text}", file=sys.stderr))
    if not controller.open(frames):
        return 1
    doc = controller.document
    for index in annotated:
        doc.seek(index)
        if not controller.import_frame_mask(masks / f"{doc.session.frame_names[index]}.png"):
            return 1
    doc.rename_object(1, args.sequence)
    if args.frames:
        controller.propagation.progress.connect(
            lambda frame, n, total, fps: controller.propagation.cancel() if n >= args.frames else None)
    if args.adapting_out:
        def adapting(done: int, steps: int) -> None:
            if done == steps // 2:
                save(window, Path(args.adapting_out))
        controller.propagation.adapting.connect(adapting)
    wait(round(1000 * args.look))
    first: list[float] = []
    for signal in (controller.propagation.progress, controller.propagation.previewed):
        signal.connect(lambda *_: first.append(time.perf_counter()) if not first else None)
    t0 = time.perf_counter()
    for index in annotated:  # each run stops at the next annotated frame
        done = QEventLoop()
        controller.propagation.runningChanged.connect(lambda running, loop=done: None if running else loop.quit())
        controller.propagation.start("forward", index)
        doc.seek(min(args.show, doc.num_frames - 1))  # scrub while it runs: the view updates as results land
        done.exec()
    print(f"propagated in {time.perf_counter() - t0:.1f} s; first result shown after {first[0] - t0:.3f} s",
          file=sys.stderr)
    wait(600)
    save(window, Path(args.out))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
