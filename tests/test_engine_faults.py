"""Engine faults: out-of-memory during propagation, a killed CLI run, long generated videos."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from stm_core.engine.settings import EngineSettings
from stm_core.errors import OutOfMemoryError
from stm_core.io.generated import GeneratedVideo
from stm_core.io.masks import read_mask, write_mask
from stm_core.model.checkpoint import save_weights
from stm_core.model.config import STM_SMALL
from stm_core.model.stm import STM
from stm_core.session import AnnotationSession

from .engine_helpers import square_mask, tiny_session, write_clip


def test_out_of_memory_is_reported_and_work_survives(tmp_path, monkeypatch):
    session = tiny_session(write_clip(tmp_path / "c", frames=5))
    session.set_annotation(0, square_mask())
    session.propagate(0, "forward")
    before = session.labels(3)

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    monkeypatch.setattr(STM, "segment", boom)  # the class: the engine propagates with its own folded copy
    session.set_annotation(0, square_mask(t=1))  # else the run is not computed again
    with pytest.raises(OutOfMemoryError, match="lower the memory cap") as raised:
        session.propagate(0, "forward")
    assert "system memory" in str(raised.value) and "CPU" not in str(raised.value)  # QA pass 18: "run on the
    # CPU", said on the CPU
    from app.errors import describe
    assert "CPU" not in describe(raised.value)[1]
    assert np.array_equal(session.labels(3), before)
    monkeypatch.undo()
    assert session.propagate(0, "forward").frames == [1, 2, 3, 4]  # retry works

    def no_primitive(*args, **kwargs):  # oneDNN's words for it under a memory limit (QA pass 81: a traceback)
        raise RuntimeError("could not create a primitive")
    monkeypatch.setattr(STM, "segment", no_primitive)
    session.set_annotation(0, square_mask(t=2))
    with pytest.raises(OutOfMemoryError, match="out of system memory while propagating"):
        session.propagate(0, "forward")


def test_sigkill_during_cli_propagation_leaves_only_complete_files(tmp_path):
    frames = write_clip(tmp_path / "f", frames=300, size=(96, 160))  # long enough that the kill lands mid-run
    ann = tmp_path / "a"
    ann.mkdir()
    write_mask(ann / "00000.png", np.kron(square_mask(), np.ones((2, 2), np.uint8)))
    weights = tmp_path / "w.pt"
    save_weights(STM(STM_SMALL), weights)
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "stm_core", "propagate", str(frames), "--annotations", str(ann),
                             "--output", str(out), "--weights", str(weights), "--device", "cpu", "--quiet",
                             "--adapt-steps", "0"])
    def complete() -> list[Path]:  # '.'-names are atomic temp files, not yet written masks
        return sorted(p for p in out.glob("*.png") if not p.name.startswith(".")) if out.is_dir() else []
    deadline = time.time() + 120
    while time.time() < deadline and len(complete()) < 5:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    assert 5 <= len(written) < 300
    for path in written:
        assert path.suffix == ".png" and read_mask(path).shape == (96, 160)


def test_generated_video_is_deterministic_and_long_videos_open_instantly():
    video = GeneratedVideo(10_000, (48, 80), objects=2)
    assert len(video) == 10_000 and video.names[-1] == "09999"
    assert np.array_equal(video[9_999], GeneratedVideo(10_000, (48, 80), objects=2)[9_999])
    assert set(np.unique(video.labels(0))) <= {0, 1, 2}


def test_long_propagation_keeps_memory_bank_bounded():
    video = GeneratedVideo(120, (32, 48), objects=1)
    session = AnnotationSession(video, EngineSettings(random_init=True, device="cpu", mem_every=2, max_memory=4))
    session.set_annotation(0, video.labels(0))
    sizes = []
    session.propagate(0, "forward", progress=lambda i, d, t: sizes.append(session.memory_status()["memory_frames"]))
    assert max(sizes) <= 5  # cap + the temporary previous frame
