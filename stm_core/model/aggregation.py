"""Soft aggregation of per-object foreground probabilities into one distribution over {background, objects}.

p_0 = prod_j (1 - p_j); every p clamped to [eps, 1 - eps]; logits = log(p / (1 - p)); the aggregated
probabilities are softmax over objects (and background) of those logits. This is what the paper (RGMP/STM)
calls soft aggregation; it keeps each object's uncertainty instead of a winner-take-all argmax.
"""

from __future__ import annotations

import torch

EPS = 1e-7


def aggregate_logits(fg_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """fg_prob [..., K, ...] independent foreground probabilities along `dim` -> logits [..., K+1, ...].

    Padding slots with probability 0 leave the background untouched and get a logit of about -16.1,
    so batches may mix samples with different object counts.
    """
    fg_prob = fg_prob.float()
    bg = torch.prod(1 - fg_prob, dim=dim, keepdim=True)
    em = torch.cat([bg, fg_prob], dim=dim).clamp(EPS, 1 - EPS)
    return torch.log(em / (1 - em))


def aggregate(fg_prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Aggregated probabilities [..., K+1, ...] (background first); they sum to one along `dim`."""
    return torch.softmax(aggregate_logits(fg_prob, dim), dim=dim)
