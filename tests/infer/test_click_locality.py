"""A click's correction is kept where the click is: changed regions connected to a click take the
clicked answer, every other voxel keeps the answer before the clicks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sat.infer.click_locality import accept_near_clicks, click_voxels, extend_click, honour_click
from sat.model.prompts import NEGATIVE, PAD, POSITIVE, Prompts


def _grid() -> torch.Tensor:
    return torch.zeros((20, 20, 20), dtype=torch.float16)


def test_only_changes_through_a_click_are_taken():
    before = _grid()
    before[2:8, 2:8, 2:8] = 0.9                 # the structure as text found it
    after = before.clone()
    after[8:11, 2:8, 2:8] = 0.8                 # grown where the user clicked: kept
    after[15:18, 15:18, 15:18] = 0.7            # a new blob far from any click: dropped
    after[2:4, 2:8, 2:8] = 0.1                  # the far border thinned: restored
    out = accept_near_clicks(before, after, np.array([[9, 5, 5]]))
    assert out.dtype == after.dtype
    assert bool((out[8:11, 2:8, 2:8] == after[8:11, 2:8, 2:8]).all())
    assert bool((out[15:18, 15:18, 15:18] == 0).all())
    assert bool((out[2:4, 2:8, 2:8] == before[2:4, 2:8, 2:8]).all())


def test_a_negative_click_removes_the_leak_it_sits_in_and_nothing_else():
    before = _grid()
    before[2:8, 2:8, 2:8] = 0.9
    before[12:16, 12:16, 12:16] = 0.9           # a leak
    after = before.clone()
    after[12:16, 12:16, 12:16] = 0.2
    after[2:8, 2:8, 2:4] = 0.3                  # collateral damage away from the click
    out = accept_near_clicks(before, after, np.array([[13, 13, 13]]))
    assert bool((out[12:16, 12:16, 12:16] < 0.5).all())
    assert bool((out[2:8, 2:8, 2:8] > 0.5).all())


def test_a_click_next_to_the_change_counts_and_no_click_changes_nothing():
    before, after = _grid(), _grid()
    after[5:9, 5:9, 5:9] = 0.9
    assert bool((accept_near_clicks(before, after, np.array([[4, 6, 6]]))[5:9, 5:9, 5:9] > 0.5).all())
    assert bool((accept_near_clicks(before, after, np.array([[0, 19, 0]])) == 0).all())
    assert accept_near_clicks(before, after, np.zeros((0, 3), int)) is after
    with pytest.raises(ValueError, match=r"\(20, 20, 20\) and \(2, 2, 2\)"):
        accept_near_clicks(before, torch.zeros((2, 2, 2)), np.array([[1, 1, 1]]))


def test_click_voxels_skip_padding():
    p = Prompts.empty(1, 2, k=3)
    p.points[0, :, 0] = torch.tensor([1.2, 2.7, 3.0])
    p.points[0, :, 1] = torch.tensor([4.0, 5.0, 6.4])
    p.labels[0, :, 0], p.labels[0, :, 1], p.labels[0, :, 2] = POSITIVE, NEGATIVE, PAD
    assert click_voxels(p).tolist() == [[1, 3, 3], [4, 5, 6]]
    assert click_voxels(None).shape == (0, 3)


def test_with_signs_a_positive_click_only_adds_and_a_negative_one_only_removes():
    before = _grid()
    before[2:10, 2:10, 2:10] = 0.9
    after = before.clone()
    after[10:12, 2:10, 2:10] = 0.8              # grown at the positive click ...
    after[2:10, 2:10, 2:10] = 0.2               # ... while the answer also dropped the mask next to it
    click = np.array([[10, 5, 5]])
    out = accept_near_clicks(before, after, click, positive=np.array([True]))
    assert bool((out[10:12, 2:10, 2:10] > 0.5).all()) and bool((out[2:10, 2:10, 2:10] > 0.5).all())
    assert bool((accept_near_clicks(before, after, click)[2:10, 2:10, 2:10] < 0.5).all())  # unsigned: taken
    cut = before.clone()
    cut[8:10, 2:10, 2:10] = 0.1                 # removed at the negative click ...
    cut[10:14, 2:10, 2:10] = 0.7                # ... and grown beside it: not what "not this" says
    out = accept_near_clicks(before, cut, np.array([[9, 5, 5]]), positive=np.array([False]))
    assert bool((out[8:10, 2:10, 2:10] < 0.5).all()) and bool((out[10:14] < 0.5).all())


def test_an_ignored_positive_click_labels_its_place_and_its_like_neighbours():
    probs = _grid()
    probs[2:8, 2:8, 2:8] = 0.9                  # the mask
    probs[8:10, 2:8, 2:8] = 0.4                 # a missed border, as likely as where the click is
    probs[10:12, 2:8, 2:8] = 0.1                # unlikely: stays out
    probs[15:18, 15:18, 15:18] = 0.4            # as likely but not connected to the click: stays out
    out = honour_click(probs, np.array([8.3, 5.0, 5.0]), True, 0.5, delta=0.1, radius=4)
    assert out.dtype == probs.dtype
    assert bool((out[8:10, 2:8, 2:8] == 0.75).all())
    assert bool((out[10:12] == probs[10:12]).all()) and bool((out[15:18, 15:18, 15:18] == 0.4).all())
    assert bool((out[2:8, 2:8, 2:8] == 0.9).all())   # foreground already: untouched


def test_an_ignored_negative_click_removes_the_uncertain_part_it_sits_in_only():
    probs = _grid()
    probs[2:8, 2:8, 2:8] = 0.95                 # the confident core stays
    probs[8:11, 2:8, 2:8] = 0.6                 # a leak the click sits in
    out = honour_click(probs, np.array([9.0, 5.0, 5.0]), False, 0.5, delta=0.1, radius=4)
    assert bool((out[8:11, 3:8, 3:8] == 0.25).all())
    assert bool((out[2:8, 2:8, 2:8] == 0.95).all())


def test_the_click_is_read_between_voxels_and_the_radius_bounds_the_change():
    probs = _grid()
    probs[2:8, 2:8, 2:8] = 0.9
    probs[8, 2:8, 2:8] = 0.2                    # half a voxel past the border: trilinear 0.55, agrees
    assert honour_click(probs, np.array([7.5, 4.0, 4.0]), True, 0.5) is probs
    assert honour_click(probs, np.array([15.0, 15.0, 15.0]), False, 0.5) is probs
    probs[8:20, 2:8, 2:8] = 0.3                 # a long missed part
    out = honour_click(probs, np.array([12.0, 5.0, 5.0]), True, 0.5, delta=0.1, radius=2)
    changed = torch.nonzero(out != probs)
    assert changed[:, 0].min() >= 10 and changed[:, 0].max() <= 15
    out = honour_click(_grid(), np.array([5.0, 5.0, 5.0]), True, 0.5)  # nothing likely: the click's voxel
    assert torch.nonzero(out).tolist() == [[5, 5, 5]]


def test_a_positive_click_lowers_the_cut_near_itself_only():
    probs = _grid()
    probs[4:8, 4:8, 4:8] = 0.9                  # the mask the click sits in
    probs[8:10, 4:8, 4:8] = 0.35                # just below the cut, next to the click: taken
    probs[10:12, 4:8, 4:8] = 0.2                # below the margin: stays out
    probs[4:8, 13:16, 4:8] = 0.35               # within the band but not connected: stays out
    out = extend_click(probs, np.array([6.0, 6.0, 6.0]), True, 0.5, margin=0.2, radius=4)
    assert out.dtype == probs.dtype
    assert bool((out[8:10, 4:8, 4:8] == 0.75).all()) and bool((out[4:8, 4:8, 4:8] == 0.9).all())
    assert bool((out[10:12] == probs[10:12]).all()) and bool((out[4:8, 13:16] == probs[4:8, 13:16]).all())
    probs[8:20, 4:8, 4:8] = 0.35                # a long band: only within the radius of the click
    changed = torch.nonzero(extend_click(probs, np.array([6.0, 6.0, 6.0]), True, 0.5, 0.2, 4) != probs)
    assert changed[:, 0].max() <= 11


def test_a_negative_click_raises_the_cut_near_itself_and_a_click_outside_the_band_changes_nothing():
    probs = _grid()
    probs[4:8, 4:8, 4:8] = 0.6                  # an uncertain leak the click sits in
    probs[8:12, 4:8, 4:8] = 0.95                # the confident structure beside it
    out = extend_click(probs, np.array([5.0, 5.0, 5.0]), False, 0.5, margin=0.2, radius=4)
    assert bool((out[4:8, 4:8, 4:8] == 0.25).all()) and bool((out[8:12] == probs[8:12]).all())
    assert extend_click(probs, np.array([9.0, 5.0, 5.0]), False, 0.5, margin=0.2) is probs
