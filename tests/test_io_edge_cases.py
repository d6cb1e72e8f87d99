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


def test_a_trimmed_mp4_opens_without_a_word_of_lost_frames(tmp_path):
    """QA pass 33: a phone's trim without re-encoding keeps the frames before the cut behind an edit list; the
    header counts them, so every opening warned "its header gives 60 frames but only 50 could be read"."""
    from .test_io_frames import _write_video

    whole, trimmed = tmp_path / "whole.mp4", tmp_path / "trimmed.mp4"
    _write_video(whole, 20, gop=20)
    with av.open(str(whole)) as source, av.open(str(trimmed), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        offset = 4 * int(source.streams.video[0].time_base.denominator / 25)  # frame 4 shown at time 0
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.pts, packet.dts, packet.stream = packet.pts - offset, packet.dts - offset, stream
                out.mux(packet)
    with av.open(str(trimmed)) as container:
        assert container.streams.video[0].frames == 20  # the header counts the frames cut away
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        video = open_frames(trimmed)
    assert len(video) == 16 and np.array_equal(video[0], open_frames(whole)[4])


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
    with pytest.warns(UserWarning, match="cut short"):  # QA pass 12: 1.3 s of a minute went unnoticed
        assert len(open_frames(write_cut_video(tmp_path / "minute.mkv", frames=600, kept=0.95))) < 590
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


@pytest.mark.parametrize("kind", ["web.mp4", "fragmented.mp4", "cut.avi"])
def test_a_cut_video_leaves_out_the_frames_it_cannot_decode(tmp_path, kind):
    """QA pass 12: an MP4 with its index first (as web videos are) cut to 97 % opened as 58 frames without a
    word, and the last 3 failed on display, in propagation and in the overlay export. A fragmented MP4 (as
    cameras and streaming record) or an AVI cut inside its last frame, whose headers promise nothing, kept
    that partial frame: the MP4's failed and took the frames before it that were still in the decoder's
    threads along, the AVI's showed as concealed garbage. Every frame kept now decodes whole (only the partial
    one is lost), and a warning says what was left out."""
    path = tmp_path / kind
    options = {"web.mp4": {"movflags": "faststart"}, "fragmented.mp4": {"movflags": "frag_keyframe+empty_moov"},
               "cut.avi": {}}[kind]
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=25, options={"bf": "2", "g": "30"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for img in np.random.default_rng(0).integers(0, 255, (60, 48, 64, 3), dtype=np.uint8):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    with av.open(str(path)) as container:
        last = [p for p in container.demux(video=0) if p.size][-1]
    cut = int(path.stat().st_size * 0.97) if kind == "web.mp4" else last.pos + last.size // 2
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.warns(UserWarning, match=r"its last \d+ of \d+ frames cannot be decoded and are left out"):
        video = open_frames(path)
    assert 40 < len(video) < 60 if kind == "web.mp4" else len(video) == 59
    for i in reversed(range(len(video))):  # backwards: every read seeks
        assert video[i].shape == (48, 64, 3)
    assert len(list(video)) == len(video)  # and in order, as propagation reads


def test_a_video_cut_in_half_says_how_many_frames_it_kept_once(tmp_path):
    """QA pass 101: "its header gives 20 frames but only 7 could be read", then "its last 1 of 8 frames cannot
    be decoded": the partial last frame counted in one and not in the other."""
    path = tmp_path / "web.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=25, options={"g": "30"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for img in np.random.default_rng(0).integers(0, 255, (20, 48, 64, 3), dtype=np.uint8):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        video = open_frames(path)
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and f"its header gives 20 frames but only {len(video)} could be read" in said[0]


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


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_frames_and_masks_turned_by_their_exif_orientation_agree(tmp_path, suffix):
    """QA pass 46: a TIFF turned a quarter by its Orientation tag could not be opened (Pillow turns it as it
    loads, and its size was swapped once more: "00000.tif is 64x96, the first frame is 96x64"); a mask saved as
    the frames were (a phone editor's JPEG, EXIF orientation kept) was read unturned, a half turn tracked upside
    down, a quarter turn refused as the wrong size."""
    from PIL import Image

    corner = np.zeros((48, 64, 3), np.uint8)
    corner[:24, :32] = 230  # bright top-left corner, as stored
    folder, masks = tmp_path / "photos", tmp_path / "masks"
    folder.mkdir()
    masks.mkdir()
    for orientation, name in ((6, "00000"), (6, "00001")):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(corner).save(folder / f"{name}{suffix}", exif=exif, quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(corner[:, :, 0]).save(masks / "00000.jpg", exif=exif, quality=95)
    frames = open_frames(folder)
    shown = np.rot90(corner, -1)  # turned 90° clockwise: the bright corner top-right
    assert frames.size == (64, 48) and np.abs(frames[1].astype(int) - shown).mean() < 8
    mask = read_mask(masks / "00000.jpg", frames.size)
    assert mask.shape == (64, 48) and mask[:32, 24:].all() and not mask[32:].any()


@pytest.mark.parametrize("matrix, shown", [
    ((0, 65536, 0, -65536, 0, 0, 0, 0, 0x40000000), lambda im: np.rot90(im, -1)),  # portrait phone video
    ((-65536, 0, 0, 0, -65536, 0, 0, 0, 0x40000000), lambda im: np.rot90(im, 2)),
    ((0, -65536, 0, 65536, 0, 0, 0, 0, 0x40000000), lambda im: np.rot90(im, 1)),
    ((-65536, 0, 0, 0, 65536, 0, 0, 0, 0x40000000), lambda im: im[:, ::-1]),  # a mirror, not a half turn
    ((65536, 0, 0, 0, -65536, 0, 0, 0, 0x40000000), lambda im: im[::-1]),
], ids=["turned 90", "turned 180", "turned 270", "mirrored", "upside down"])
def test_a_videos_display_matrix_is_applied_as_players_apply_it(tmp_path, matrix, shown):
    """Fifth CLI QA pass: portrait phone video (landscape pictures plus a rotation in the track header) came
    out sideways, so masks drawn on the upright picture were refused as the wrong size. QA pass 12: a mirror
    in the header came out turned 180 degrees."""
    path = tmp_path / "video.mp4"
    corner_bright = np.zeros((48, 64, 3), np.uint8)
    corner_bright[:24, :32] = 230
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(corner_bright, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd") + 4 + 4 + 4 * 5 + 8 + 2 * 4  # version 0 track header: the display matrix
    data[at:at + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))
    video = open_frames(path)
    expected = shown(corner_bright)
    assert video.size == expected.shape[:2] and video[2].shape == expected.shape
    assert np.abs(video[0].astype(int) - expected).mean() < 8

@pytest.mark.parametrize("suffix", [".m4v", ".ts", ".mpg", ".3gp"])
def test_other_video_containers_ffmpeg_reads_open(tmp_path, suffix):
    """QA pass 12: .m4v, .ts, .mpg and .3gp videos were refused as "neither a folder of images nor a video"."""
    path = tmp_path / f"clip{suffix}"
    codec = "mpeg2video" if suffix == ".mpg" else "libx264"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for img in np.random.default_rng(0).integers(0, 255, (12, 48, 64, 3), dtype=np.uint8):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    video = open_frames(path)
    assert len(video) == 12 and video[11].shape == (48, 64, 3) and video[3].shape == (48, 64, 3)


def test_an_animated_gif_opens_as_a_clip_and_one_in_a_frame_folder_is_said_to_give_one_picture(tmp_path):
    """QA pass 16: an animated GIF could not be opened (not a video suffix), and one in a frame folder gave
    its first picture without a word."""
    from PIL import Image

    pictures = [Image.fromarray(img) for img in
                np.random.default_rng(0).integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)]
    clip = tmp_path / "clip.gif"
    pictures[0].save(clip, save_all=True, append_images=pictures[1:], duration=100, loop=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        video = open_frames(clip)
        assert len(video) == 6 and video.fps == 10
    with Image.open(clip) as im:
        for i in reversed(range(6)):
            im.seek(i)
            assert np.array_equal(video[i], np.array(im.convert("RGB")))
    folder = tmp_path / "frames"
    folder.mkdir()
    pictures[0].save(folder / "00000.gif", save_all=True, append_images=pictures[1:])
    pictures[1].save(folder / "00001.gif")
    with pytest.warns(UserWarning, match="00000.gif is an animated GIF: in a frame folder only its first picture"):
        assert len(open_frames(folder)) == 2


def test_an_h264_avi_with_b_frames_reads_every_frame_in_display_order(tmp_path):
    """QA pass 19: AVI keeps no presentation times (its packets' are their decoding order); with B-frames 18
    of 60 frames failed, by random access and in order."""
    path = tmp_path / "camera.avi"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"bf": "2", "g": "12"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(40):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.roll(base, 3 * i, axis=1), format="rgb24")))
        out.mux(stream.encode())
    with av.open(str(path)) as container:
        shown = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    video = open_frames(path)
    assert len(video) == len(shown) == 40
    for i in np.random.default_rng(1).permutation(40):
        assert np.array_equal(video[int(i)], shown[int(i)])


