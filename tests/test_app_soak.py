"""A random annotation session through the real widgets: paint, erase, undo, redo, scrub, add objects,
propagate, cancel, export; then close, reopen and check that every frame's mask came back exactly.

Scaled for CI (60 actions). The full-length run is time-based and logs memory as it goes:
`APP_SOAK_MINUTES=120 APP_SOAK_LOG=soak.jsonl QT_QPA_PLATFORM=offscreen pytest tests/test_app_soak.py`.
"""

from __future__ import annotations

import json
import os
import random
import time

import numpy as np
import psutil
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QApplication

from app.export import ExportOptions

from .conftest import make_frames

ACTIONS = int(os.environ.get("APP_SOAK_ACTIONS", "60"))
MINUTES = float(os.environ.get("APP_SOAK_MINUTES", "0"))  # > 0: run for this long instead of ACTIONS actions
LOG = os.environ.get("APP_SOAK_LOG")  # JSON lines: actions done, seconds, RSS
RSS_GROWTH_LIMIT = 400 * 1024 ** 2
WAIT_MS = 600_000  # generous: on a loaded machine a tiny propagation can take a minute; a hang takes forever


def test_random_session_survives_and_reopens_identical(qtbot, app_factory, tmp_path):
    rng = random.Random(int(os.environ.get("APP_SOAK_SEED", "1234")))
    frames = make_frames(tmp_path / "soak", count=8)
    window = app_factory()
    c, doc = window.controller, window.document
    c.open(frames)
    canvas, viewport = window.canvas, window.canvas.viewport()
    process = psutil.Process()
    rss_start = process.memory_info().rss

    def point() -> QPoint:
        return canvas.mapFromScene(QPointF(rng.uniform(0, 96), rng.uniform(0, 64)))

    def paint(button: Qt.MouseButton) -> None:
        window.editor.set_brush_size(rng.choice([3, 7, 15]))
        qtbot.mousePress(viewport, button, pos=point())
        for _ in range(rng.randint(1, 4)):
            qtbot.mouseMove(viewport, point())
        qtbot.mouseRelease(viewport, button, pos=point())

    def key(k: Qt.Key, mod: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
        qtbot.keyClick(canvas, k, mod)

    actions = [
        (8, lambda: paint(Qt.MouseButton.LeftButton)),
        (2, lambda: paint(Qt.MouseButton.RightButton)),
        (3, lambda: key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)),
        (2, lambda: key(Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)),
        (4, lambda: key(rng.choice([Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End]))),
        (1, lambda: key(Qt.Key.Key_N)),
        (2, lambda: key(rng.choice([Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3]))),
        (3, lambda: key(Qt.Key.Key_F, rng.choice([Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier,
                                                   Qt.KeyboardModifier.ControlModifier]))),
        (1, lambda: key(Qt.Key.Key_Escape)),
        (1, lambda: key(Qt.Key.Key_O)),
        (1, lambda: c.start_export(ExportOptions(tmp_path / "export"))),
        (1, lambda: qtbot.waitUntil(lambda: not c.propagation.running, timeout=WAIT_MS)),  # let a run land
    ]
    weights = [w for w, _ in actions]
    t0 = time.monotonic()
    log = open(LOG, "a") if LOG else None
    done = 0
    while (time.monotonic() - t0 < MINUTES * 60) if MINUTES > 0 else done < ACTIONS:
        rng.choices(actions, weights)[0][1]()
        QApplication.processEvents()
        done += 1
        if log and done % 2000 == 0:
            log.write(json.dumps({"actions": done, "seconds": round(time.monotonic() - t0, 1),
                                  "rss_mb": round(process.memory_info().rss / 2**20, 1)}) + "\n")
            log.flush()

    qtbot.waitUntil(lambda: not c.propagation.running and not c.exporting, timeout=WAIT_MS)
    QApplication.processEvents()
    expected = [doc.session.labels(i) for i in range(doc.num_frames)]
    annotated = doc.annotated_frames()
    if log:
        log.write(json.dumps({"actions": done, "seconds": round(time.monotonic() - t0, 1), "final": True,
                              "rss_mb": round(process.memory_info().rss / 2**20, 1)}) + "\n")
        log.close()
    assert process.memory_info().rss - rss_start < RSS_GROWTH_LIMIT
    window.close()

    again = app_factory()
    again.controller.open(frames)
    doc2 = again.document
    qtbot.waitUntil(lambda: again.controller._loader is None, timeout=WAIT_MS)
    assert doc2.annotated_frames() == annotated
    for i, labels in enumerate(expected):
        got = doc2.session.labels(i)
        if labels is None or not labels.any():
            assert got is None or not got.any(), i
        else:
            assert np.array_equal(got, labels), i
