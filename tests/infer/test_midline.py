"""The body's mid-sagittal plane and the midline component rule (:mod:`sat.infer.midline`)."""
from __future__ import annotations

import numpy as np
import pytest

from sat.infer.midline import REACH_MM, Midline, reaching
from sat.infer.postprocess import major_components


def _oblique(flip_lr: bool) -> np.ndarray:
    """(4, 4) voxel -> RAS mm: 4 x 4 x 3 mm voxels turned 20 degrees about the height axis, the
    first two axes reversed when ``flip_lr`` (LPS storage)."""
    t = np.deg2rad(20.0)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1.0]])
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag([4.0, 4.0, 3.0]) @ (np.diag([-1.0, -1.0, 1.0]) if flip_lr else np.eye(3))
    a[:3, 3] = [-130.0, -60.0, -90.0]
    if flip_lr:
        a[:3, 3] -= a[:3, :3] @ np.array([79.0, 79.0, 0.0])  # the same field of view, stored the other way
    return a


def _world(shape, affine) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    return (idx @ affine[:3, :3].T + affine[:3, 3]).reshape(*shape, 3)


@pytest.mark.parametrize("flip_lr", [False, True])
def test_the_plane_is_the_bodys_centre_at_each_height_on_oblique_and_lps_grids(flip_lr):
    affine = _oblique(flip_lr)
    w = _world((80, 80, 40), affine)
    body = (np.abs(w[..., 0] - 30.0) < 70.0) & (np.abs(w[..., 1] - 150.0) < 50.0)  # a trunk centred at x = 30 mm
    plane = Midline.from_body(body, affine)
    known = plane.centre[~np.isnan(plane.centre)]
    assert len(known) >= 10 and np.all(np.abs(known - 30.0) < 4.0)  # a voxel's quantisation
    assert plane.at(-80.0, 20.0) == pytest.approx(30.0, abs=2.0)
    image = np.where(body, 40.0, -1000.0).astype(np.float32)  # HU: the image gives the same plane
    assert Midline.from_image(image, affine).at(-80.0, 20.0) == pytest.approx(plane.at(-80.0, 20.0), abs=0.5)


def test_heights_where_the_body_meets_the_images_side_take_the_plane_of_near_bands_or_none():
    affine = np.diag([4.0, 4.0, 3.0, 1.0])
    body = np.zeros((60, 40, 40), dtype=bool)
    body[10:40, 5:35, :] = True                    # a trunk centred at x = 98 mm
    body[0:50, 5:35, :8] = True                    # lowest 24 mm: an arm reaches the left edge
    plane = Midline.from_body(body, affine)
    assert np.isnan(plane.centre[:3]).all() and plane.centre[3] == pytest.approx(98.0)
    assert plane.at(12.0, 15.0) == pytest.approx(98.0, abs=1.0)  # the bands above, 2 cm away at most
    assert plane.at(0.0, 5.0) is None  # 3 bands below the nearest known one
    cut = Midline.from_body(np.ones((10, 10, 10), dtype=bool), affine)  # a crop inside the body
    assert np.isnan(cut.centre).all() and cut.at(0.0, 30.0) is None
    assert Midline.from_body(np.zeros((4, 4, 4), dtype=bool), affine).at(0.0, 9.0) is None
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        Midline.from_body(np.zeros((4, 4), dtype=bool), affine)


def _cord_and_arm_pieces() -> tuple[np.ndarray, np.ndarray, Midline]:
    """A 1 mm grid: a thin cord at x = 60 with a gap, and a bigger false piece at x = 5 (55 mm away)."""
    mask = np.zeros((70, 20, 60), dtype=bool)
    mask[58:62, 8:12, 0:25] = True                 # lower cord
    mask[58:62, 8:12, 30:60] = True                # upper cord, past a gap
    mask[2:9, 5:15, 10:40] = True                  # an "arm" piece, the largest
    return mask, np.eye(4), Midline(z0=0.0, centre=np.full(6, 61.0))


