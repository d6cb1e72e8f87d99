"""Phrases the window's notes and questions share."""

from __future__ import annotations

from collections.abc import Iterable


def frame_numbers(frames: Iterable[int], most: int = 10) -> str:
    """Frames (indices) as the user counts them, from 1: '3, 7, 12', the first `most` of them, then '…'."""
    frames = list(frames)
    return ", ".join(str(i + 1) for i in frames[:most]) + (" …" if len(frames) > most else "")
