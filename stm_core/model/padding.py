"""Pad frames to a multiple of 16 (the encoders' stride) the way the official STM does, and undo it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

Pads = tuple[int, int, int, int]  # left, right, top, bottom


def pad_amounts(height: int, width: int, multiple: int = 16) -> Pads:
    """Centred padding, the odd pixel at the bottom/right: 480x854 -> (5, 5, 0, 0)."""
    dh = (-height) % multiple
    dw = (-width) % multiple
    return dw // 2, dw - dw // 2, dh // 2, dh - dh // 2


def pad(x: torch.Tensor, pads: Pads) -> torch.Tensor:
    """Zero padding of the last two dims (zeros on the [0,1] image, as the official code)."""
    return F.pad(x, pads) if any(pads) else x


def unpad(x: torch.Tensor, pads: Pads) -> torch.Tensor:
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top:h - bottom, left:w - right]


def zero_border(x: torch.Tensor, pads: Pads) -> torch.Tensor:
    """`x` with its padding made zero: a propagated frame's soft mask is memorised as the official code does it,
    cut to the frame and padded again with zeros (QA pass 89: the network's own predictions there, up to 0.9999,
    were memorised, and about 300 pixels a frame differed from the official algorithm)."""
    return pad(unpad(x, pads), pads) if any(pads) else x
