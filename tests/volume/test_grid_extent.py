"""The preprocessing grid covers every input voxel whole and keeps structures where they were.

:func:`ras_grid` is centred on the world box of the input voxels' corners; the image is
resampled with edge values in the half-voxel rim past the outermost centres and labels are
point sampled with balanced ties, so a sphere's world centroid survives preprocessing to well
under a quarter of an output voxel, for RAS, LPS and oblique storage, upsampling or downsampling.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from sat.data.adapters import Case
from sat.volume.geometry import ras_grid, resample, world_bounds, world_extent
from sat.volume.label_resample import resample_codes
from sat.volume.preprocess import PreprocessSpec, to_grid
from sat.data.shard_build import preprocess_labelled
from sat.io.volume import Volume
from sat.infer.restore import restore_prompt


def _rotation(deg_z: float, deg_x: float) -> np.ndarray:
    z, x = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return rz @ rx


# (name, voxel -> world 3x3, shape, output spacing): 3 mm -> 1.5 mm used to put label ties on
# every other output centre; 0.75 mm -> 1.5 mm on an even grid puts a tie on every centre.
CASES = {
    "ras": (np.diag([3.0, 3.0, 3.0]), (24, 22, 20), 1.5),
    "lps": (np.diag([-3.0, -3.0, 3.0]), (24, 22, 20), 1.5),
    "oblique": (_rotation(17, 11) @ np.diag([2.0, 2.0, 2.5]), (34, 32, 26), 1.5),
    "ras_downsample": (np.diag([0.75, 0.75, 0.75]), (96, 88, 80), 1.5),
}


def _affine(lin: np.ndarray, shape) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = -lin @ ((np.array(shape) - 1) / 2.0) + [3.1, -2.2, 1.3]  # off any round number
    return aff


@pytest.mark.parametrize("kind", ["ras", "lps", "oblique"])
def test_grid_covers_every_input_voxel_corner(kind):
    lin, _, sp = CASES[kind]
    shape = (9, 7, 5)
    aff = _affine(lin, shape)
    new_aff, new_shape = ras_grid(aff, shape, (sp, sp, sp))
    corners = np.array(list(itertools.product(*[np.arange(n + 1) - 0.5 for n in shape])))  # (N, 3)
    world = corners @ aff[:3, :3].T + aff[:3, 3]
    idx = (world - new_aff[:3, 3]) / sp  # output voxel index of every input voxel corner
    assert np.all(idx >= -0.5 - 1e-9) and np.all(idx <= np.array(new_shape) - 0.5 + 1e-9)
    lo_in, hi_in = world_extent(aff, shape)
    lo_out, hi_out = world_extent(new_aff, new_shape)
    under, over = lo_in - lo_out, hi_out - hi_in  # overhang on each side, (3,) each
    assert np.all(under >= -1e-9) and np.all(under <= sp / 2 + 1e-9)
    assert np.allclose(under, over)  # centred: the same overhang on both sides
    # anchoring the first output centre on the first input centre leaves half a voxel uncovered
    lo_c, hi_c = world_bounds(aff, shape)
    n_old = np.floor((hi_c - lo_c) / sp + 1e-6) + 1
    assert np.any(lo_c - sp / 2 > lo_in + 0.1) or np.any(lo_c + (n_old - 0.5) * sp < hi_in - 0.1)


def _sphere_case(kind: str) -> tuple[Case, float]:
    lin, shape, sp = CASES[kind]
    aff = _affine(lin, shape)
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), -1)
    world = ijk @ lin.T + aff[:3, 3]  # (X, Y, Z, 3)
    inside = (((world - [4.3, -1.7, 2.9]) / 14.0) ** 2).sum(-1) <= 1.0
    image = np.where(inside, 100.0, -1000.0).astype(np.float32)
    lut = np.array([[False, True]])  # code 1 = the sphere
    return Case(kind, image[None], aff, ["sphere"], inside.astype(np.uint8), lut), sp


def _centroid(weights: np.ndarray, affine: np.ndarray) -> np.ndarray:
    idx = np.stack(np.nonzero(weights), -1)  # (N, 3)
    w = weights[tuple(idx.T)].astype(np.float64)
    return affine[:3, :3] @ (idx * w[:, None]).sum(0) / w.sum() + affine[:3, 3]


@pytest.mark.parametrize("kind", list(CASES))
def test_sphere_centroid_survives_preprocessing(kind):
    # measured: the old grid (first output centre on the first input centre, every label tie to
    # one side) moved the ras and lps labels by 0.87 output voxels; one-sided ties on this grid
    # move ras_downsample by 0.42
    case, sp = _sphere_case(kind)
    pre = preprocess_labelled(case, ["CT"], (sp, sp, sp))
    true_label = _centroid(case.codes, case.affine)
    label = _centroid(pre["masks"][0], pre["affine"])
    assert np.linalg.norm(label - true_label) <= 0.25 * sp, (label, true_label)
    src_img = case.image[0] - case.image[0].min()
    img = pre["image"][0] - pre["image"][0].min()
    true_img = _centroid(src_img, case.affine)
    assert np.linalg.norm(_centroid(img, pre["affine"]) - true_img) <= 0.25 * sp
    ratio = abs(np.linalg.det(case.affine[:3, :3])) / sp ** 3
    assert abs(pre["masks"][0].sum() / (case.codes.sum() * ratio) - 1) < 0.01


@pytest.mark.parametrize("kind", list(CASES))
def test_prediction_on_the_grid_lands_back_where_the_structure_was(kind):
    """The preprocessed label, taken as the model's output, restored onto the input grid through
    world coordinates (as inference does) is the input's structure again."""
    case, sp = _sphere_case(kind)
    pre = preprocess_labelled(case, ["CT"], (sp, sp, sp))
    vol = Volume(case.image[0], case.affine)
    back = restore_prompt(torch.from_numpy(pre["masks"][0].astype(np.float32)), pre["affine"], vol).mask
    orig = case.codes.astype(bool)
    assert back.shape == orig.shape
    assert 2 * (back & orig).sum() / (back.sum() + orig.sum()) > 0.95  # 1.0 unless downsampled
    voxel = abs(np.linalg.det(case.affine[:3, :3])) ** (1 / 3)
    assert np.linalg.norm(_centroid(back, case.affine) - _centroid(orig, case.affine)) <= 0.25 * voxel


