"""Partial-label Dice + BCE over text queries.

Each (sample, query) pair is one binary segmentation problem. Only queries of concepts that the
sample's source annotates are ever built (annotated-but-absent concepts are negatives with an
all-zero target); padded queries are masked out of every term. BCE covers every valid query;
Dice covers the valid queries whose target is non-empty (a soft Dice of an empty target stays
near 1 for any non-zero prediction and only adds a constant, gradient-free term).

Sigmoid outputs can die: when a small structure's query has been pushed to very negative logits
on its own voxels (typically by the false-positive pressure of a neighbour with a similar
prompt), Dice's gradient there carries the factor ``p (1 - p)`` ~ 0 and BCE's is ``1/N`` of the
crop, so the query stays empty for the rest of the run (seen in the real-scan learning check:
one or two of 41 structures at logit -16 inside their own mask after 10 minutes). The optional
floor term is a hinge on positive voxels whose logit is below ``-floor_margin``, averaged over
each structure's own voxels and then over queries like Dice: zero for every query that is
learning, a push as large as a query's Dice term for one that has died (about 3,000 times BCE's for
that adrenal gland in a 48-query crop), and no shift of calibration near the 0.5 threshold.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


AUX_POOL = {"max": F.adaptive_max_pool3d, "mean": F.adaptive_avg_pool3d}


@dataclass
class LossConfig:
    """Attributes:
        dice_weight, bce_weight: weights of the two main terms.
        smooth: Dice smoothing.
        aux_weights: weights of deep-supervision outputs (coarsest first; empty = 0.5 ** depth).
        aux_target: how a coarse output's target is pooled from the full-resolution one:
            ``max`` (a coarse voxel is inside when any of its voxels is: dilated masks) or
            ``mean`` (the fraction of it inside: the occupancy, as ``soft_targets`` trains on).
        floor_weight: weight of the dead-query floor (0 disables it).
        floor_margin: positive voxels with a logit below ``-floor_margin`` feed the floor.
    """

    dice_weight: float = 1.0
    bce_weight: float = 1.0
    smooth: float = 1.0
    aux_weights: tuple[float, ...] = ()
    aux_target: str = "max"
    floor_weight: float = 0.0
    floor_margin: float = 6.0

    def __post_init__(self) -> None:
        for name in ("dice_weight", "bce_weight", "floor_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if self.smooth <= 0 or self.floor_margin < 0:
            raise ValueError(f"loss.smooth must be > 0 and loss.floor_margin >= 0, got "
                             f"{self.smooth} and {self.floor_margin}")
        self.aux_weights = tuple(self.aux_weights)
        if self.aux_target not in AUX_POOL:
            raise ValueError(f"loss.aux_target must be one of {sorted(AUX_POOL)}, got {self.aux_target!r}")


class PartialLabelLoss(nn.Module):
    """Soft Dice + BCE (+ the optional dead-query floor) per query, averaged over valid queries.

    Args:
        config: term weights and settings (:class:`LossConfig`); keywords override its fields.
    """

    def __init__(self, config: LossConfig | None = None, **overrides) -> None:
        super().__init__()
        self.config = replace(config or LossConfig(), **overrides)

    def _terms(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """logits/target: (B, Q, D, H, W); valid: (B, Q) bool -> scalars (weighted sum, dice, bce, floor)."""
        c = self.config
        logits = logits.float()
        prob = logits.sigmoid().flatten(2)  # (B, Q, N)
        tgt = target.float().flatten(2)
        inter = (prob * tgt).sum(-1)
        dice = 1 - (2 * inter + c.smooth) / (prob.sum(-1) + tgt.sum(-1) + c.smooth)  # (B, Q)
        bce = F.binary_cross_entropy_with_logits(logits.flatten(2), tgt, reduction="none").mean(-1)
        w = valid.float()
        wd = w * (tgt.sum(-1) > 0).float()
        dice = (dice * wd).sum() / wd.sum().clamp_min(1.0)
        bce = (bce * w).sum() / w.sum().clamp_min(1.0)
        main = c.dice_weight * dice + c.bce_weight * bce
        if c.floor_weight <= 0:
            return main, dice, bce, logits.new_zeros(())
        below = F.relu(-c.floor_margin - logits.flatten(2)) * tgt  # (B, Q, N)
        floor = below.sum(-1) / tgt.sum(-1).clamp_min(1.0)  # (B, Q): mean over the structure's voxels
        floor = (floor * wd).sum() / wd.sum().clamp_min(1.0)
        return main + c.floor_weight * floor, dice, bce, floor

    def forward(self, logits, target: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        """Args:
            logits: (B, Q, D, H, W), or ``(logits, [coarser logits...])`` with deep supervision.
            target: (B, Q, D, H, W) binary masks. valid: (B, Q) True for real (unpadded) queries.

        Returns:
            dict of named terms (``dice``, ``bce``, ``floor`` when enabled, ``aux`` with deep
            supervision) and ``loss``, their weighted sum.
        """
        aux = []
        if isinstance(logits, tuple):
            logits, aux = logits
        main, dice, bce, floor = self._terms(logits, target, valid)
        out = {"dice": dice, "bce": bce, "loss": main}
        if self.config.floor_weight > 0:
            out["floor"] = floor
        if aux:
            weights = self.config.aux_weights or tuple(0.5 ** (len(aux) - i) for i in range(len(aux)))
            total = logits.new_zeros(())
            pool = AUX_POOL[self.config.aux_target]
            for w, a in zip(weights, aux):
                t = pool(target.float().flatten(0, 1), a.shape[2:]).view_as(a)  # (B, Q, d, h, w)
                total = total + w * self._terms(a, t, valid)[0]
            out["aux"] = total
            out["loss"] = out["loss"] + total
        return out
