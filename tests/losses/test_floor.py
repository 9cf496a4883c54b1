"""The dead-query floor of the partial-label loss (LossConfig.floor_weight)."""
from __future__ import annotations

import pytest
import torch

from sat.losses.partial_label import LossConfig, PartialLabelLoss


def _case(dead_logit: float):
    """One crop, two queries: a large structure learned well, a small one at ``dead_logit``."""
    target = torch.zeros(1, 2, 16, 16, 16, dtype=torch.bool)
    target[0, 0, 2:14, 2:14, 2:14] = True
    target[0, 1, 7:9, 7:9, 7:9] = True  # 8 voxels
    logits = torch.where(target, 8.0, -8.0)
    logits[0, 1][target[0, 1]] = dead_logit
    return logits.requires_grad_(True), target, torch.ones(1, 2, dtype=torch.bool)


def _push(cfg: LossConfig, dead_logit: float) -> float:
    """Total gradient pushing the small structure's own voxels up."""
    logits, target, valid = _case(dead_logit)
    PartialLabelLoss(cfg)(logits, target, valid)["loss"].backward()
    return float(-logits.grad[0, 1][target[0, 1]].sum())


def test_dead_query_is_pushed_only_with_the_floor():
    # saturated: Dice is silent and BCE pushes by the structure's share of the crop (8 / 4096 / 2
    # queries here; 152 / 430,000 for the right adrenal gland in the real scan)
    assert _push(LossConfig(), -16.0) == pytest.approx(8 / 4096 / 2, rel=1e-3)
    # the floor: a unit push on the mean over its voxels, shared like Dice among the 2 queries
    assert _push(LossConfig(floor_weight=1.0), -16.0) == pytest.approx(1 / 2 + 8 / 4096 / 2, rel=1e-3)


def test_floor_is_silent_for_a_query_that_is_learning():
    logits, target, valid = _case(-2.0)  # above -margin: the floor adds nothing
    plain = PartialLabelLoss()(logits, target, valid)
    floored = PartialLabelLoss(floor_weight=1.0)(logits, target, valid)
    assert floored["floor"] == 0 and torch.equal(plain["loss"], floored["loss"])
    assert "floor" not in plain


def test_floor_value_is_mean_depth_below_margin_and_weighted():
    logits, target, valid = _case(-16.0)
    terms = PartialLabelLoss(floor_weight=0.5, floor_margin=6.0)(logits, target, valid)
    # the small structure is 10 below the margin; the large one contributes 0; mean over 2 queries
    assert terms["floor"].item() == pytest.approx(5.0)
    assert terms["loss"].item() == pytest.approx((terms["dice"] + terms["bce"] + 0.5 * terms["floor"]).item())


@pytest.mark.parametrize("bad", [{"floor_weight": -1.0}, {"smooth": 0.0}, {"floor_margin": -1.0}])
def test_bad_settings_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        LossConfig(**bad)