def test_a_file_that_is_no_video_is_said_in_ffmpegs_words_without_its_error_number(tmp_path):
    """QA pass 41: "[Errno 1094995529] Invalid data found when processing input: '/path'"."""
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(InputError) as raised:
        open_frames(junk)
    assert str(raised.value) == f"cannot read video {junk}: Invalid data found when processing input (not a video, " \
                                "or one damaged or cut short)"
    junk.write_bytes(b"")  # QA pass 101: an empty file was told as the same "Invalid data"
    with pytest.raises(InputError, match=r"the file is empty \(0 bytes\)"):
        open_frames(junk)


def test_a_video_of_several_video_streams_reads_the_one_of_most_frames(tmp_path):
    """QA pass 46: a Matroska file with a single picture (a cover) as its first video stream and the clip as its
    second opened as a 1-frame 160x160 video, without a word."""
    path = tmp_path / "cover.mkv"
    with av.open(str(path), "w") as out:
        cover = out.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 160, 160, "yuvj420p"
        clip = out.add_stream("libx264", rate=10)
        clip.width, clip.height, clip.pix_fmt = 96, 64, "yuv420p"
        for stream, count, size in ((cover, 1, (160, 160)), (clip, 8, (64, 96))):
            for i in range(count):
                picture = np.full((*size, 3), 30 * i, np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    with pytest.warns(UserWarning, match="holds 2 video streams: read is stream 1"):
        frames = open_frames(path)
    assert len(frames) == 8 and frames.size == (64, 96)
    assert frames[7].mean() > frames[1].mean() + 100


def test_a_video_of_non_square_pixels_says_it_is_shown_at_its_stored_size(tmp_path):
    """QA pass 46: an anamorphic video (96x64 stored, shown 192x64 by players) opened squeezed without a word."""
    from fractions import Fraction

    path = tmp_path / "anamorphic.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for i in range(3):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((64, 96, 3), 50 * i, np.uint8),
                                                                   format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.warns(UserWarning, match=r"players show it 192x64\): it is shown, annotated and exported at its "
                                         r"stored size, 96x64"):
        assert open_frames(path).size == (64, 96)


@pytest.mark.parametrize("left", ["nothing", "a dead writer's lock"])
def test_a_lock_is_taken_by_one_writer_only(tmp_path, left):
    """QA pass 80: a lock file was created empty and written after, and a writer reading it meanwhile took it
    for a dead one's and took it over: both held it. QA pass 85: writers taking over a dead writer's lock
    removed the one another had just taken. Writers racing for one lock: exactly one takes it."""
    import json
    import socket
    import subprocess
    import sys
    import threading

    from stm_core.io import locks

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = json.dumps({"pid": int(ended.stdout), "host": socket.gethostname(), "token": "a crashed run"})
    for round_ in range(40):
        path = tmp_path / f"round{round_}" / ".lock"
        if left != "nothing":
            path.parent.mkdir()
            path.write_text(dead)
        start, taken = threading.Barrier(6), []

        def race(token: str) -> None:
            start.wait()
            if locks.take(path, token) is None:
                taken.append(token)
        threads = [threading.Thread(target=race, args=(f"writer {i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(taken) == 1, (round_, taken)
        assert locks.holder(path)["token"] == taken[0]
        assert [p.name for p in path.parent.iterdir()] == [".lock"]  # nothing written aside is left


def test_a_lock_that_cannot_be_written_leaves_nothing(tmp_path, monkeypatch):
    """QA pass 81: on a full disk the record written aside stayed, an empty hidden file in the output."""
    import errno
    from pathlib import Path

    from stm_core.io import locks

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError, match="No space left"):
        locks.take(tmp_path / "out" / ".lock", "a run")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_empty_frame_or_mask_file_is_said_to_be_empty(tmp_path):
    """QA pass 79: a zero-byte frame or mask got Pillow's "cannot identify image file", as a foreign file does."""
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "00000.png")
    (folder / "00001.png").write_bytes(b"")
    frames = open_frames(folder)
    with pytest.raises(InputError, match=r"cannot read image .*00001.png: the file is empty \(0 bytes\)$"):
        frames[1]
    (tmp_path / "mask.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"cannot read mask .*mask.png: the file is empty \(0 bytes\)$"):
        read_mask(tmp_path / "mask.png")
    (tmp_path / "foreign.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"cannot read mask .*foreign.png: cannot identify image file"):
        read_mask(tmp_path / "foreign.png")
