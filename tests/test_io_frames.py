"""Frame sources: folder order and names, lazy decoding with a bounded cache, bad input, video indexing."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Iterator

import av
import numpy as np
import pytest
from PIL import Image

from stm_core.errors import InputError
from stm_core.io.frames import FolderFrames, VideoFrames, natural_key, open_frames

from .conftest import require_shared


def _frame(i: int, h: int = 24, w: int = 32) -> np.ndarray:
    """A frame whose content identifies its index."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (i * 7) % 256
    img[:, : i % w, 1] = 200
    return img


def _write_folder(folder: Path, names: list[str], h: int = 24, w: int = 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(_frame(i, h, w)).save(folder / name)


def _write_video(path: Path, n: int, codec: str = "libx264", gop: int = 6, h: int = 48, w: int = 64) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.gop_size = gop
        for i in range(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(_frame(i, h, w), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_natural_sort_and_names(tmp_path: Path) -> None:
    _write_folder(tmp_path, ["10.jpg", "2.JPG", "1.png", "frame_3.bmp"])
    (tmp_path / "notes.txt").write_text("not a frame")
    (tmp_path / "._2.jpg").write_bytes(b"macOS resource fork")
    frames = FolderFrames(tmp_path)
    assert frames.names == ["1", "2", "10", "frame_3"]
    assert len(frames) == 4 and frames.size == (24, 32) and frames.path == tmp_path
    assert sorted(["img10.jpg", "img2.jpg", "img1.jpg"], key=natural_key) == ["img1.jpg", "img2.jpg", "img10.jpg"]


def test_frames_are_rgb_uint8_and_read_only(tmp_path: Path) -> None:
    _write_folder(tmp_path, ["00000.png", "00001.png"])
    frames = open_frames(tmp_path)
    img = frames[1]
    assert img.dtype == np.uint8 and img.shape == (24, 32, 3)
    assert np.array_equal(img, _frame(1))
    assert np.array_equal(frames[-1], img)
    with pytest.raises(ValueError):
        img[0, 0, 0] = 1
    with pytest.raises(IndexError):
        frames[2]


def test_other_image_modes_become_rgb8(tmp_path: Path) -> None:
    grey16 = (np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 80)
    Image.fromarray(grey16).save(tmp_path / "0.png")
    Image.fromarray(np.full((24, 32), 77, np.uint8)).save(tmp_path / "1.png")
    Image.fromarray(np.full((24, 32, 4), 150, np.uint8)).save(tmp_path / "2.png")
    ramp = np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32)  # QA pass 12: a 0..1 float TIFF was black
    Image.fromarray(ramp, mode="F").save(tmp_path / "3.tif")
    Image.fromarray(ramp * 200, mode="F").save(tmp_path / "4.tif")  # floats on the 0..255 scale stay there
    frames = FolderFrames(tmp_path)
    assert np.array_equal(frames[0][..., 0], np.rint(grey16 / 257).astype(np.uint8))
    assert (frames[1] == 77).all() and frames[1].shape == (24, 32, 3)
    assert (frames[2] == 150).all() and frames[2].shape == (24, 32, 3)
    assert np.array_equal(frames[3][..., 2], np.rint(ramp * 255).astype(np.uint8))
    assert np.array_equal(frames[4][..., 1], np.rint(ramp * 200).astype(np.uint8))


def test_cache_is_bounded_and_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_folder(tmp_path, [f"{i:05d}.jpg" for i in range(10)])
    frames = FolderFrames(tmp_path, cache_size=3)
    decoded: list[int] = []
    original = FolderFrames._decode
    monkeypatch.setattr(FolderFrames, "_decode", lambda self, i: decoded.append(i) or original(self, i))
    assert decoded == []  # nothing is decoded on open
    for i in range(10):
        frames[i]
    frames[9], frames[8], frames[7]  # the three most recent: cached
    assert decoded == list(range(10))
    frames[0]  # evicted long ago
    assert decoded == list(range(10)) + [0]
    assert len(frames._cache) == 3


def test_corrupt_and_truncated_images_name_the_file(tmp_path: Path) -> None:
    _write_folder(tmp_path, ["00000.jpg", "00001.jpg", "00002.jpg"])
    data = (tmp_path / "00001.jpg").read_bytes()
    (tmp_path / "00001.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "00002.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    frames = FolderFrames(tmp_path)
    frames[0]
    with pytest.raises(InputError, match="00001.jpg"):
        frames[1]
    with pytest.raises(InputError, match="00002.jpg"):
        frames[2]


def test_a_frame_linked_to_a_missing_file_is_named_not_left_out(tmp_path: Path) -> None:
    """QA pass 25: a dangling link among the frames was left out without a word, so every later frame took the
    number (and the mask) of the one before it."""
    _write_folder(tmp_path, ["00000.jpg", "00001.jpg", "00003.jpg"])
    (tmp_path / "00002.jpg").symlink_to("/mnt/offline/00002.jpg")
    with pytest.raises(InputError, match=r"frame .*00002.jpg links to /mnt/offline/00002.jpg, which is not there"):
        open_frames(tmp_path)
    (tmp_path / "00002.jpg").unlink()
    (tmp_path / "00002.jpg").symlink_to(tmp_path / "00001.jpg")  # a link that works is a frame like any other
    assert open_frames(tmp_path).names == ["00000", "00001", "00002", "00003"]


def test_frame_of_another_size_names_the_file(tmp_path: Path) -> None:
    _write_folder(tmp_path, ["00000.jpg"])
    _write_folder(tmp_path / "x", ["00001.jpg"], h=30)
    (tmp_path / "x" / "00001.jpg").rename(tmp_path / "00001.jpg")
    frames = FolderFrames(tmp_path)
    with pytest.raises(InputError, match=r"00001\.jpg is 32x30, the first frame is 32x24"):
        frames[1]


def test_a_frame_turned_only_by_its_exif_tag_is_told_so(tmp_path: Path) -> None:
    """QA pass 101: "resize it to 32x24" for a frame whose pixels are 32x24 but whose EXIF tag turns it."""
    _write_folder(tmp_path, ["00000.jpg", "00001.jpg"])
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_frame(2, 24, 32)).save(tmp_path / "00002.jpg", exif=exif)
    with pytest.raises(InputError, match=r"00002\.jpg is turned upright to 24x32 by its EXIF orientation tag.*"
                                         r"save it again without the tag"):
        FolderFrames(tmp_path).check_sizes()
    _write_folder(tmp_path / "x", ["00003.jpg"], h=30)
    (tmp_path / "x" / "00003.jpg").rename(tmp_path / "00002.jpg")
    with pytest.raises(InputError, match=r"00002\.jpg is 32x30, the first frame is 32x24.*resize it"):
        FolderFrames(tmp_path).check_sizes()


def test_a_videos_display_matrix_is_read_once(tmp_path: Path, monkeypatch) -> None:
    """QA pass 105: reading each frame's side data kept every decoded frame's buffers alive in PyAV 18 (the
    process grew 500 MB a pass over 150 1080p frames, to 4 GB on a 4K video); the matrix is the video's."""
    from stm_core.io import frames as frames_module

    _write_video(tmp_path / "clip.mp4", 12)
    reads = []
    original = frames_module._orientation
    monkeypatch.setattr(frames_module, "_orientation", lambda frame: reads.append(1) or original(frame))
    video = open_frames(tmp_path / "clip.mp4")
    for i in (*range(12), 3, 0, 11):
        assert video[i].shape == (48, 64, 3)
    assert len(reads) == 1


def test_empty_missing_and_unknown_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no images"):
        open_frames(tmp_path)
    with pytest.raises(InputError, match="not found"):
        open_frames(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="neither a folder of images nor a video"):
        open_frames(tmp_path / "notes.txt")
    (tmp_path / "fake.mp4").write_text("this is not a video at all")
    with pytest.raises(InputError, match="fake.mp4"):
        open_frames(tmp_path / "fake.mp4")


def test_duplicate_stems_are_rejected(tmp_path: Path) -> None:
    _write_folder(tmp_path, ["00000.jpg", "00000.png"])
    with pytest.raises(InputError, match="share one mask file name: rename one, or move it out of the folder"):
        FolderFrames(tmp_path)


@pytest.mark.parametrize("suffix, codec", [("mp4", "libx264"), ("mkv", "libx264"), ("avi", "mpeg4")])
def test_video_count_and_random_access(tmp_path: Path, suffix: str, codec: str) -> None:
    path = tmp_path / f"clip.{suffix}"
    _write_video(path, 23, codec)
    video = open_frames(path)
    assert isinstance(video, VideoFrames)
    assert len(video) == 23 and video.size == (48, 64)
    assert video.fps is not None and abs(video.fps - 25) < 0.01  # the export's overlay video keeps the rate
    assert video.names[:2] == ["00000", "00001"] and video.names[-1] == "00022"
    sequential = [video[i].copy() for i in range(len(video))]
    assert len({f.tobytes() for f in sequential}) == 23  # every frame distinct, none repeated or skipped
    assert abs(int(sequential[5][..., 0].mean()) - 35) <= 3  # lossy codec, but the right frame

    shuffled = VideoFrames(path, cache_size=1)
    order = list(range(23)) * 2
    random.Random(0).shuffle(order)
    for i in order + list(reversed(range(23))):
        assert np.array_equal(shuffled[i], sequential[i]), i


def test_video_reads_from_two_threads(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, 20)
    expected = [f.copy() for f in VideoFrames(path)]
    video = VideoFrames(path, cache_size=2)
    errors: list[int] = []

    def reader(order: list[int]) -> None:
        for i in order:
            if not np.array_equal(video[i], expected[i]):
                errors.append(i)

    threads = [threading.Thread(target=reader, args=(list(range(20)) * 3,)),
               threading.Thread(target=reader, args=(list(reversed(range(20))) * 3,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_video_reopens_after_close(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, 8)
    with VideoFrames(path) as video:
        first = video[3].copy()
    assert np.array_equal(video[3], first)
    video.close()


def test_shared_judo_folder() -> None:
    folder = require_shared("data", "cutie-examples", "images", "judo")
    frames = open_frames(folder)
    assert len(frames) == 16 and frames.size == (480, 854)
    assert frames.names[0] == "00000" and frames[15].shape == (480, 854, 3)


def _counting_decoder(monkeypatch: pytest.MonkeyPatch, main_thread_only: bool = False) -> list[int]:
    """Count the frames every decoder of every VideoFrames produces from now on (for the main thread only)."""
    decoded = [0]
    original = VideoFrames._decoded

    def counted(self: VideoFrames, *args: object) -> Iterator:
        for frame in original(self, *args):
            decoded[0] += not main_thread_only or threading.current_thread() is threading.main_thread()
            yield frame
    monkeypatch.setattr(VideoFrames, "_decoded", counted)
    return decoded


def test_reading_backward_through_a_long_gop_decodes_each_stretch_once(tmp_path: Path, monkeypatch) -> None:
    """A backward run through a 250-frame GOP decoded from the keyframe up to every frame it read: 4 s a frame at
    1080p. The frames a seek decodes on the way are cached, half the cache at a time."""
    path = tmp_path / "clip.mp4"
    _write_video(path, 48, gop=48)
    expected = [f.copy() for f in VideoFrames(path)]
    video = VideoFrames(path, cache_size=16)
    assert video._keys == [0]
    decoded = _counting_decoder(monkeypatch)
    for i in reversed(range(48)):
        assert np.array_equal(video[i], expected[i]), i
    assert decoded[0] <= 250  # a seek per 8 frames (48 + 47 + 38 + ... at most); read alone, 48 * 49 / 2 = 1,176


def test_two_readers_keep_their_places_in_a_video(tmp_path: Path, monkeypatch) -> None:
    """A run reading on while the annotator looks at other frames, behind it or ahead of it: with one decoder,
    every read of the run after the annotator's made it seek back and decode the GOP up to its frame again."""
    path = tmp_path / "clip.mp4"
    _write_video(path, 60, gop=60)
    expected = [f.copy() for f in VideoFrames(path)]
    video = VideoFrames(path, cache_size=1)
    decoded = _counting_decoder(monkeypatch, main_thread_only=True)

    def look(i: int) -> None:
        assert np.array_equal(video[i], expected[i]), i

    for i in range(20, 45):
        look(i)  # the run
        annotator = threading.Thread(target=look, args=(i - 20 if i % 2 else i + 15,))
        annotator.start()
        annotator.join()
    assert decoded[0] <= 50  # 25 for its 25 frames; it sought and decoded up to 45 frames a read, 800 in all


def test_the_cache_of_large_frames_is_bounded_in_bytes() -> None:
    """64 frames of a 4K video were 1.6 GB of cache; small frames keep 64, explicit smaller sizes stay."""
    from stm_core.io.frames import CACHE_BYTES, FrameSource

    def cache(size: tuple[int, int], frames: int) -> int:
        return FrameSource(Path("video"), ["00000"], size, frames).cache_size

    assert cache((480, 854), 64) == 64 and cache((1080, 1920), 64) == 64
    assert 8 <= cache((2160, 3840), 64) < 64 and cache((2160, 3840), 64) * 2160 * 3840 * 3 <= CACHE_BYTES
    assert cache((2160, 3840), 2) == 2 and cache((8000, 8000), 64) == 8
