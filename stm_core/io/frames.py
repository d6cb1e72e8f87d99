"""Frame sources: a folder of images or a video file, decoded on demand.

A long video must never sit in RAM, so frames are decoded when asked for and kept in a small LRU cache.
The GUI thread and the propagation worker read the same source at once, so the cache and the video decoder
are guarded by locks. Every problem with the input is an `InputError` whose message names the file.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import os
import re
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError

try:
    import av
except ImportError:  # image folders need no PyAV; a headless training machine may not have it
    av = None

DEFAULT_CACHE_FRAMES = 64
"""About 80 MB of 854x480 frames: enough for the propagation window and GUI scrubbing, small for any video."""
CACHE_BYTES = 512 * 2**20
"""What larger frames may take instead (64 frames of a 4K phone video were 1.6 GB), but never under 8 frames."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
_EXIF_ORIENTATION = 0x0112  # 5-8 turn the picture a quarter, so width and height swap
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                            ".3gp", ".wmv", ".flv", ".ogv", ".gif"})
"""What FFmpeg (PyAV) demuxes; others: rename or convert. A .gif file is a clip (an animated GIF); a .gif in a
frame folder is one picture."""

_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})


def _warn_if_animated(gif: Path | None) -> None:
    """A frame folder's GIFs are read as one picture each; say so where they are animated (the first one is
    checked: a folder's frames come from one source)."""
    if gif is None:
        return
    try:
        with Image.open(gif) as im:
            animated = getattr(im, "is_animated", False)
    except (OSError, UnidentifiedImageError):
        return  # said when that frame is read
    if animated:
        warnings.warn(f"{gif} is an animated GIF: in a frame folder only its first picture is read; open the GIF "
                      "file itself to read its pictures as the frames of a video")


