"""Start the annotation application: `python main.py [VIDEO_OR_FRAME_FOLDER]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication

from app.controller import AppController
from app.main_window import APP_NAME, MainWindow
from app.settings import AppSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Annotate objects in a video with STM propagation.")
    parser.add_argument("path", nargs="?", help="a video file or a folder of frames (optional)")
    parser.add_argument("--demo", action="store_true",
                        help="open the generated demo clip (what a first start without a path opens)")
    args = parser.parse_args(argv)
    app = QApplication(sys.argv[:1])
    app.setOrganizationName("stm-annotator")
    app.setApplicationName(APP_NAME)
    data_dir = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
    data_dir.mkdir(parents=True, exist_ok=True)
    controller = AppController(AppSettings(), data_dir)
    window = MainWindow(controller)
    window.show()
    open_first(controller, args.path, args.demo)
    return app.exec()


def open_first(controller: AppController, path: str | None, demo: bool) -> None:
    """What the window opens on: the path given; else the demo clip when asked or when no video was ever opened
    (a first start shows the tool at work), else the start screen with the recent videos."""
    if path:
        controller.open(path)
    elif demo or not controller.settings.opened_before():  # QA pass 71: not where the videos are unmounted
        controller.open_demo()


if __name__ == "__main__":
    sys.exit(main())
