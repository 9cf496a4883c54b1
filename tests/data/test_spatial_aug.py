"""Spatial augmentation of training crops: the drawn region holds the warped patch, image and
targets move together, volumes scale with the zoom, and settings are checked."""
from __future__ import annotations

import numpy as np
import pytest

from sat.data.label_codes import CodedLabels, masks_to_codes
from sat.data.sampling import SamplingConfig, sample_crop
from sat.data.spatial_aug import SpatialDraw, apply_affine, draw_affine


def _ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    return ((grid - np.asarray(centre, dtype=float)) ** 2).sum(-1) <= radius ** 2


def test_no_rotation_and_unit_scale_cut_the_centre_of_the_region():
    x = np.random.default_rng(0).random((2, 20, 22, 24)).astype(np.float32)
    img, tgt = apply_affine(SpatialDraw((0.0, 0.0, 0.0), 1.0, (20, 22, 24)), x, x > 0.5, (12, 12, 12))
    assert img.shape == (2, 12, 12, 12) and tgt.dtype == bool
    np.testing.assert_allclose(img, x[:, 4:16, 5:17, 6:18], atol=1e-5)
    np.testing.assert_array_equal(tgt, x[:, 4:16, 5:17, 6:18] > 0.5)


def test_the_region_holds_every_corner_of_the_warped_patch():
    from monai.transforms.utils import create_rotate

    rng = np.random.default_rng(1)
    patch = (48, 40, 32)
    for _ in range(50):
        d = draw_affine(patch, rng, 15.0, (0.85, 1.15))
        assert all(r >= p and (r - p) % 2 == 0 for r, p in zip(d.region, patch))
        corners = np.array(np.meshgrid(*[[-p / 2, p / 2] for p in patch], indexing="ij")).reshape(3, -1)
        reached = np.abs(np.asarray(create_rotate(3, d.angles))[:3, :3] @ corners * d.scale).max(1)
        assert np.all(reached <= np.asarray(d.region) / 2 + 1e-6)
        assert all(abs(a) <= np.radians(15.0) for a in d.angles) and 0.85 <= d.scale <= 1.15


def test_a_ball_keeps_its_volume_under_rotation_and_scales_with_the_zoom():
    rng = np.random.default_rng(2)
    for _ in range(3):
        d = draw_affine((40, 40, 40), rng, 15.0, (0.85, 1.15))
        ball = _ball(d.region, [(r - 1) / 2 for r in d.region], 10)[None].astype(np.float32)
        _, soft = apply_affine(d, ball, ball, (40, 40, 40))
        assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
        assert soft.sum() / ball.sum() == pytest.approx(d.scale ** -3, rel=0.02)


def test_crops_move_image_and_targets_together():
    """The image is the structure's own mask: after any warp, thresholding the image gives the
    target (the same transform, the same interpolation)."""
    shape = (40, 40, 40)
    masks = np.stack([_ball(shape, (14, 20, 20), 6), _ball(shape, (27, 20, 20), 5)])
    codes, lut = masks_to_codes(masks)
    labels = CodedLabels(codes, lut, ["a", "b"])
    cfg = SamplingConfig(patch_size=(24, 24, 24), foreground_prob=1.0, spatial_prob=1.0, rotate_deg=20.0,
                         scale_range=(0.8, 1.2))
    rng = np.random.default_rng(3)
    for _ in range(10):
        crop = sample_crop(masks[:1].astype(np.float32), labels, cfg, rng, pad_value=0.0)
        assert crop["image"].shape == (1, 24, 24, 24) and crop["target"].shape[1:] == (24, 24, 24)
        if "a" in crop["concepts"]:
            np.testing.assert_array_equal(crop["target"][crop["concepts"].index("a")], crop["image"][0] >= 0.5)


def test_without_spatial_augmentation_crops_draw_the_same_random_numbers():
    """``spatial_prob: 0`` draws nothing more: recipes without it crop exactly as before."""
    masks = _ball((30, 30, 30), (15, 15, 15), 6)[None]
    codes, lut = masks_to_codes(masks)
    labels = CodedLabels(codes, lut, ["a"])
    a, b = np.random.default_rng(4), np.random.default_rng(4)
    sample_crop(masks.astype(np.float32), labels, SamplingConfig(patch_size=(16, 16, 16)), a)
    sample_crop(masks.astype(np.float32), labels, SamplingConfig(patch_size=(16, 16, 16), spatial_prob=0.0,
                                                                 rotate_deg=30.0), b)
    assert a.random() == b.random()


@pytest.mark.parametrize("field, value, match", [("spatial_prob", 1.5, "spatial_prob"),
                                                 ("rotate_deg", -1.0, "rotate_deg"),
                                                 ("scale_range", (1.1, 1.2), "scale_range"),
                                                 ("scale_range", (0.9,), "scale_range")])
def test_bad_spatial_settings_are_named(field, value, match):
    with pytest.raises(ValueError, match=match):
        SamplingConfig(**{field: value})
