"""Partial-label Dice + BCE over text queries.

Each (sample, query) pair is one binary segmentation problem. Only queries of concepts that the
sample's source annotates are ever built (annotated-but-absent concepts are negatives with an
all-zero target); padded queries are masked out of every term. BCE covers every valid query;
Dice covers the valid queries whose target is non-empty (a soft Dice of an empty target stays
near 1 for any non-zero prediction and only adds a constant, gradient-free term).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PartialLabelLoss(nn.Module):
    """Soft Dice + BCE per query, averaged over valid queries.

    Args:
        dice_weight, bce_weight: weights of the two terms.
        smooth: Dice smoothing.
        aux_weights: weights of deep-supervision outputs (coarsest first); targets are pooled.
    """

    def __init__(self, *, dice_weight: float = 1.0, bce_weight: float = 1.0, smooth: float = 1.0,
                 aux_weights: tuple[float, ...] = ()) -> None:
        super().__init__()
        self.dice_weight, self.bce_weight, self.smooth = dice_weight, bce_weight, smooth
        self.aux_weights = aux_weights

    def _terms(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """logits/target: (B, Q, D, H, W); valid: (B, Q) bool -> (dice loss, bce loss) scalars."""
        logits = logits.float()
        prob = logits.sigmoid().flatten(2)  # (B, Q, N)
        tgt = target.float().flatten(2)
        inter = (prob * tgt).sum(-1)
        dice = 1 - (2 * inter + self.smooth) / (prob.sum(-1) + tgt.sum(-1) + self.smooth)  # (B, Q)
        bce = F.binary_cross_entropy_with_logits(logits.flatten(2), tgt, reduction="none").mean(-1)
        w = valid.float()
        wd = w * (tgt.sum(-1) > 0).float()
        return (dice * wd).sum() / wd.sum().clamp_min(1.0), (bce * w).sum() / w.sum().clamp_min(1.0)

    def forward(self, logits, target: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            logits: (B, Q, D, H, W), or ``(logits, [coarser logits...])`` with deep supervision.
            target: (B, Q, D, H, W) binary masks. valid: (B, Q) True for real (unpadded) queries.

        Returns:
            dict of named terms (``dice``, ``bce``, optional ``aux``) and ``loss``, their weighted sum.
        """
        aux = []
        if isinstance(logits, tuple):
            logits, aux = logits
        dice, bce = self._terms(logits, target, valid)
        out = {"dice": dice, "bce": bce, "loss": self.dice_weight * dice + self.bce_weight * bce}
        if aux:
            weights = self.aux_weights or tuple(0.5 ** (len(aux) - i) for i in range(len(aux)))
            total = logits.new_zeros(())
            for w, a in zip(weights, aux):
                t = F.adaptive_max_pool3d(target.float().flatten(0, 1), a.shape[2:]).view_as(a)
                d, b = self._terms(a, t, valid)
                total = total + w * (self.dice_weight * d + self.bce_weight * b)
            out["aux"] = total
            out["loss"] = out["loss"] + total
        return out