def natural_key(name: str) -> tuple:
    """Sort key that orders digit runs by value, so '2.jpg' comes before '10.jpg'."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts), name


_SERIALS = itertools.count()


class FrameSource:
    """A sequence of RGB uint8 frames (H, W, 3) of one size, with the file stems used to name mask files.

    Subclasses implement `_decode` and `_describe`; this class adds index checks, the size check and a
    thread-safe LRU cache. Returned arrays are shared with the cache and therefore read-only.
    """

    def __init__(self, path: Path, names: list[str], size: tuple[int, int],
                 cache_size: int = DEFAULT_CACHE_FRAMES) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.path = path
        self.names = names
        self.size = size
        self.serial = next(_SERIALS)  # caches key on this, not id(): a freed source's id goes to the next one
        self.fps: float | None = None  # frames per second, where the source says (a video file)
        self.times: list[float] | None = None  # each frame's time in seconds from the first (a video file)
        self.cache_size = min(cache_size, max(8, CACHE_BYTES // (3 * size[0] * size[1] or 1)))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.names)

    def file_name(self, index: int) -> str:
        """The frame's file name, for outputs that refer to frames by file (COCO's `file_name`); a video's frames
        are named as extracted PNGs would be."""
        return f"{self.names[index]}.png"

    def check_sizes(self) -> None:
        """Raise InputError where a frame's size is not the first one's; a video's frames share its stream's."""

    def __getitem__(self, index: int) -> np.ndarray:
        i = operator.index(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {index} is outside 0..{n - 1}")
        with self._cache_lock:
            frame = self._cache.get(i)
            if frame is not None:
                self._cache.move_to_end(i)
                return frame
        # Decode outside the cache lock so a reader of a cached frame never waits for a slow decode.
        frame = self._decode(i)
        if frame.shape[:2] != self.size:
            raise InputError(_other_size(self._describe(i), frame.shape[:2], self.size))
        self._remember(i, frame)
        return frame

    def cached(self, index: int) -> np.ndarray | None:
        """Frame `index` if it is in the cache, else None at once: a viewer can show it without waiting on a
        decode."""
        with self._cache_lock:
            return self._cache.get(index)

    def decode_cost(self, index: int) -> int:
        """How many frames reading frame `index` would decode now (0: it is cached): a viewer reads a cheap
        one at once and leaves a costly one to a thread of its own."""
        return 0 if self.cached(index) is not None else 1

    def _remember(self, index: int, frame: np.ndarray) -> None:
        """Cache frame `index` as the most recently used (a frame of another size is left to fail when read)."""
        if frame.shape[:2] != self.size:
            return
        frame.setflags(write=False)
        with self._cache_lock:
            self._cache[index] = frame
            self._cache.move_to_end(index)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def close(self) -> None:
        """Release the cached frames (and, for a video, the open file)."""
        with self._cache_lock:
            self._cache.clear()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _decode(self, index: int) -> np.ndarray:
        """Decode frame `index` (in range) to an RGB uint8 array; raise `InputError` naming the file."""
        raise NotImplementedError

    def _describe(self, index: int) -> str:
        """How an error message names frame `index`."""
        raise NotImplementedError


def image_files(folder: Path, what: str) -> list[Path]:
    """The images of `folder` (by suffix), in natural order. Names starting with '.' are editor/OS leftovers
    (macOS '._x.jpg', our own atomic temp files); a link to a missing file is an error naming the `what` (QA
    pass 25: a frame left out without a word moved every later frame's number, and its mask)."""
    listed = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    broken = next((p for p in listed if p.is_symlink() and not p.exists()), None)
    if broken is not None:
        raise InputError(f"{what} {broken} links to {os.readlink(broken)}, which is not there: restore it or remove "
                         "the link")
    return sorted((p for p in listed if p.is_file()), key=lambda p: natural_key(p.name))


class FolderFrames(FrameSource):
    """The images of one folder (jpg, jpeg, png, bmp, webp, tif, gif), in natural order; names are the file
    stems. JPEGs turned by their EXIF orientation come upright, as every image viewer shows them."""

    def __init__(self, folder: str | Path, cache_size: int = DEFAULT_CACHE_FRAMES) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"frame folder not found: {folder}")
        files = image_files(folder, "frame")
        if not files:
            raise InputError(f"no images (jpg, png, bmp, webp, tif, gif) in {folder}")
        stems: dict[str, Path] = {}
        for p in files:
            if p.stem in stems:
                raise InputError(f"{stems[p.stem].name} and {p.name} in {folder} would share one mask file name: "
                                 "rename one, or move it out of the folder if it is not a frame (a mask saved "
                                 "beside the frames, say)")
            stems[p.stem] = p
        try:
            with Image.open(files[0]) as im:
                width, height = im.size
                if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):  # turned a quarter: as decoded
                    im.load()  # a TIFF turns itself here (QA pass 46: its size was swapped twice)
                    width, height = upright(im).size
        except (OSError, UnidentifiedImageError) as e:
            raise InputError.unreadable("image", files[0], e) from None
        _warn_if_animated(next((p for p in files if p.suffix.lower() == ".gif"), None))
        self._files = files
        super().__init__(folder, [p.stem for p in files], (height, width), cache_size)

    def file_name(self, index: int) -> str:
        return self._files[index].name

    def check_sizes(self) -> None:
        """Raise InputError for the first image whose size is not the first one's, reading only headers (about
        0.15 ms an image): a run over the folder finds it before its work, not when it gets there (QA pass 69:
        after the adaptation and the frames before it)."""
        for path in self._files[1:]:
            try:
                with Image.open(path) as im:
                    size = im.size[::-1]
                    # a PNG's EXIF may follow its pixels: reading it would decode the image (headers only here)
                    exif = im.format != "PNG" or "exif" in im.info
                    turned = exif and im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
                    if turned:
                        size = size[::-1]
            except (OSError, UnidentifiedImageError) as e:
                raise InputError.unreadable("image", path, e) from None
            if size != self.size:
                raise InputError(_other_size(str(path), size, self.size, turned=turned))

    def _describe(self, index: int) -> str:
        return str(self._files[index])

    def _decode(self, index: int) -> np.ndarray:
        path = self._files[index]
        try:
            with Image.open(path) as im:
                im.load()  # raises on truncated data (Pillow's LOAD_TRUNCATED_IMAGES is off by default)
                return image_to_rgb(upright(im))
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise InputError.unreadable("image", path, e) from None


def _other_size(what: str, size: tuple[int, ...], first: tuple[int, int], turned: bool = False) -> str:
    """Why a frame cannot join the others, and what to do; `turned`: only its EXIF orientation tag turns it
    upright to this size (QA pass 101: "resize it" would have distorted a frame whose pixels were right)."""
    if turned and tuple(size[::-1]) == tuple(first):
        return f"{what} is turned upright to {size[1]}x{size[0]} by its EXIF orientation tag, the first frame is " \
               f"{first[1]}x{first[0]}: the frames of a video share one size; save it again without the tag (its " \
               "pixels are the others' size) or take it out of the folder"
    return f"{what} is {size[1]}x{size[0]}, the first frame is {first[1]}x{first[0]}: the frames of a video share " \
           f"one size; resize it to {first[1]}x{first[0]} or take it out of the folder"


