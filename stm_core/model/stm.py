"""The STM network (Oh et al., ICCV 2019): memory/query encoders, key/value heads, memory read, decoder.

Objects are batched: N object instances (rows) may come from B frames (`sample_index` maps each row to its
frame), so training batches of clips with different object counts and multi-object inference share code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import StmConfig
from .encoders import MemoryEncoder, QueryEncoder
from .heads import Decoder, KeyValue
from .memory_read import memory_read


@dataclass
class QueryFeatures:
    """Query-encoder output of one or more frames: what a frame contributes to reading and decoding."""

    key: torch.Tensor    # [B,Ck,h,w]
    value: torch.Tensor  # [B,Cv,h,w]
    skip3: torch.Tensor  # [B,D,2h,2w] decoder skip branch of res3
    skip2: torch.Tensor  # [B,D,4h,4w] decoder skip branch of res2


def other_objects(probs: torch.Tensor, sample_index: torch.Tensor | None) -> torch.Tensor:
    """For each object row, clamp(sum of the other objects' probabilities of the same frame, 0, 1)."""
    if sample_index is None:
        total = probs.sum(0, keepdim=True)
    else:
        b = int(sample_index.max()) + 1
        total = torch.zeros((b,) + probs.shape[1:], dtype=probs.dtype, device=probs.device)
        total = total.index_add(0, sample_index, probs).index_select(0, sample_index)
    return (total - probs).clamp(0, 1)


class STM(nn.Module):
    """Space-Time Memory network; attribute names follow the official implementation."""

    def __init__(self, cfg: StmConfig) -> None:
        super().__init__()
        self.cfg = cfg
        _, c3, c4 = cfg.channels
        c2 = cfg.channels[0]
        self.Encoder_M = MemoryEncoder(cfg)
        self.Encoder_Q = QueryEncoder(cfg)
        self.KV_M_r4 = KeyValue(c4, cfg.key_dim, cfg.value_dim)
        self.KV_Q_r4 = KeyValue(c4, cfg.key_dim, cfg.value_dim)
        self.Decoder = Decoder(2 * cfg.value_dim, c3, c2, cfg.decoder_dim)
        self.use_sdpa = False
        self.top_k: int | None = None
        self.recommended_height: int | None = None  # working height the weights were validated at
        self.recommended_adapt_height: int | None = None  # the same, with test-time adaptation

    def memorize(self, frame: torch.Tensor, probs: torch.Tensor,
                 sample_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Memory key/value of each object row.

        frame [B,3,H,W] in [0,1] (padded); probs [N,1,H,W] each row's soft mask; sample_index [N] row -> frame
        (None: B == 1, all rows of one frame). Returns key [N,Ck,h,w], value [N,Cv,h,w].
        """
        r4 = self.Encoder_M(frame, probs, other_objects(probs, sample_index), sample_index)
        return self.KV_M_r4(r4)

    def encode_query(self, frame: torch.Tensor) -> QueryFeatures:
        """Query features of frame [B,3,H,W]; independent of masks, so they can be cached per frame.

        The decoder's skip branches depend on the frame alone too, so they are computed here, once per frame.
        """
        r4, r3, r2 = self.Encoder_Q(frame)
        key, value = self.KV_Q_r4(r4)
        return QueryFeatures(key, value, *self.Decoder.skips(r3, r2))

    def segment(self, query: QueryFeatures, mem_key: torch.Tensor, mem_value: torch.Tensor,
                sample_index: torch.Tensor | None = None) -> torch.Tensor:
        """Per-object foreground probability [N,H,W] at the padded input size (before aggregation).

        mem_key [N,Ck,T,h,w] / mem_value [N,Cv,T,h,w]: each row's memory over T frames.
        """
        return self.decode(query, self.read(query, mem_key, mem_value, sample_index), sample_index)

    def read(self, query: QueryFeatures, mem_key: torch.Tensor, mem_value: torch.Tensor,
             sample_index: torch.Tensor | None = None) -> torch.Tensor:
        """The space-time memory read: memory values [N,Cv,h,w] attended by each row's query key. Its cost
        grows with the memory; everything after it (`decode`) has the same shapes whatever the memory holds."""
        n = mem_key.shape[0]
        q_key = query.key.index_select(0, sample_index) if sample_index is not None else \
            query.key.expand(n, -1, -1, -1)
        h, w = q_key.shape[-2:]
        read = memory_read(mem_key.flatten(2), mem_value.flatten(2), q_key.flatten(2), self.use_sdpa, self.top_k)
        return read.view(n, -1, h, w)

    def decode(self, query: QueryFeatures, read: torch.Tensor,
               sample_index: torch.Tensor | None = None) -> torch.Tensor:
        """Foreground probability [N,H,W] from the memory read [N,Cv,h,w] and the query's own features."""
        n = read.shape[0]
        q_value = query.value.index_select(0, sample_index) if sample_index is not None else \
            query.value.expand(n, -1, -1, -1)
        logits = self.Decoder(torch.cat([read, q_value], dim=1), query.skip3, query.skip2, sample_index)
        # softmax over (bg, fg), channel fg == sigmoid(fg - bg); bilinear upsampling is linear, so upsampling
        # the one difference map equals upsampling both logits (at half the cost)
        margin = logits[:, 1:].float() - logits[:, :1].float()
        return torch.sigmoid(F.interpolate(margin, scale_factor=4, mode="bilinear", align_corners=False)[:, 0])
