"""Input edge cases from real use: lying video headers, paths with spaces and non-ASCII characters."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import av
import numpy as np
import pytest

from stm_core.cli import main
from stm_core.errors import InputError
from stm_core.io.frames import open_frames
from stm_core.io.masks import read_mask, write_mask
from stm_core.model.checkpoint import save_weights
from stm_core.model.config import STM_SMALL
from stm_core.model.stm import STM

from .engine_helpers import square_mask, write_clip, write_cut_video


def _write_avi(path: Path, frames: int) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for t in range(frames):
            img = np.full((48, 64, 3), 20 * t, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_video_whose_header_frame_count_is_wrong(tmp_path):
    path = tmp_path / "lying.avi"
    _write_avi(path, 7)
    data = bytearray(path.read_bytes())
    avih = data.index(b"avih") + 8  # chunk id + size, then MainAVIHeader: dwTotalFrames at +16
    data[avih + 16:avih + 20] = struct.pack("<I", 999)
    strh = data.index(b"strh") + 8  # AVIStreamHeader: dwLength at +32
    data[strh + 32:strh + 36] = struct.pack("<I", 999)
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames != 7  # the header really lies
    with pytest.warns(UserWarning, match="its header gives 999 frames but only 7 could be read"):
        video = open_frames(path)
    assert len(video) == 7
    assert video[6].shape == (48, 64, 3) and abs(int(video[6].mean()) - 120) < 10


def test_a_video_cut_short_is_said_to_be(tmp_path):
    """Found by a QA pass: a truncated mkv opened as 19 of its 30 frames without a word. Matroska states only a
    length; audio running longer than the video, a variable frame rate or timestamps starting late must not read
    as a loss (eighth and ninth QA passes: they did); a fifth cut off must (ninth: it did not)."""
    for name, kw in (("whole.mkv", {}), ("audio.mkv", {"audio_seconds": 4.5}), ("vfr.mkv", {"vfr": True}),
                     ("late.mkv", {"start_seconds": 5.0})):  # ninth QA pass: timestamps from 5 s warned
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert len(open_frames(write_cut_video(tmp_path / name, kept=1.0, **kw))) == 30, name
    with pytest.warns(UserWarning, match=r"its header gives a length of 3.0 s but its data ends at [\d.]+ s "
                                         r"\(\d+ frames read\); the file may be cut short"):
        video = open_frames(write_cut_video(tmp_path / "cut.mkv"))
    assert 5 < len(video) < 30 and video[len(video) - 1].shape == (48, 64, 3)
    with pytest.warns(UserWarning, match="cut short"):
        assert len(open_frames(write_cut_video(tmp_path / "cut80.mkv", kept=0.8))) < 30
    mp4 = tmp_path / "cut.mp4"  # its index (moov) comes last: what is left is unreadable, and says why
    with av.open(str(mp4), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for img in np.random.default_rng(0).integers(0, 255, (10, 48, 64, 3), dtype=np.uint8):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    mp4.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(InputError, match="cut short"):
        open_frames(mp4)


def test_paths_with_spaces_and_non_ascii_characters(tmp_path):
    root = tmp_path / "Vidéo prise 日本 x"
    frames = write_clip(root / "images  dir", frames=3)
    ann = root / "masques é"
    ann.mkdir()
    write_mask(ann / "00000.png", square_mask())
    weights = root / "poids ü.pt"
    save_weights(STM(STM_SMALL), weights)
    out = root / "sortie ø"
    assert main(["propagate", str(frames), "--annotations", str(ann), "--output", str(out),
                 "--weights", str(weights), "--device", "cpu", "--quiet", "--adapt-steps", "0"]) == 0
    assert [p.name for p in sorted(out.iterdir())] == ["00000.png", "00001.png", "00002.png"]
    assert read_mask(out / "00002.png").shape == (48, 80)


def test_a_phone_photos_exif_orientation_is_applied_and_tif_gif_frames_are_read(tmp_path):
    """Sixth CLI QA pass: JPEGs stored sideways with an EXIF orientation came out sideways (upright masks were
    refused), and .tif/.gif frames in a folder were left out without a word."""
    from PIL import Image

    left_half_bright = np.zeros((48, 64, 3), np.uint8)
    left_half_bright[:, :32] = 230
    folder = tmp_path / "photos"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show the stored picture turned 90° clockwise
    Image.fromarray(left_half_bright).save(folder / "00000.jpg", exif=exif, quality=95)
    Image.fromarray(np.rot90(left_half_bright, -1).copy()).save(folder / "00001.tif")
    Image.fromarray(np.rot90(left_half_bright, -1).copy()).save(folder / "00002.gif")
    frames = open_frames(folder)
    assert frames.size == (64, 48) and frames.names == ["00000", "00001", "00002"]
    upright = np.rot90(left_half_bright, -1)  # what viewers show: the bright half on top
    for i in range(3):
        assert frames[i].shape == (64, 48, 3) and np.abs(frames[i].astype(int) - upright).mean() < 8, i


def test_a_phone_videos_rotation_is_applied(tmp_path):
    """Fifth CLI QA pass: portrait phone video (landscape pictures plus a rotation in the track header) came
    out sideways, so masks drawn on the upright picture were refused as the wrong size."""
    path = tmp_path / "portrait.mp4"
    left_half_bright = np.zeros((48, 64, 3), np.uint8)
    left_half_bright[:, :32] = 230
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(left_half_bright, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytearray(path.read_bytes())
    matrix = data.index(b"tkhd") + 4 + 4 + 4 * 5 + 8 + 2 * 4  # version 0 track header: the display matrix
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 0x40000000)  # 90° turn
    path.write_bytes(bytes(data))
    video = open_frames(path)
    assert video.size == (64, 48) and video[2].shape == (64, 48, 3)
    upright = np.rot90(left_half_bright, -1)  # what players show: the bright half on top
    assert np.abs(video[0].astype(int) - upright).mean() < 8
    assert video[0][:32].mean() > 200 and video[0][32:].mean() < 30