def upright(im: Image.Image) -> Image.Image:
    """A loaded image turned as its EXIF orientation says (a phone's portrait photo stored sideways), as every
    image viewer shows it; itself where it says nothing."""
    return ImageOps.exif_transpose(im) if im.getexif().get(_EXIF_ORIENTATION, 1) != 1 else im


def image_to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow image as RGB uint8; 16-bit grey is scaled, and floating-point grey in 0..1 (scientific TIFFs)
    too: Pillow's own conversion would clip the one and turn the other black (QA pass 12)."""
    if im.mode in _SIXTEEN_BIT_MODES or im.mode == "F":
        grey = np.nan_to_num(np.asarray(im).astype(np.float32))
        if im.mode != "F":
            grey /= 257.0
        elif grey.max(initial=0.0) <= 1.0:
            grey *= 255.0
        return np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


_CURSORS = 2
"""Decoders kept open on one video: a propagation run reads on in order while the annotator jumps about; with one
decoder every jump made the run seek back and decode up to a whole GOP again (seconds at 1080p)."""


def _stream(container: "av.container.InputContainer", index: int) -> "av.video.stream.VideoStream":
    """The container's stream of that index (`VideoFrames._main_stream`)."""
    return next(s for s in container.streams.video if s.index == index)


class _Cursor:
    """One open decoder of the video file and where it stands: reading on from there is cheap, anywhere else
    means seeking to a keyframe and decoding up to the frame."""

    def __init__(self) -> None:
        self.container: "av.container.InputContainer | None" = None
        self.frames: Iterator["av.VideoFrame"] | None = None
        self.pos: int | None = None  # index of the frame the decoder returned last
        self.low: int | None = None  # the lowest index its last read gave: a read just below it walks backward
        self.busy = False
        self.used = 0  # when it was last given back, for choosing the least recently used one
        self.reader: int | None = None  # the thread that read with it last
        self.in_order = 0  # how many reads in a row were each the frame after the one before

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
        self.container = self.frames = self.pos = self.low = None
        self.in_order = 0