def test_pieces_away_from_the_plane_go_before_the_sizes_are_compared():
    mask, affine, plane = _cord_and_arm_pieces()
    from scipy import ndimage

    labels, n = ndimage.label(mask, np.ones((3, 3, 3)))
    ok = reaching(labels, n, affine, plane)
    assert ok[1:].sum() == 2 and not ok[labels[5, 10, 20]]
    cord = mask.copy()
    cord[:10] = False
    assert np.array_equal(major_components(mask, 0.0, midline=plane, affine=affine), cord)
    assert np.array_equal(major_components(mask, 0.3, midline=plane, affine=affine), cord)  # the arm sets no size
    assert major_components(mask, 1.0)[5, 10, 20]  # without the plane the arm is the largest
    # within reach (50 mm) a piece stays: the plane 54 mm from the arm's right edge, 1 mm inside reach
    near = Midline(z0=0.0, centre=np.full(6, 8.0 + REACH_MM - 1.0))
    assert np.array_equal(major_components(mask, 0.0, midline=near, affine=affine), mask)
    # no piece reaches the plane: the rule does not decide the structure is absent
    far = Midline(z0=0.0, centre=np.full(6, 200.0))
    assert np.array_equal(major_components(mask, 0.0, midline=far, affine=affine), mask)
    with pytest.raises(ValueError, match="affine"):
        major_components(mask, 1.0, midline=plane)


def test_a_piece_at_heights_of_unknown_plane_is_kept():
    mask, affine, _ = _cord_and_arm_pieces()
    unknown = Midline(z0=0.0, centre=np.full(6, np.nan))  # e.g. a field of view cut through the body
    assert unknown.at(10.0, 39.0) is None
    assert np.array_equal(major_components(mask, 0.0, midline=unknown, affine=affine), mask)


def test_restore_drops_pieces_away_from_the_plane_on_the_input_grid_and_segmenter_reads_the_advice():
    import torch

    from sat.infer.restore import restore_prompts
    from sat.infer.segmenter import Segmenter
    from sat.io.volume import Volume

    mask, affine, plane = _cord_and_arm_pieces()
    prob = torch.from_numpy(mask.astype(np.float32) * 0.9)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps[:3, 3] = [69.0, 19.0, 0.0]                 # the same voxels' places, stored right-to-left
    vol = Volume(array=np.zeros(mask.shape, np.float32), affine=lps)
    with_rule, without = restore_prompts(torch.stack([prob.flip(0), prob.flip(0)]), lps, vol, ["none", "none"],
                                         answers=["c", "c"], midline=plane, on_midline=[True, False])
    assert with_rule.mask[8:12].any() and not with_rule.mask[60:].any()  # stored reversed: the arm at the end
    assert without.mask.sum() == mask.sum() and with_rule.mask.sum() == mask.sum() - mask[:10].sum()
    assert with_rule.stats["volume_ml"] == pytest.approx(with_rule.mask.sum() / 1000.0)
    advice = {"midline_components": ["spinal_cord"]}
    assert Segmenter._midline_rule(None, advice) == {"spinal_cord"}
    assert Segmenter._midline_rule(False, advice) == frozenset()
    assert Segmenter._midline_rule(["brainstem"], advice) == {"brainstem"}
    with pytest.raises(ValueError, match="True"):
        Segmenter._midline_rule(True, advice)


def test_segment_applies_the_checkpoints_midline_rule_as_major_components_does(checkpoint_with, fast_resolver,
                                                                              phantom_ct):
    from sat.infer.segmenter import Segmenter
    from sat.io.volume import load_volume

    path = checkpoint_with("midline.ckpt", inference={"midline_components": ["liver"]})
    seg = Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver)
    assert seg.midline_concepts == {"liver"}
    plain = Segmenter.from_checkpoint(path, device="cpu", resolver=fast_resolver, midline=False)
    volume = load_volume(phantom_ct)
    ruled = seg.segment(volume, ["liver"]).structures[0].mask
    every = plain.segment(volume, ["liver"]).structures[0].mask
    expected = major_components(every, 0.0, midline=Segmenter.midline_of(volume), affine=volume.affine)
    assert np.array_equal(ruled, expected) and ruled.shape == volume.shape
