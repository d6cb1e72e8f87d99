"""Memory and query encoders: ResNet stems and stages up to res4 (stride 16), named as in the official STM.

Parameter names match the official checkpoint (`conv1`, `bn1`, `res2..res4`, `conv1_m`, `conv1_o`, buffers
`mean`/`std`) so `STM_weights.pth` loads unchanged into the `stm-r50` configuration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from .config import StmConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stage(block: type[nn.Module], inplanes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    """One ResNet stage exactly as torchvision builds it (so block internals keep torchvision's names)."""
    expansion = block.expansion  # type: ignore[attr-defined]
    downsample = None
    if stride != 1 or inplanes != planes * expansion:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * expansion, 1, stride, bias=False),
                                   nn.BatchNorm2d(planes * expansion))
    layers = [block(inplanes, planes, stride, downsample)]
    layers += [block(planes * expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class _ResNetTrunk(nn.Module):
    """Stem + res2..res4 of a ResNet; subclasses decide which extra input channels the stem takes."""

    def __init__(self, cfg: StmConfig) -> None:
        super().__init__()
        block = Bottleneck if cfg.block == "bottleneck" else BasicBlock
        self.conv1 = nn.Conv2d(3, cfg.stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        c2, c3, _ = cfg.channels
        self.res2 = _stage(block, cfg.stem, cfg.widths[0], cfg.layers[0], 1)
        self.res3 = _stage(block, c2, cfg.widths[1], cfg.layers[1], 2)
        self.res4 = _stage(block, c3, cfg.widths[2], cfg.layers[2], 2)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, frame: torch.Tensor) -> torch.Tensor:
        """ImageNet normalisation of a [0,1] RGB frame, applied after padding as the official code does."""
        return (frame - self.mean.to(frame.dtype)) / self.std.to(frame.dtype)

    def _stages(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(x)))
        r2 = self.res2(x)
        r3 = self.res3(r2)
        r4 = self.res4(r3)
        return r4, r3, r2


class MemoryEncoder(_ResNetTrunk):
    """Encodes (frame, object mask, other-objects map) into res4 features, one batch element per object."""

    def __init__(self, cfg: StmConfig) -> None:
        super().__init__(cfg)
        self.conv1_m = nn.Conv2d(1, cfg.stem, 7, 2, 3, bias=False)
        self.conv1_o = nn.Conv2d(1, cfg.stem, 7, 2, 3, bias=False)

    def forward(self, frame: torch.Tensor, mask: torch.Tensor, other: torch.Tensor,
                rows: torch.Tensor | None = None) -> torch.Tensor:
        """frame [B,3,H,W] in [0,1]; mask, other [N,1,H,W] soft probabilities of N object rows; rows [N] row ->
        frame (None: every row belongs to frame 0 of B == 1 or row i to frame i). -> r4 [N,C4,H/16,W/16].

        The frame's stem convolution is the same for every object of a frame, so it runs once per frame.
        """
        x = self.conv1(self.normalise(frame))
        if rows is not None:
            x = x.index_select(0, rows)
        elif x.shape[0] != mask.shape[0]:
            x = x.expand(mask.shape[0], -1, -1, -1)
        # conv1_m(mask) + conv1_o(other) as one convolution of both maps: a convolution of one input channel
        # leaves most of the CPU's vector lanes idle, and this one runs at full resolution for every object
        maps = torch.cat([mask, other], dim=1)
        weight = torch.cat([self.conv1_m.weight, self.conv1_o.weight], dim=1)
        return self._stages(x + F.conv2d(maps, weight, stride=2, padding=3))[0]


class QueryEncoder(_ResNetTrunk):
    """Encodes the frame alone into res4 (for matching) plus res3/res2 skips (for the decoder)."""

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """frame [B,3,H,W] in [0,1] -> (r4, r3, r2) at strides 16, 8, 4."""
        return self._stages(self.conv1(self.normalise(frame)))
