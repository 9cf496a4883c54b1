"""Validation Dice aggregated per dataset, concept and body region, across DDP ranks."""
from __future__ import annotations

import numpy as np
import torch


def dice_score(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Dice of two boolean masks; 1.0 when both are empty."""
    inter = (pred & gt).sum().item()
    denom = pred.sum().item() + gt.sum().item()
    return 1.0 if denom == 0 else 2.0 * inter / denom


class DiceTable:
    """Running sums of Dice per key: ``val/dice`` (all pairs), ``val/dice_dataset/<name>``,
    ``val/dice_concept/<id>`` and ``val/dice_region/<region>``.

    Args:
        regions: concept id -> body region (concepts without one are left out of region means).
    """

    def __init__(self, regions: dict[str, str] | None = None) -> None:
        self.regions = regions or {}
        self.sums: dict[str, list[float]] = {}

    def add(self, dataset: str, concept: str, dice: float) -> None:
        keys = ["val/dice", f"val/dice_dataset/{dataset}", f"val/dice_concept/{concept}"]
        if concept in self.regions:
            keys.append(f"val/dice_region/{self.regions[concept]}")
        for k in keys:
            s = self.sums.setdefault(k, [0.0, 0.0])
            s[0] += dice
            s[1] += 1

    def reset(self) -> None:
        self.sums = {}

    def gather(self) -> None:
        """Merge the sums of every DDP rank (a collective call: every rank must make it)."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        parts: list[dict | None] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(parts, self.sums)
        merged: dict[str, list[float]] = {}
        for part in parts:
            for k, (total, n) in (part or {}).items():
                m = merged.setdefault(k, [0.0, 0.0])
                m[0] += total
                m[1] += n
        self.sums = merged

    def means(self) -> dict[str, float]:
        return {k: float(np.float64(t) / n) for k, (t, n) in sorted(self.sums.items()) if n > 0}
