"""Largest-connected-component post-processing and the inference settings a checkpoint carries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sat.infer.postprocess import MAJOR_FRACTION, keep_components, major_components


def test_largest_component_keeps_the_biggest_island_only():
    mask = np.zeros((20, 20, 20), dtype=bool)
    mask[2:5, 2:5, 2:5] = True        # 27 voxels
    mask[10:16, 10:16, 10:16] = True  # 216 voxels
    mask[16, 16, 16] = True           # touches the big one diagonally: 26-connected, kept
    out = major_components(mask, 1.0)
    assert out.sum() == 217 and not out[3, 3, 3] and out[16, 16, 16]


def test_major_components_keep_a_broken_tube_and_drop_islands():
    mask = np.zeros((10, 10, 40), dtype=bool)
    mask[4:6, 4:6, 0:20] = True       # a cord predicted with a gap: 80 voxels ...
    mask[4:6, 4:6, 23:35] = True      # ... and 48 below it
    mask[0, 0, 38] = True             # a one-voxel island
    kept = major_components(mask, 0.3)
    assert kept.sum() == 128 and not kept[0, 0, 38]
    assert major_components(mask, 1.0).sum() == 80 and major_components(mask, 0.0).sum() == 129
    # a kept voxel keeps its component whatever its size; one outside the mask or grid changes nothing
    assert major_components(mask, 0.3, keep=np.array([[0, 0, 38]])).sum() == 129
    assert major_components(mask, 1.0, keep=np.array([[5, 5, 25], [9, 9, 99], [1, 1, 1]])).sum() == 128
    with pytest.raises(ValueError, match="1.5"):
        major_components(mask, 1.5)


def test_components_found_in_the_foreground_box_equal_a_whole_volume_labelling():
    from scipy import ndimage

    rng = np.random.default_rng(3)
    for _ in range(5):
        mask = np.zeros((30, 26, 22), dtype=bool)
        mask[5:20, 8:21, 3:15] = rng.random((15, 13, 12)) > 0.55  # many islands off the volume's corner
        labels, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        assert np.array_equal(major_components(mask, 1.0), labels == sizes.argmax())
        keep = np.isin(labels, np.nonzero(sizes >= MAJOR_FRACTION * sizes.max())[0])
        assert np.array_equal(major_components(mask, MAJOR_FRACTION), keep)
    empty = np.zeros((4, 4, 4), dtype=bool)
    assert not major_components(empty, 1.0).any()


def test_keep_largest_zeroes_probabilities_outside_and_leaves_other_rows():
    probs = torch.zeros((2, 12, 12, 12), dtype=torch.float16)
    probs[:, 1:3, 1:3, 1:3] = 0.9
    probs[:, 6:11, 6:11, 6:11] = 0.8
    before = probs.clone()
    keep_components(probs, {0: 1.0})
    assert probs[0, 1:3, 1:3, 1:3].max() == 0 and torch.equal(probs[0, 6:11, 6:11, 6:11], before[0, 6:11, 6:11, 6:11])
    assert torch.equal(probs[1], before[1])  # not asked for
    empty = torch.zeros((1, 4, 4, 4))
    assert torch.equal(keep_components(empty, {0: 1.0}), torch.zeros((1, 4, 4, 4)))


def test_segmenter_follows_the_checkpoint_advice_and_accepts_overrides():
    from sat.infer.segmenter import Segmenter

    advice = {"largest_component": ["liver"], "major_components": ["spinal_cord"], "tta": True}
    assert Segmenter._component_rule(None, advice) == {"liver": 1.0, "spinal_cord": MAJOR_FRACTION}
    assert Segmenter._component_rule(True, advice) == 1.0 and Segmenter._component_rule(False, advice) == 0.0
    with pytest.raises(ValueError, match="'yes'"):
        Segmenter._component_rule("yes", advice)


def test_keep_largest_uses_each_channels_own_threshold():
    probs = torch.zeros((2, 12, 12, 12))
    probs[:, 6:11, 6:11, 6:11] = 0.45  # a big island only a 0.4 threshold sees
    probs[:, 1:3, 1:3, 1:3] = 0.8      # a small confident one
    keep_components(probs, {0: 1.0, 1: 1.0}, [0.4, 0.5])
    assert probs[0, 1:3, 1:3, 1:3].max() == 0 and probs[0, 6:11, 6:11, 6:11].min() > 0.4  # 0.4: the big one
    assert probs[1, 6:11, 6:11, 6:11].max() == 0 and probs[1, 1:3, 1:3, 1:3].min() > 0.7  # 0.5: the small one


def test_segmenter_thresholds_follow_the_checkpoint_and_lower_ones_grow_masks(checkpoint_with, fast_resolver,
                                                                              phantom_ct):
    from sat.infer.segmenter import Segmenter

    path = checkpoint_with("thresholds.ckpt", inference={"thresholds": {"liver": 0.3}})
    seg = Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver)
    assert seg.thresholds == {"liver": 0.3}
    plain = Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver, thresholds={})
    assert plain.thresholds == {}
    a = seg.segment(phantom_ct, ["liver"], probabilities=True).structures[0]
    b = plain.segment(phantom_ct, ["liver"], probabilities=True).structures[0]
    # the same probabilities, cut at 0.3 instead of 0.5 on the input grid (the kept maps are float16:
    # they may differ from the float32 cut only within rounding of the threshold)
    for s, t in ((a, 0.3), (b, 0.5)):
        differ = s.mask != (s.prob > t)
        assert np.all(np.abs(s.prob[differ].astype(np.float32) - t) < 2e-3)
    assert a.mask.sum() >= b.mask.sum()
    assert Segmenter._component_rule(["liver", "spleen"], {}) == {"liver": 1.0, "spleen": 1.0}
    with pytest.raises(ValueError, match="threshold of liver"):
        Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver, thresholds={"liver": 1.5})


def test_segmenter_overlap_follows_the_checkpoint_and_rejects_bad_values(checkpoint_with, fast_resolver):
    from sat.infer.segmenter import Segmenter

    path = checkpoint_with("overlap.ckpt", inference={"overlap": 0.5})
    assert Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver).overlap == 0.5
    assert Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver, overlap=0.0).overlap == 0.0
    plain = checkpoint_with("no_overlap.ckpt", inference={})
    assert Segmenter.from_checkpoint(plain, device="cpu", resolver=fast_resolver).overlap == 0.25
    with pytest.raises(ValueError, match="1.0"):
        Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver, overlap=1.0)


def test_restore_applies_the_component_rule_on_the_input_grid_before_measuring():
    from sat.infer.restore import restore_prompt, restore_prompts
    from sat.io.volume import Volume

    # a model grid at 2 mm, the input at 1 mm shifted by half a voxel: two blobs joined by a plane
    # just below the cut, which the input grid's trilinear samples (a quarter from a blob) lift
    # above it, and an island far away
    prob = torch.zeros((16, 16, 16))
    prob[2:6, 2:6, 2:6] = 0.9
    prob[6, 2:6, 2:6] = 0.45                   # below the cut on the model grid, the link on the input grid
    prob[7:11, 2:6, 2:6] = 0.9
    prob[12:15, 12:15, 12:15] = 0.9            # an island
    src = np.diag([2.0, 2.0, 2.0, 1.0])
    shifted = np.diag([1.0, 1.0, 1.0, 1.0])
    shifted[:3, 3] = 0.5
    vol = Volume(array=np.zeros((32, 32, 32), np.float32), affine=shifted)
    plain = restore_prompt(prob, src, vol, keep_probabilities=True)
    largest = restore_prompt(prob, src, vol, keep_probabilities=True, fraction=1.0)
    assert largest.mask.sum() < plain.mask.sum() and not largest.mask[26, 26, 26] and plain.mask[26, 26, 26]
    assert largest.mask[6, 6, 6] and largest.mask[17, 6, 6]   # both blobs: one component on the input grid
    assert float(largest.prob[26, 26, 26]) == 0.0 and float(plain.prob[26, 26, 26]) > 0.5
    assert largest.stats["volume_ml"] < plain.stats["volume_ml"]
    assert largest.stats["volume_ml"] == pytest.approx(largest.mask.sum() / 1000.0)
    # on the model grid the two blobs are two components: the largest alone would drop one
    assert keep_components(prob.clone()[None], {0: 1.0}, 0.5)[0][8, 3, 3] == 0
    # a kept point (a positive click) keeps its component, whatever its size
    clicked = restore_prompt(prob, src, vol, fraction=1.0, keep_voxels=[(26, 26, 26)])
    assert clicked.mask[26, 26, 26] and clicked.mask.sum() == plain.mask.sum()
    # a rule that removes nothing changes no statistic: they read the same float32 probabilities
    assert clicked.stats == plain.stats
    kept = restore_prompt(prob, src, vol, keep_probabilities=True, fraction=1.0, keep_voxels=[(26, 26, 26)])
    assert kept.stats == plain.stats and np.array_equal(kept.prob, plain.prob)
    # the rule is part of restore_prompts' per-channel key: one channel with, one without
    both = restore_prompts(torch.stack([prob, prob]), src, vol, ["none", "none"], answers=["a", "a"],
                           fractions=[1.0, 0.0])
    assert both[0].mask.sum() == largest.mask.sum() and both[1].mask.sum() == plain.mask.sum()