class VideoFrames(FrameSource):
    """The frames of a video file, decoded with PyAV; names are zero-padded frame indices.

    Container headers often state a wrong frame count, so the packets are demuxed once on open (no decoding)
    to index every frame by its presentation timestamp. Random access seeks to the keyframe before the target
    and decodes forward; sequential access keeps the decoder where it is and never reseeks. Two decoders stay
    open, so two readers (a run and the annotator) each keep their place; reading backward keeps the frames a
    seek decoded on its way to the target (a backward run through a 250-frame GOP decoded up to 250 frames for
    each one: 4 s per 1080p frame).
    """

    def __init__(self, path: str | Path, cache_size: int = DEFAULT_CACHE_FRAMES) -> None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"video file not found: {path}")
        if av is None:
            raise InputError(f"cannot read video {path}: PyAV is not installed (pip install av)")
        self._cursors = [_Cursor() for _ in range(_CURSORS)]
        self._cursor_free = threading.Condition()
        self._uses = itertools.count(1)
        self._span = 0  # frames before the target a backward seek keeps: half the cache (once it is made)
        self._video_path = path
        self._orientation: tuple[int, int, int, int] | None = None  # see `_upright`
        self._orientation_read = False
        first_reader = self._cursors[0]
        try:
            self._stream_index = self._main_stream(path)
            pts, key_pts, short, self._partial_pts, said = self._index(path, self._stream_index)
            cut = int(self._partial_pts is not None)
            if not pts:
                raise InputError(f"{path} has no video frames")
            self._use_frames(pts, key_pts)
            self._open(first_reader)
            first = self._read(first_reader, 0)
            if short:  # QA pass 12: a cut MP4 indexed frames whose data was cut off; they failed later
                usable = self._decodable_frames(first_reader)
                if said and usable < len(pts):  # the header's count said already (QA pass 101: "only 7 could
                    # be read", then "the last 1 of 8 frames cannot be decoded")
                    warnings.warn(f"{path}: of the {len(pts)} frames read, the last {len(pts) - usable} cannot be "
                                  "decoded either and are left out")
                elif not said and (usable < len(pts) or cut):
                    warnings.warn(f"{path}: its last {len(pts) + cut - usable} of {len(pts) + cut} frames cannot "
                                  "be decoded and are left out; the file may be cut short (an interrupted download "
                                  "or recording)")
                    pts = pts[:usable]
                    self._use_frames(pts, [self._pts[k] for k in self._keys])
        except av.FFmpegError as e:
            first_reader.close()
            raise InputError(f"cannot read video {path}: {_reason(e)} (not a video, or one damaged or cut short)"
                             ) from None
        except InputError:
            first_reader.close()
            raise
        digits = max(5, len(str(len(pts) - 1)))
        super().__init__(path, [f"{i:0{digits}d}" for i in range(len(pts))], first.shape[:2], cache_size)
        self._span = self.cache_size // 2
        assert first_reader.container is not None
        stream = _stream(first_reader.container, self._stream_index)
        if (aspect := stream.sample_aspect_ratio) and aspect != 1:  # QA pass 46: shown squeezed without a word
            warnings.warn(f"{path} has pixels {float(aspect):.3g} times as wide as high (players show it "
                          f"{round(first.shape[1] * aspect)}x{first.shape[0]}): it is shown, annotated and exported "
                          f"at its stored size, {first.shape[1]}x{first.shape[0]}, as the masks must match it")
        rate = stream.average_rate
        self.fps = float(rate) if rate else None
        base = stream.time_base
        self.times = [float((p - pts[0]) * base) for p in pts] if base else None
        first.setflags(write=False)
        self._cache[0] = first

    def _use_frames(self, pts: list[int], key_pts: list[int]) -> None:
        """Index these frames (presentation timestamps, sorted) with these keyframes."""
        self._pts = pts
        self._index_of = {p: i for i, p in enumerate(pts)}
        self._keys = sorted({self._index_of[p] for p in key_pts if p in self._index_of} | {0})

    def _decodable_frames(self, cursor: _Cursor) -> int:
        """How many frames decode, tried from the last keyframe on: the last packets of a cut file are often
        partial, indexed but not decodable (the caller holds no lock yet: the source is not shared)."""
        for index in range(self._keys[-1], len(self._pts)):
            try:
                self._read(cursor, index)
            except (av.FFmpegError, InputError):
                self._open(cursor)
                return index
        return len(self._pts)

    @staticmethod
    def _main_stream(path: Path) -> int:
        """The index of the video stream that is the video: where a file holds several (a cover picture, a
        preview, a second camera), the one of most frames, cover pictures last; a warning names the choice
        (QA pass 46: a cover picture before the clip opened as a 1-frame video)."""
        with av.open(str(path)) as container:  # the streams are read while it is open: they die with it
            videos = list(container.streams.video)
            if len(videos) < 2:
                return videos[0].index if videos else -1
            counts = dict.fromkeys((v.index for v in videos), 0)
            for packet in container.demux(*videos):
                if packet.size:
                    counts[packet.stream.index] += 1
            found = [(not v.disposition & av.stream.Disposition.attached_pic, counts[v.index], v.width * v.height,
                      -v.index, f"stream {v.index}: {counts[v.index]} frames at {v.width}x{v.height}")
                     for v in videos]
        chosen = max(found)
        warnings.warn(f"{path} holds {len(found)} video streams: read is stream {-chosen[3]}, the one of most "
                      f"frames ({'; '.join(f[4] for f in found)})")
        return -chosen[3]

    @staticmethod
    def _index(path: Path, stream_index: int) -> tuple[list[int], list[int], bool, int | None, bool]:
        """Timestamps of all frames in display order (sorted, or in decoding's output order where only decoding
        gives them) and of the keyframes, from one pass over packets;
        whether the file looks cut (the header promises more, or the last packet is partial: then the last
        frames are checked by decoding them); the timestamp of that partial packet, left out (or None); and
        whether a warning said how many frames the header promised and how many could be read."""
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path} has no video stream (a file of sound or data only, or a video cut "
                                 "short before its index, as an interrupted MP4 download is)")
            stream = _stream(container, stream_index)
            pts: list[int] = []
            key_pts: list[int] = []
            missing_pts = partial = False
            trimmed = 0
            ends_at = 0.0  # seconds: where the data of any stream ends (audio may run longer than the video)
            for packet in container.demux():
                if packet.pts is not None and packet.time_base is not None:
                    ends_at = max(ends_at, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                if packet.stream.index != stream.index or packet.size == 0:
                    continue
                if packet.is_discard:  # before a trimmed MP4's edit list starts: in the header's count
                    trimmed += 1
                    continue
                if packet.pts is None:
                    missing_pts = True
                    break
                pts.append(packet.pts)
                partial = packet.is_corrupt  # FFmpeg's mark on a packet the file ended inside of
                if packet.is_keyframe:
                    key_pts.append(packet.pts)
            # the file ends inside the last frame's data (a cut fragmented MP4 or AVI, whose headers promise
            # nothing): decoders fail on it or conceal it as garbage
            partial_pts = pts.pop() if partial and not missing_pts else None
            lost = None if missing_pts else VideoFrames._lost(container, stream, len(set(pts)), trimmed, ends_at)
            stated, length = stream.frames, (container.duration or 0) / av.time_base
            promised_more = stated > len(pts) if stated else ends_at < length - 0.1
            short = not missing_pts and (partial_pts is not None or promised_more)
            # AVI keeps no presentation times: its packets' are their decoding order, which B-frames reorder
            # (QA pass 19: 18 of 60 frames of an H.264 AVI could not be read)
            reordered = container.format.name == "avi" and VideoFrames._reorders(path, stream_index)
            missing_pts = missing_pts or reordered
        if missing_pts:  # some AVI/raw streams: only decoding gives timestamps (or their display order)
            with av.open(str(path)) as container:
                pts, key_pts = [], []
                stream = _stream(container, stream_index)
                stream.thread_type = "AUTO"  # a long video is decoded whole here
                for frame in container.decode(stream):
                    if frame.pts is None:
                        raise InputError(f"{path} has no frame timestamps; convert it to images or to mp4")
                    pts.append(frame.pts)
                    if frame.key_frame:
                        key_pts.append(frame.pts)
        if len(set(pts)) < len(pts):  # broken muxing: frames that share a timestamp cannot be told apart
            warnings.warn(f"{path}: {len(pts) - len(set(pts))} frames share a timestamp with another frame and "
                          "are skipped; convert the video to images to keep them")
        if lost:
            warnings.warn(f"{path}: {lost}; the file may be cut short (an interrupted download or recording) or "
                          "its header wrong")
        order = list(dict.fromkeys(pts)) if missing_pts else sorted(set(pts))  # decoders give display order
        return order, key_pts, short, partial_pts, lost is not None

    @staticmethod
    def _reorders(path: Path, stream_index: int, frames: int = 64) -> bool:
        """Whether the decoder may give frames in another order than their timestamps: it says the stream may
        reorder (B-frames), or it does so in the first `frames` frames (QA pass 20: B-frames from frame 90 on
        were missed by looking at the first 64 alone)."""
        with av.open(str(path)) as container:
            stream = _stream(container, stream_index)
            decoded = container.decode(stream)
            seen = [f.pts for f, _ in zip(decoded, range(1))]
            if stream.codec_context.has_b_frames:  # known from the first frame on
                return True
            seen += [f.pts for f, _ in zip(decoded, range(frames - 1))]
        return any(a is not None and b is not None and b < a for a, b in zip(seen, seen[1:]))

    @staticmethod
    def _lost(container: "av.container.InputContainer", stream: "av.video.stream.VideoStream", frames: int,
              trimmed: int, ends_at: float) -> str | None:
        """What the header says a file holds beyond what it does, or None.

        A cut file keeps the header written for the whole video: AVI and MP4 state a frame count, Matroska and
        WebM only a length, which is compared with where the data of any stream ends (so audio that runs longer
        than the video, or a variable frame rate, is not taken for a loss). The `trimmed` frames an MP4's edit list
        leaves out (a phone's trim without re-encoding) count as read (QA pass 33: "header gives 60 frames but
        only 50 could be read" on every opening)."""
        stated = stream.frames
        if stated:
            return f"its header gives {stated} frames but only {frames} could be read" \
                if frames + trimmed < 0.95 * stated - 1 else None
        if container.duration:  # `ends_at` is a time, not a span: timestamps starting late never read as a loss
            length = container.duration / av.time_base
            if ends_at < length - max(0.25, 0.01 * length):
                return f"its header gives a length of {length:.1f} s but its data ends at {ends_at:.1f} s " \
                       f"({frames} frames read)"
        return None

    def _open(self, cursor: _Cursor) -> None:
        cursor.close()
        cursor.container = av.open(str(self._video_path))
        stream = _stream(cursor.container, self._stream_index)
        stream.thread_type = "AUTO"
        cursor.frames = self._decoded(cursor.container, stream)

    def _decoded(self, container: "av.container.InputContainer",
                 stream: "av.video.stream.VideoStream") -> Iterator["av.VideoFrame"]:
        """The stream's frames from where the container is, without the partial packet a cut file ends in: fed
        to the decoder, it failed and took the frames still in the decoder's threads with it."""
        for packet in container.demux(stream):
            if packet.is_corrupt and packet.pts is not None and packet.pts == self._partial_pts:
                continue
            yield from packet.decode()

    def _describe(self, index: int) -> str:
        return f"frame {index} of {self._video_path}"

    def _decode(self, index: int) -> np.ndarray:
        cursor = self._take(index)
        try:
            return self._read(cursor, index)
        except av.FFmpegError as e:
            raise InputError(f"cannot decode {self._describe(index)}: {_reason(e)}") from None
        finally:
            with self._cursor_free:
                cursor.busy = False
                cursor.used = next(self._uses)
                self._cursor_free.notify()

    def _take(self, index: int) -> _Cursor:
        """The decoder to read frame `index` with, marked busy (waiting while every decoder is)."""
        with self._cursor_free:
            while not any(not c.busy for c in self._cursors):
                self._cursor_free.wait()
            cursor, _ = self._plan(index)
            cursor.busy = True
            cursor.reader = threading.get_ident()
            return cursor

    def decode_cost(self, index: int) -> int:
        if self.cached(index) is not None:
            return 0
        with self._cursor_free:
            return self._plan(index)[1]

    def _plan(self, index: int) -> tuple[_Cursor, int]:
        """The free decoder (or any, if all are busy) that reaches frame `index` soonest, and how many frames it
        decodes for it: one standing shortly before it, else one walking backward down to it, else the least
        recently used. Another thread's decoder reading frame after frame is left to it while another is
        free: taken, its reader would seek back, decoding more than this one read saves (the caller locks)."""
        key = self._keys[self._gop(index)]
        me = threading.get_ident()
        free = [c for c in self._cursors if not c.busy] or self._cursors
        free = [c for c in free if c.reader == me or not c.in_order] or free
        before = [c for c in free if c.pos is not None and key - 2 <= c.pos < index]
        if before:
            cursor = max(before, key=lambda c: c.pos or 0)
            return cursor, index - (cursor.pos or 0)
        walking_back = [c for c in free if self._walks_back(c, index)]
        return (walking_back or [min(free, key=lambda c: c.used)])[0], index - key + 1

    def _gop(self, index: int) -> int:
        """Which keyframe (its place in `_keys`) frame `index` is decoded from."""
        return bisect.bisect_right(self._keys, index) - 1

    def _walks_back(self, cursor: _Cursor, index: int) -> bool:
        return self._span > 0 and cursor.low is not None and index < cursor.low <= index + self._span

    def _read(self, cursor: _Cursor, index: int) -> np.ndarray:
        """Frame `index`, decoding forward when that is no slower than seeking, else seeking (the caller holds
        the cursor)."""
        if cursor.container is None:
            self._open(cursor)
        k = self._gop(index)
        key = self._keys[k]
        keep_from = index - self._span if self._walks_back(cursor, index) else index
        cursor.in_order = cursor.in_order + 1 if cursor.pos == index - 1 else 0
        if cursor.pos is not None and key - 2 <= cursor.pos < index:
            frame = self._decode_forward(cursor, index, index)
            if frame is not None:
                return frame
        # Seek to the keyframe before the target; if the demuxer lands after the target (seeking by DTS,
        # open GOPs), try the keyframe before that, and finally decode from the start of the file.
        for attempt in (k, k - 1):
            if attempt < 0:
                continue
            assert cursor.container is not None
            stream = _stream(cursor.container, self._stream_index)
            try:
                cursor.container.seek(self._pts[self._keys[attempt]], stream=stream, backward=True)
                cursor.frames = self._decoded(cursor.container, stream)
                cursor.pos = None
                frame = self._decode_forward(cursor, index, keep_from)
            except av.FFmpegError:  # a cut WebM without its index seeks wrong or not at all (QA pass 15)
                break
            if frame is not None:
                return frame
        self._open(cursor)
        frame = self._decode_forward(cursor, index, keep_from)
        if frame is None:
            raise InputError(f"cannot decode {self._describe(index)}: the video ends early or is damaged")
        return frame

    def _decode_forward(self, cursor: _Cursor, index: int, keep_from: int) -> np.ndarray | None:
        """Decode on until frame `index`, caching the frames from `keep_from` on that pass by; None if the
        decoder passes `index` or the stream ends first."""
        assert cursor.frames is not None
        low = index
        for frame in cursor.frames:
            i = self._index_of.get(frame.pts) if frame.pts is not None else None
            if i is None:
                continue
            cursor.pos = i
            if i == index:
                cursor.low = low
                return self._upright(frame)
            if i > index:
                return None
            if i >= keep_from:  # cached at once, not held till the target: within the cache's bound (QA pass 34)
                self._remember(i, self._upright(frame))
                low = min(low, i)
        cursor.pos = None  # the stream is exhausted: the next read must seek
        return None

    def _upright(self, frame: "av.VideoFrame") -> np.ndarray:
        """The frame as RGB, turned as the video's display matrix asks, read from its first decoded frame: each
        frame's side data read keeps that frame's buffers alive in PyAV 18 (QA pass 105: stepping through a 4K
        video took the process from 1 GB to 4 GB, 500 MB a pass over 150 1080p frames)."""
        if not self._orientation_read:
            self._orientation, self._orientation_read = _orientation(frame), True
        return _upright(frame, self._orientation)

    def close(self) -> None:
        """Close the video file (it reopens on the next read) and drop the cache."""
        with self._cursor_free:
            while any(c.busy for c in self._cursors):
                self._cursor_free.wait()
            for cursor in self._cursors:
                cursor.close()
        super().close()


def _orientation(frame: "av.VideoFrame") -> tuple[int, int, int, int] | None:
    """(clockwise turn, and the display matrix's a, c, d) of a frame, None where it has no display matrix."""
    matrix = next((np.frombuffer(bytes(data), "<i4") for data in frame.side_data
                   if data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX), None)
    if matrix is None:
        return None
    return -round(frame.rotation) % 360, int(matrix[0]), int(matrix[3]), int(matrix[4])  # as FFmpeg reads it


def _upright(frame: "av.VideoFrame", orientation: tuple[int, int, int, int] | None) -> np.ndarray:
    """The frame as RGB, turned (and mirrored) as its display matrix (`_orientation`) asks players to show it:
    phones store portrait video as landscape pictures plus a rotation, so without it masks would be painted and
    exported sideways. Follows FFmpeg's autorotation, flips included (QA pass 12: a mirrored video came out
    turned 180 degrees, since the rotation alone cannot tell a mirror from a half turn)."""
    rgb = frame.to_ndarray(format="rgb24")
    if orientation is None:
        return rgb
    theta, a, c, d = orientation
    if theta == 90:
        rgb = np.rot90(rgb, -1)
        rgb = rgb[::-1] if c > 0 else rgb
    elif theta == 270:
        rgb = np.rot90(rgb, 1)
        rgb = rgb[::-1] if c < 0 else rgb
    elif theta == 180:
        rgb = rgb[:, ::-1] if a < 0 else rgb
        rgb = rgb[::-1] if d < 0 else rgb
    elif d < 0:
        rgb = rgb[::-1]
    return np.ascontiguousarray(rgb)


def open_frames(path: str | Path, cache_size: int = DEFAULT_CACHE_FRAMES) -> FrameSource:
    """Open a folder of images or a video file as a `FrameSource`; anything else is an `InputError`."""
    path = Path(path)
    if path.is_dir():
        return FolderFrames(path, cache_size)
    if not path.exists():
        raise InputError(f"no video or frame folder at {path}: not found")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        if path.is_file() and path.stat().st_size == 0:  # QA pass 101: said as FFmpeg's "Invalid data"
            raise InputError(f"cannot read video {path}: the file is empty (0 bytes)")
        return VideoFrames(path, cache_size)
    raise InputError(f"{path} is neither a folder of images nor a video "
                     f"({', '.join(sorted(s.lstrip('.') for s in VIDEO_SUFFIXES))})")


def _reason(error: "av.FFmpegError") -> str:
    """FFmpeg's words for what went wrong, without the error number and path PyAV adds (QA pass 41: "[Errno
    1094995529] Invalid data found when processing input: '/path'" told a user nothing the number did)."""
    return error.strerror or str(error)