def test_to_grid_masks_use_the_label_sampler():
    case, sp = _sphere_case("ras_downsample")
    img, masks, aff = to_grid(case.image, case.affine, PreprocessSpec(spacing=(sp, sp, sp)), case.codes[None] > 0)
    assert np.array_equal(masks[0], resample_codes(case.codes, case.affine, aff, img.shape[1:]) > 0)


def test_border_voxels_keep_their_intensity():
    """The output rim past the outermost input centres takes the edge values, not the padding."""
    aff = np.diag([3.0, 3.0, 3.0, 1.0])
    vol = torch.full((1, 6, 5, 4), 7.0)
    new_aff, new_shape = ras_grid(aff, vol.shape[1:], (1.5, 1.5, 1.5))
    assert new_shape == (12, 10, 8) and np.allclose(new_aff[:3, 3], -0.75)
    edge = resample(vol, aff, new_aff, new_shape, padding=-5.0, padding_mode="edge")
    assert torch.allclose(edge, torch.tensor(7.0))
    zeros = resample(vol, aff, new_aff, new_shape, padding=-5.0)
    assert zeros[0, 0].max() < 7.0 and torch.allclose(zeros[0, 1:-1, 1:-1, 1:-1], torch.tensor(7.0))
    # past the input voxels' own extent the padding value still applies
    far = resample(vol, aff, _shifted(new_aff, -2), new_shape, padding=-5.0, padding_mode="edge")
    assert torch.all(far[0, :2] == -5.0) and torch.allclose(far[0, 2:], torch.tensor(7.0))


def _shifted(affine: np.ndarray, n: int) -> np.ndarray:
    """The same grid moved by ``n`` of its voxels along x."""
    out = affine.copy()
    out[0, 3] += n * affine[0, 0]
    return out
