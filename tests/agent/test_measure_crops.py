"""measure / compare numbers and key-slice crops on synthetic masks with known answers."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sat.agent.crops import key_slice_crops, key_slices
from sat.agent.measure import compare_masks, measure_mask
from sat.errors import InputError
from sat.io.volume import Volume


def _vol(mask, spacing=(2.0, 2.0, 4.0), origin=(0.0, 0.0, 0.0)):
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = origin
    return Volume(mask.astype(np.float32), aff)


def _box(shape=(20, 20, 10), lo=(5, 5, 2), hi=(10, 9, 6)):
    m = np.zeros(shape, bool)
    m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    return m


def test_measure_box_with_and_without_image():
    m = _box()  # 5 x 4 x 4 voxels of 2 x 2 x 4 mm = 80 voxels * 16 mm3
    stats = measure_mask(_vol(m))
    assert stats.voxel_count == 80 and stats.volume_ml == pytest.approx(80 * 16 / 1000)
    assert stats.extent_mm == pytest.approx([10.0, 8.0, 16.0])
    assert stats.centroid_world_mm == pytest.approx([14.0, 13.0, 14.0])
    assert stats.intensity_mean is None
    image = _vol(np.where(m, 50.0, -100.0))
    with_img = measure_mask(_vol(m), image)
    assert with_img.intensity_mean == pytest.approx(50.0) and with_img.intensity_std == pytest.approx(0.0)
    with pytest.raises(InputError, match="does not match"):
        measure_mask(_vol(m), _vol(np.zeros((20, 20, 11))))


def test_compare_same_grid():
    a, b = _box(), _box(lo=(6, 5, 2), hi=(11, 9, 6))  # shifted by one voxel (2 mm) along x
    out = compare_masks(_vol(a), _vol(b))
    assert out["same_grid"] and out["volume_change_ml"] == pytest.approx(0.0)
    assert out["dice"] == pytest.approx(2 * 64 / 160)
    assert out["centroid_shift_mm"] == pytest.approx([2.0, 0.0, 0.0])
    assert out["centroid_distance_mm"] == pytest.approx(2.0)


def test_compare_different_grids_goes_through_world_coordinates():
    a = _box(shape=(20, 20, 10), lo=(4, 4, 2), hi=(12, 12, 6))
    b = np.zeros((40, 40, 20), bool)  # the same world box on a grid twice as fine
    b[8:24, 8:24, 4:12] = True
    out = compare_masks(_vol(a), _vol(b, spacing=(1.0, 1.0, 2.0), origin=(-0.5, -0.5, -1.0)))
    assert not out["same_grid"] and "resampling" in out["note"]
    assert out["volume_a_ml"] == pytest.approx(out["volume_b_ml"])
    assert out["dice"] == pytest.approx(1.0)
    grown = _box(lo=(4, 4, 2), hi=(14, 12, 6))
    assert compare_masks(_vol(a), _vol(grown))["volume_change_pct"] == pytest.approx(25.0)


def test_key_slices_pick_the_largest_area_and_crops_are_square_pixels(tmp_path):
    m = _box(shape=(20, 20, 10), lo=(5, 5, 2), hi=(10, 9, 6))
    m[5:15, 5:15, 4] = True  # axial slice 4 (array axis 2 is S for this affine) is the largest
    image = np.random.default_rng(0).normal(40, 10, m.shape).astype(np.float32)
    slices = dict((p, (ax, i)) for p, ax, i in key_slices(m, np.diag([2.0, 2.0, 4.0, 1.0])))
    assert slices["axial"] == (2, 4)
    assert slices["coronal"][0] == 1 and slices["sagittal"][0] == 0
    # a flipped x axis keeps the plane -> axis mapping and indexes the file's own array
    flipped = np.diag([-2.0, 2.0, 4.0, 1.0])
    assert dict((p, ax) for p, ax, _ in key_slices(m[::-1], flipped))["sagittal"] == 0
    crops = key_slice_crops(image, m, np.diag([2.0, 2.0, 4.0, 1.0]), tmp_path, "box")
    assert [k.plane for k in crops] == ["axial", "coronal", "sagittal"]
    for k in crops:
        png = Image.open(k.png_path)
        assert png.mode == "RGB" and min(png.size) >= 160
    coronal = Image.open(crops[1].png_path)  # 4 mm slices shown with square pixels: rows repeat 2x
    arr = np.asarray(coronal)
    assert arr.shape[0] % 2 == 0 and np.array_equal(arr[0::2], arr[1::2])
    assert key_slices(np.zeros((4, 4, 4), bool), np.eye(4)) == []
