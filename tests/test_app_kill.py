"""SIGKILL the running application while it propagates and autosaves: the workspace must reopen with every
file complete and the finished strokes kept (at most the stroke in progress is lost)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.workspace import STATE_FILE, Workspace
from stm_core.io.masks import read_mask

from .conftest import make_frames

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import sys
from pathlib import Path
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from app.controller import AppController
from app.settings import AppSettings
from stm_core.engine.settings import EngineSettings

AppSettings.engine_settings = lambda self: EngineSettings(device="cpu", random_init=True, fast=False)
frames, data = Path(sys.argv[1]), Path(sys.argv[2])
app = QApplication([])
controller = AppController(AppSettings(QSettings(str(data / "s.ini"), QSettings.Format.IniFormat)), data)
controller.open(frames)
doc = controller.document
for i in range(3):
    doc.begin_stroke((10.0 + 20 * i, 20.0), 1, 9, erase=False)
    doc.end_stroke()
print(controller.autosaver.workspace.root, flush=True)
while True:  # propagate again and again, painting in between: the parent kills us at a random moment
    controller.propagation.start("forward", 0)
    while controller.propagation.running:
        app.processEvents()
    doc.seek(3)
    doc.begin_stroke((40.0, 40.0), 1, 5, erase=False)
    doc.end_stroke()
    doc.seek(0)
'''


@pytest.mark.parametrize("delay", [0.4, 1.5])
def test_sigkill_leaves_a_complete_workspace(tmp_path, delay):
    frames = make_frames(tmp_path / "clip", count=12)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, str(script), str(frames), str(tmp_path / "data")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        root = Path(child.stdout.readline().strip())
        assert root.name, "the child did not start"
        time.sleep(delay)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)

    state = json.loads((root / STATE_FILE).read_text())  # parses: never torn
    for png in (*(root / "masks").glob("*.png"), *(root / "annotations").glob("*.png")):
        if not png.name.startswith("."):  # dot-files are temporaries a kill left behind; readers skip them
            assert read_mask(png).shape == (64, 96)  # every mask file complete
    first = read_mask(root / "annotations" / "00000.png")
    assert first[20, 10] == 1 and first[20, 30] == 1 and first[20, 50] == 1  # finished strokes kept
    assert Workspace(root).matches(state, [f"{i:05d}" for i in range(12)], (64, 96))
    assert np.isin(first, [0, 1]).all()
    Workspace(root).remove_leftovers()  # what reopening does first
    assert not [p for p in root.rglob(".*.tmp*")]
