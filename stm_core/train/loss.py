"""The STM training forward pass over 3-frame clips and its loss (CE on the soft-aggregated output)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.aggregation import aggregate_logits
from ..model.stm import STM


def object_rows(labels0: torch.Tensor, num_objects: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (sample, object) of a batch: sample_index [N] and each row's object label [N]."""
    sample_index = torch.tensor([b for b, n in enumerate(num_objects) for _ in range(n)],
                                device=labels0.device)
    obj = torch.tensor([o for n in num_objects for o in range(1, n + 1)], device=labels0.device)
    return sample_index, obj


def rows_to_slots(fg: torch.Tensor, sample_index: torch.Tensor, obj: torch.Tensor, batch: int,
                  slots: int) -> torch.Tensor:
    """Scatter row probabilities [N,H,W] into [B,slots,H,W]; empty slots hold 0 (no effect on aggregation)."""
    out = fg.new_zeros((batch, slots) + fg.shape[1:])
    out[sample_index, obj - 1] = fg
    return out


def bootstrapped_ce(logits: torch.Tensor, target: torch.Tensor, hard_fraction: float) -> torch.Tensor:
    """Cross-entropy averaged over the hardest `hard_fraction` of pixels (1.0 = plain CE)."""
    ce = F.cross_entropy(logits, target, reduction="none").flatten(1)
    if hard_fraction >= 1.0:
        return ce.mean()
    k = max(1, int(ce.shape[1] * hard_fraction))
    return ce.topk(k, dim=1).values.mean()


def clip_loss(model: STM, frames: torch.Tensor, labels: torch.Tensor, num_objects: list[int],
              hard_fraction: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """STM's training recipe on clips [B,T,3,H,W]: memorize frame 0 (ground truth), segment frame 1,
    memorize it with its own (detached) soft estimate, segment frame 2 with memory {0, 1}, and so on.

    Loss: cross-entropy of the soft-aggregated logits against the labels of frames 1..T-1 (aggregation is
    part of the trained graph, as in the paper). Returns the loss and the per-frame IoU for logging.
    """
    b, t = frames.shape[:2]
    slots = max(num_objects)
    sample_index, obj = object_rows(labels[:, 0], num_objects)
    probs = (labels[:, 0].index_select(0, sample_index) == obj.view(-1, 1, 1)).float().unsqueeze(1)
    keys, values = [], []
    losses, ious = [], []
    for i in range(1, t):
        k, v = model.memorize(frames[:, i - 1], probs, sample_index)
        keys.append(k)
        values.append(v)
        query = model.encode_query(frames[:, i])
        fg = model.segment(query, torch.stack(keys, 2), torch.stack(values, 2), sample_index)
        logits = aggregate_logits(rows_to_slots(fg, sample_index, obj, b, slots), dim=1)
        losses.append(bootstrapped_ce(logits, labels[:, i], hard_fraction))
        with torch.no_grad():
            soft = torch.softmax(logits, 1)
            pred = soft.argmax(1)
            inter = ((pred > 0) & (labels[:, i] > 0)).sum().item()
            union = ((pred > 0) | (labels[:, i] > 0)).sum().item()
            ious.append(inter / union if union else 1.0)
        probs = soft[:, 1:][sample_index, obj - 1].unsqueeze(1).detach()
    loss = torch.stack(losses).mean()
    return loss, {"loss": float(loss.detach()), "iou": sum(ious) / len(ious)}
