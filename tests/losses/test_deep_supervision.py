"""Deep-supervision targets of the partial-label loss (LossConfig.aux_target)."""
from __future__ import annotations

import pytest
import torch

from sat.losses.partial_label import LossConfig, PartialLabelLoss


def _aux_target(cfg: LossConfig, target: torch.Tensor, coarse: tuple[int, int, int]) -> torch.Tensor:
    """The target the loss compares a coarse output with: the one a perfect coarse logit must match."""
    seen = {}
    loss = PartialLabelLoss(cfg)

    def spy(logits, tgt, valid):
        seen["t"] = tgt
        return logits.new_zeros(()), logits.new_zeros(()), logits.new_zeros(()), logits.new_zeros(())

    main = torch.zeros(target.shape)
    aux = torch.zeros(*target.shape[:2], *coarse)
    valid = torch.ones(target.shape[:2], dtype=torch.bool)
    loss._terms = spy  # record the last call's target: the coarse one
    loss((main, [aux]), target, valid)
    return seen["t"]


def test_max_dilates_and_mean_keeps_the_occupancy():
    target = torch.zeros(1, 1, 8, 8, 8)
    target[0, 0, 0:2, 0:2, 0:1] = 1  # 4 of the 64 voxels of the first coarse voxel (2 x 4 x 4 -> 4 x 2 x 2)
    t_max = _aux_target(LossConfig(), target, (4, 2, 2))
    t_mean = _aux_target(LossConfig(aux_target="mean"), target, (4, 2, 2))
    assert t_max.shape == t_mean.shape == (1, 1, 4, 2, 2)
    assert t_max[0, 0, 0, 0, 0] == 1 and t_max.sum() == 1
    assert t_mean[0, 0, 0, 0, 0] == pytest.approx(4 / 32) and t_mean.sum() == pytest.approx(4 / 32)
    # the mean keeps a structure's volume: coarse fractions times coarse voxel size = fine voxel count
    assert (t_mean.sum() * 32).item() == pytest.approx(target.sum().item())


def test_two_neighbouring_parts_overlap_only_under_max():
    target = torch.zeros(1, 2, 8, 8, 8)
    target[0, 0, :3] = 1  # anterior part: slices 0-2
    target[0, 1, 3:6] = 1  # posterior part: slices 3-5, sharing a coarse voxel (slices 2-3) with it
    t_max = _aux_target(LossConfig(), target, (4, 4, 4))
    t_mean = _aux_target(LossConfig(aux_target="mean"), target, (4, 4, 4))
    assert (t_max[0, 0] * t_max[0, 1]).sum() > 0  # both parts claim the shared coarse slice fully
    assert torch.allclose(t_mean[0, 0] + t_mean[0, 1], t_mean.new_tensor(1.0).where(
        torch.arange(4).view(4, 1, 1).expand(4, 4, 4) < 3, t_mean.new_tensor(0.0)))


def test_unknown_pooling_is_named():
    with pytest.raises(ValueError, match="aux_target.*'median'"):
        LossConfig(aux_target="median")
