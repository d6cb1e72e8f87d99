"""Inference-only rewrites: every BatchNorm folded into the convolution before it; weights stored in the
precision autocast computes in.

In eval mode a BatchNorm is a fixed per-channel affine map, so it can be merged into the preceding
convolution's weights and bias. The network computes the same function with one pass over each feature map
fewer per convolution (BatchNorm was about 8% of a 480p frame on the CPU). Training needs the separate
layers, so the engine folds a copy (or an adapted copy it owns) and keeps the loaded network as it is.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .encoders import MemoryEncoder, _ResNetTrunk
from .stm import STM

_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def _fold_blocks(stage: nn.Sequential) -> None:
    for block in stage:
        for conv_name, bn_name in _PAIRS:
            if hasattr(block, bn_name):
                setattr(block, conv_name, fuse_conv_bn_eval(getattr(block, conv_name), getattr(block, bn_name)))
                setattr(block, bn_name, nn.Identity())
        if block.downsample is not None:
            block.downsample = nn.Sequential(fuse_conv_bn_eval(block.downsample[0], block.downsample[1]))


@torch.no_grad()
def _fold_trunk(trunk: _ResNetTrunk) -> None:
    if isinstance(trunk, MemoryEncoder):
        # bn1 normalises conv1(frame) + conv1_m(mask) + conv1_o(other): the mask and other-object convolutions
        # take the same per-channel scale; the shift goes into conv1's bias once.
        scale = trunk.bn1.weight / torch.sqrt(trunk.bn1.running_var + trunk.bn1.eps)
        for conv in (trunk.conv1_m, trunk.conv1_o):
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
    trunk.conv1 = fuse_conv_bn_eval(trunk.conv1, trunk.bn1)
    trunk.bn1 = nn.Identity()
    for stage in (trunk.res2, trunk.res3, trunk.res4):
        _fold_blocks(stage)


def fold_batchnorm(model: STM) -> STM:
    """Fold the BatchNorms of both encoders into their convolutions, in place; `model` must be in eval mode
    and is inference-only afterwards (it can no longer be trained or saved in the checkpoint layout)."""
    if model.training:
        raise ValueError("fold BatchNorm only into a network in eval mode")
    _fold_trunk(model.Encoder_M)
    _fold_trunk(model.Encoder_Q)
    return model


@torch.no_grad()
def store_weights_in(model: STM, dtype: torch.dtype) -> STM:
    """Store the convolutions' weights and biases in `dtype`, in place, for a network run under autocast to
    `dtype`: autocast casts an fp32 weight at every call (about 120 casts a frame), and casts a weight already
    in `dtype` not at all, so the network computes exactly the same. Buffers (the input normalisation's mean
    and std) stay fp32, as autocast leaves them."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(dtype)
    return model
