"""The clicks' signs move the whole mask's cut, within a bound, never past a clicked voxel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sat.infer.click_cut import CLICK_KEEP, click_cut


def _probs(value: float = 0.9) -> torch.Tensor:
    return torch.full((8, 8, 8), value, dtype=torch.float16)


def test_no_step_no_clicks_or_cancelling_votes_keep_the_cut():
    p = _probs()
    assert click_cut(0.5, p, np.zeros((0, 3)), np.zeros(0, bool), step=0.05) == 0.5
    assert click_cut(0.5, p, np.array([[1, 1, 1]]), np.array([True]), step=0.0) == 0.5
    both = click_cut(0.5, _probs(0.5), np.array([[1, 1, 1], [2, 2, 2]]), np.array([True, False]), step=0.05)
    assert both == 0.5


def test_positive_clicks_lower_and_negative_clicks_raise_the_cut():
    assert click_cut(0.5, _probs(0.9), np.array([[1, 1, 1], [3, 3, 3]]), np.array([True, True]),
                     step=0.03) == pytest.approx(0.44)
    assert click_cut(0.5, _probs(0.1), np.array([[1, 1, 1]]), np.array([False]), step=0.03) == pytest.approx(0.53)


def test_the_move_is_bounded_by_the_bound_and_by_a_quarter_of_the_way_to_the_clicked_labels():
    five = np.array([[i, i, i] for i in range(5)])
    assert click_cut(0.5, _probs(0.9), five, np.ones(5, bool), step=0.1, bound=0.05) == pytest.approx(0.45)
    # cut 0.3: honour_click gives negatives 0.15, so lowering stops at 0.3 - 0.075
    assert click_cut(0.3, _probs(0.9), five, np.ones(5, bool), step=0.1, bound=0.5) == pytest.approx(0.225)
    assert click_cut(0.6, _probs(0.0), five, np.zeros(5, bool), step=0.1, bound=0.5) == pytest.approx(0.7)


def test_a_clicked_voxel_keeps_its_side_of_the_moved_cut():
    p = _probs(0.9)
    p[1, 1, 1] = 0.45                                       # a negative click's voxel, just below the cut
    pts, sign = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4]]), np.array([False, True, True, True])
    cut = click_cut(0.5, p, pts, sign, step=0.05, bound=0.2)  # two net positive votes would give 0.4
    assert cut == pytest.approx(0.45 + CLICK_KEEP, abs=1e-3)
    assert float(p[1, 1, 1]) < cut
    q = _probs(0.1)
    q[1, 1, 1] = 0.55                                       # a positive click's voxel, just above the cut
    cut = click_cut(0.5, q, pts, ~sign, step=0.05, bound=0.2)
    assert cut == pytest.approx(0.55 - CLICK_KEEP, abs=1e-3)
    assert float(q[1, 1, 1]) > cut


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="1.5"):
        click_cut(1.5, _probs(), np.zeros((0, 3)), np.zeros(0, bool))
    with pytest.raises(ValueError, match="-0.1"):
        click_cut(0.5, _probs(), np.zeros((0, 3)), np.zeros(0, bool), step=-0.1)
