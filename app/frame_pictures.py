"""The current frame's picture, decoded on a thread of its own when reading it would hold up the window.

A jump far into a long-GOP video decodes up to a whole GOP, which froze the window 1-4 s at 1080p (QA pass 31),
and one 4K frame takes a fraction of a second; stepping on through a smaller video decodes one frame, at once,
on the GUI thread.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from stm_core.session import AnnotationSession

from .workers import SerialJobs

_DECODE_AT_ONCE = 4
"""Frames a picture may take to decode on the GUI thread (stepping on through a video takes one); a costlier
one is decoded on a thread of its own."""
_BIG_PICTURE = 4_000_000
"""Pixels from which even one frame's decode goes to that thread (QA pass 105: a 4K PNG took 0.2-0.6 s on the GUI
thread, and held arrow keys went on stepping for 12 s after they were let go)."""


class FramePictures(QObject):
    """Decodes the latest frame asked for off the GUI thread if it is costly; `ready(frame)` says it is there."""

    ready = Signal(int)
    _decoded = Signal(object, int, object)  # (session, frame, RGB or the exception), from the decoder thread

    def __init__(self) -> None:
        super().__init__()
        self._picture: tuple[AnnotationSession, int, np.ndarray | Exception] | None = None
        self._pending: tuple[AnnotationSession, int] | None = None
        self._decoder = SerialJobs(lambda _key, _exc: None, "frame-decoder")  # its jobs catch their errors
        self._decoded.connect(self._on_decoded)

    def fetch(self, session: AnnotationSession | None, frame: int) -> None:
        """The frame shown is now `frame` of `session`: decode it off the GUI thread if that takes long."""
        self._pending = None
        if session is None:
            return
        cost, (h, w) = session.frame_decode_cost(frame), session.frame_size
        if cost == 0 or (cost <= _DECODE_AT_ONCE and h * w < _BIG_PICTURE):
            return
        self._pending = (session, frame)

        def decode() -> None:
            try:
                picture: np.ndarray | Exception = session.frame(frame)
            except Exception as exc:  # raised again by `picture()` in the GUI thread, which reports it
                picture = exc
            self._decoded.emit(session, frame, picture)
        self._decoder.submit("frame", decode)

    def pending(self, session: AnnotationSession | None, frame: int) -> bool:
        """Whether this frame's picture is being decoded off the GUI thread (`ready` follows)."""
        return self._pending is not None and self._pending == (session, frame)

    def picture(self, session: AnnotationSession, frame: int) -> np.ndarray:
        """The frame's RGB pixels: the one decoded off the thread if it is this frame's, else decoded now."""
        if self._picture is not None and self._picture[:2] == (session, frame):
            if isinstance(self._picture[2], Exception):
                raise self._picture[2]
            return self._picture[2]
        return session.frame(frame)

    def forget(self) -> None:
        """Another video is opened: the picture held is not one of its frames."""
        self._picture = None

    def close(self) -> None:
        """End the decoder thread (the window closes), after the frame it decodes."""
        self._decoder.close()

    def _on_decoded(self, session: AnnotationSession, frame: int, picture: np.ndarray | Exception) -> None:
        if self._pending == (session, frame):
            self._pending = None
            self._picture = (session, frame, picture)
            self.ready.emit(frame)
