"""Shared test fixtures. The read-only data folder `shared/` sits next to the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


def require_shared(*parts: str) -> Path:
    """Path inside shared/, or skip the calling test when that data is not on this machine."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


@pytest.fixture
def shared_dir() -> Path:
    """The shared data folder (the test is skipped when it is absent)."""
    return require_shared()


# ---- application (GUI) tests ---------------------------------------------------------------------------
# Qt must pick the offscreen platform before the first QApplication exists (CI has no display).
import os  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_frames(folder: Path, count: int = 4, size: tuple[int, int] = (64, 96)) -> Path:
    """A tiny clip: a textured square moving right over noise, saved as PNG frames 00000.png..."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    background = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    for i in range(count):
        frame = background.copy()
        x = 10 + 4 * i
        frame[20:40, x:x + 20] = (200, 80 + 10 * i, 40)
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame)
    return folder


def damaged_clip(folder: Path, count: int, damaged: int) -> Path:
    """`make_frames`, with frame `damaged`'s file cut to a third (its header still reads)."""
    make_frames(folder, count)
    data = (folder / f"{damaged:05d}.png").read_bytes()
    (folder / f"{damaged:05d}.png").write_bytes(data[:len(data) // 3])
    return folder


@pytest.fixture
def frame_dir(tmp_path: Path) -> Path:
    return make_frames(tmp_path / "clip")


@pytest.fixture
def dialogs(monkeypatch) -> list[tuple[str, str]]:
    """Record message boxes instead of blocking on them: (title, text) per call; questions answer Yes."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str]] = []

    def record(answer):
        def fake(parent, title, text, *args, **kwargs):
            shown.append((title, text))
            return answer
        return fake

    for name in ("warning", "critical", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(record(QMessageBox.StandardButton.Ok)))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(record(QMessageBox.StandardButton.Yes)))
    return shown


@pytest.fixture
def app_factory(qtbot, tmp_path: Path, monkeypatch, dialogs):
    """Build main windows sharing one settings file and data folder, with an untrained CPU network so
    propagation runs fast (its masks are garbage; the tests check the plumbing, not accuracy).

    Torch runs single-threaded here: on a busy 2-core machine its thread pool fighting the GUI thread and
    other processes made tiny frames 100x slower."""
    import gc

    import torch
    from PySide6.QtCore import QEvent, QSettings
    from PySide6.QtWidgets import QApplication

    from app.controller import AppController
    from app.main_window import MainWindow
    from app.settings import AppSettings
    from stm_core.engine.settings import EngineSettings

    def engine_settings(self):
        prefs = self.preferences()
        return EngineSettings(device="cpu", random_init=True, mem_every=prefs.mem_every,
                              max_memory=prefs.max_memory, fast=False)

    monkeypatch.setattr(AppSettings, "engine_settings", engine_settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    built = []

    def build():
        store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        controller = AppController(AppSettings(store), tmp_path / "data")
        window = MainWindow(controller)
        window.resize(900, 650)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is window)  # window shortcuts need it active
        built.append(window)
        return window

    yield build
    # close (which stops the window's threads and saves) and delete the windows within this test, so a
    # fault in tearing one down shows here, not in whichever later test next runs the event loop
    for window in built:
        window.close()
        window.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    QApplication.processEvents()
    built.clear()
    gc.collect()
    torch.set_num_threads(threads)


def two_objects_propagated(qtbot, window, frame_dir: Path):
    """`window` with `frame_dir` open, objects 1 and "Second" painted on frame 0 and propagated forward."""
    window.controller.open(frame_dir)
    doc = window.document
    second = doc.add_object("Second")
    doc.begin_stroke((20.0, 30.0), 1, 15, erase=False)
    doc.end_stroke()
    doc.begin_stroke((70.0, 20.0), second.id, 9, erase=False)
    doc.end_stroke()
    with qtbot.waitSignal(window.controller.propagation.runningChanged, timeout=60_000,
                          check_params_cb=lambda running: not running):
        window.controller.propagation.start("forward")
    return window
