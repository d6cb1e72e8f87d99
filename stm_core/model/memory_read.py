"""Space-time memory read: every query position attends to every position of every memory frame."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


AFFINITY_BYTES = 1 << 30
"""The most bytes one block of the affinity may take: queries are read in blocks under it, so a large frame at
the source size needs memory in proportion to its memory frames, not to their square (QA pass 101: a 4K video
read in one block took 21 GB, and the kernel killed the application)."""


def memory_read(mem_key: torch.Tensor, mem_value: torch.Tensor, query_key: torch.Tensor,
                use_sdpa: bool = False, top_k: int | None = None,
                max_affinity_bytes: int = AFFINITY_BYTES) -> torch.Tensor:
    """mem_key [N,Ck,M], mem_value [N,Cv,M], query_key [N,Ck,Q] -> read value [N,Cv,Q].

    Affinity = mem_key^T query_key / sqrt(Ck), softmax over the M memory positions (all memory frames
    jointly), then a weighted sum of memory values. `use_sdpa` computes the same with
    scaled_dot_product_attention (flash/memory-efficient kernels; the affinity is never materialised).
    `top_k` keeps only the k strongest memory positions per query before the softmax (as MiVOS/STCN do at
    inference), which suppresses many weak, noisy matches. Each query's softmax is its own, so the queries
    are read in blocks whose affinity (in fp32) fits `max_affinity_bytes`: the same result, bounded memory.
    """
    if use_sdpa and top_k is None:
        out = F.scaled_dot_product_attention(query_key.transpose(1, 2), mem_key.transpose(1, 2),
                                             mem_value.transpose(1, 2))
        return out.transpose(1, 2)
    n, _, m = mem_key.shape
    block = max(1, max_affinity_bytes // (4 * n * max(m, 1)))
    if block >= query_key.shape[2]:
        return _read_block(mem_key, mem_value, query_key, top_k)
    return torch.cat([_read_block(mem_key, mem_value, part, top_k) for part in query_key.split(block, dim=2)], 2)


def _read_block(mem_key: torch.Tensor, mem_value: torch.Tensor, query_key: torch.Tensor,
                top_k: int | None) -> torch.Tensor:
    # [N,Q,M], so the softmax runs over the contiguous last dimension (about 30% faster on the CPU than
    # over dim 1 of [N,M,Q]); the scale goes on the smaller query operand
    affinity = torch.bmm(query_key.transpose(1, 2) * (1 / math.sqrt(mem_key.shape[1])), mem_key)
    if top_k is not None and top_k < mem_key.shape[2]:
        values, indices = affinity.float().topk(top_k, dim=-1)
        weights = torch.zeros_like(affinity, dtype=torch.float32).scatter_(-1, indices, torch.softmax(values, dim=-1))
    else:
        weights = torch.softmax(affinity, dim=-1)
    return torch.bmm(mem_value, weights.to(mem_value.dtype).transpose(1, 2))
