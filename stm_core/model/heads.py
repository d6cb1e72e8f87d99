"""Key/value projections and the refinement decoder, with the official STM parameter names."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KeyValue(nn.Module):
    """3x3 projections of res4 into a matching key and a value (official `KV_M_r4` / `KV_Q_r4`)."""

    def __init__(self, in_dim: int, key_dim: int, value_dim: int) -> None:
        super().__init__()
        self.Key = nn.Conv2d(in_dim, key_dim, 3, padding=1)
        self.Value = nn.Conv2d(in_dim, value_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.Key(x), self.Value(x)


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv2(relu(conv1(relu(x))))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.relu(x))
        return x + self.conv2(F.relu(r))


class Refine(nn.Module):
    """Fuses a skip feature with the upsampled coarser decoder map (x2, bilinear)."""

    def __init__(self, skip_dim: int, dim: int) -> None:
        super().__init__()
        self.convFS = nn.Conv2d(skip_dim, dim, 3, padding=1)
        self.ResFS = ResBlock(dim)
        self.ResMM = ResBlock(dim)

    def skip(self, skip: torch.Tensor) -> torch.Tensor:
        """The skip branch depends on the frame only, so it runs once per frame, not once per object."""
        return self.ResFS(self.convFS(skip))

    def fuse(self, s: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return self.ResMM(s + F.interpolate(coarse, size=s.shape[-2:], mode="bilinear", align_corners=False))


class Decoder(nn.Module):
    """Read-out [memory value ; query value] -> res3 and res2 refinements -> 2 logits (bg, fg) per object."""

    def __init__(self, in_dim: int, r3_dim: int, r2_dim: int, dim: int) -> None:
        super().__init__()
        self.convFM = nn.Conv2d(in_dim, dim, 3, padding=1)
        self.ResMM = ResBlock(dim)
        self.RF3 = Refine(r3_dim, dim)
        self.RF2 = Refine(r2_dim, dim)
        self.pred2 = nn.Conv2d(dim, 2, 3, padding=1)

    def skips(self, r3: torch.Tensor, r2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame skip branches of both refinement modules (cacheable with the query features)."""
        return self.RF3.skip(r3), self.RF2.skip(r2)

    def forward(self, readout: torch.Tensor, s3: torch.Tensor, s2: torch.Tensor,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """readout [N,...] per object row; s3, s2 [B,...] per-frame skips (`skips`); rows [N] row -> frame
        (None: B == 1). Returns logits at stride 4 [N,2,H/4,W/4]; the caller upsamples them.
        """
        n = readout.shape[0]
        if rows is not None:
            s3, s2 = s3.index_select(0, rows), s2.index_select(0, rows)
        elif s3.shape[0] != n:
            s3, s2 = s3.expand(n, -1, -1, -1), s2.expand(n, -1, -1, -1)
        m4 = self.ResMM(self.convFM(readout))
        m3 = self.RF3.fuse(s3, m4)
        m2 = self.RF2.fuse(s2, m3)
        return self.pred2(F.relu(m2))
