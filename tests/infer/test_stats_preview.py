"""Structure statistics on known cubes under LPS/oblique affines, and the three-plane preview PNG."""
from __future__ import annotations

import itertools
import json
import time
import warnings
from pathlib import Path

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest
from nibabel.affines import apply_affine

from sat.io.volume import Volume, load_volume
from sat.io.preview import _plane, render_preview
from sat.infer.stats import structure_statistics

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "totalseg_ct"
SHAPE = (10, 9, 8)
CUBE = (slice(2, 6), slice(1, 6), slice(0, 6))  # 4 x 5 x 6 = 120 voxels


def _affine(kind: str) -> np.ndarray:
    c, s = np.cos(0.4), np.sin(0.4)
    rot = {"lps": np.diag([-1.0, -1.0, 1.0]),
           "oblique": np.array([[c, -s, 0], [s * c, c * c, -s], [s * s, s * c, c]])}[kind]
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.8, 1.1, 2.5])
    aff[:3, 3] = [-12.5, 30.25, 101.0]
    return aff


def _cube_case(kind: str) -> tuple[np.ndarray, Volume, np.ndarray]:
    image = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[CUBE] = True
    prob = np.full(SHAPE, 0.25)
    prob[CUBE] = 0.75
    return mask, Volume(image, _affine(kind)), prob


def test_cube_statistics_lps() -> None:
    mask, vol, prob = _cube_case("lps")
    st = structure_statistics(mask, vol, prob, "left")
    assert st["voxel_count"] == 120 and st["volume_ml"] == pytest.approx(120 * 0.8 * 1.1 * 2.5 / 1000)
    # mean index (3.5, 3, 2.5): x = -12.5 - 0.8 * 3.5, y = 30.25 - 1.1 * 3, z = 101 + 2.5 * 2.5
    np.testing.assert_allclose(st["centroid_world_mm"], [-15.3, 26.95, 107.25], atol=1e-9)
    # voxel-box extent: x centres -14.1 .. -16.5 (+-0.4), y 29.15 .. 24.75 (+-0.55), z 101 .. 113.5 (+-1.25)
    np.testing.assert_allclose(st["bbox_world_mm"]["min"], [-16.9, 24.2, 99.75], atol=1e-9)
    np.testing.assert_allclose(st["bbox_world_mm"]["max"], [-13.7, 29.7, 114.75], atol=1e-9)
    assert st["bbox_voxel"] == {"min": [2, 1, 0], "max": [5, 5, 5]}
    assert st["intensity_mean"] == pytest.approx(vol.array[CUBE].mean())
    assert st["intensity_std"] == pytest.approx(vol.array[CUBE].std())
    assert st["mean_confidence"] == pytest.approx(0.75) and st["laterality"] == "left"
    json.dumps(st)  # plain Python types only


def test_cube_statistics_oblique() -> None:
    mask, vol, prob = _cube_case("oblique")
    st = structure_statistics(mask.astype(np.uint8), vol, None, "none")
    assert st["volume_ml"] == pytest.approx(0.264)  # a rotation keeps the volume
    np.testing.assert_allclose(st["centroid_world_mm"], apply_affine(vol.affine, [3.5, 3.0, 2.5]), atol=1e-9)
    corners = apply_affine(vol.affine, list(itertools.product([1.5, 5.5], [0.5, 5.5], [-0.5, 5.5])))
    np.testing.assert_allclose(st["bbox_world_mm"]["min"], corners.min(0), atol=1e-9)
    np.testing.assert_allclose(st["bbox_world_mm"]["max"], corners.max(0), atol=1e-9)
    assert st["mean_confidence"] is None


def test_empty_mask_and_shape_errors() -> None:
    mask, vol, prob = _cube_case("lps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st = structure_statistics(np.zeros(SHAPE, bool), vol, prob, "right")
    assert st["volume_ml"] == 0.0 and st["voxel_count"] == 0
    assert all(st[k] is None for k in ("intensity_mean", "intensity_std", "bbox_world_mm", "bbox_voxel",
                                       "centroid_world_mm", "mean_confidence"))
    with pytest.raises(ValueError, match="mask shape"):
        structure_statistics(mask[:-1], vol, None, "none")
    with pytest.raises(ValueError, match="prob shape"):
        structure_statistics(mask, vol, prob[:-1], "none")


def _phantom() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in (60, 50, 40)], indexing="ij"), -1)  # (X, Y, Z, 3)
    image = -1000 + 1040 * (np.linalg.norm(grid - [30, 25, 20], axis=-1) < 22)  # HU-like body
    sphere = np.linalg.norm(grid - [18, 25, 20], axis=-1) < 7
    box = np.zeros(image.shape, bool)
    box[35:45, 20:30, 15:25] = True
    return image.astype(np.float32) + 20 * sphere, {"sphere": sphere, "box": box, "missing": np.zeros_like(box)}


def test_preview_png_is_non_trivial(tmp_path: Path) -> None:
    image, masks = _phantom()
    out = render_preview(image, _affine("lps"), masks, tmp_path / "p.png", title="phantom")
    assert out.stat().st_size > 10_000
    pixels = matplotlib.image.imread(out)[..., :3]  # (H, W, 3)
    assert pixels.std() > 0.05
    colours = {tuple(c) for c in np.round(pixels.reshape(-1, 3), 1)}
    assert len(colours) > 20  # grey levels plus two overlay colours plus text


def test_preview_is_independent_of_storage_order(tmp_path: Path) -> None:
    """The same anatomy stored RAS or flipped + permuted must render to identical pixels."""
    image, masks = _phantom()
    ras = np.diag([0.9, 1.2, 2.0, 1.0])
    ras[:3, 3] = [5.0, -7.0, 30.0]
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, image.shape[0] - 1  # i' = n - 1 - i
    perm = [2, 0, 1]
    stored = (ras @ flip)[:, perm + [3]]  # voxel (k', i', j') -> world

    def store(a: np.ndarray) -> np.ndarray:
        return a[::-1].transpose(perm)

    a = render_preview(image, ras, masks, tmp_path / "ras.png")
    b = render_preview(store(image), stored, {k: store(m) for k, m in masks.items()}, tmp_path / "b.png")
    np.testing.assert_array_equal(matplotlib.image.imread(a), matplotlib.image.imread(b))


def test_display_plane_is_radiological() -> None:
    vol = np.zeros((5, 6, 7))  # RAS
    vol[4, 5, 3] = 1.0  # far right, far anterior
    axial = _plane(vol, 2, 3)  # (rows = A..P, cols = R..L)
    assert axial.shape == (6, 5) and axial[0, 0] == 1.0  # top-left: anterior and patient right
    vol[:] = 0
    vol[2, 0, 6] = 1.0  # most posterior, most superior
    sagittal = _plane(vol, 0, 2)  # (rows = S..I, cols = A..P)
    assert sagittal[0, -1] == 1.0


def test_preview_speed_100_cubed(tmp_path: Path) -> None:
    image = np.random.default_rng(0).normal(size=(100, 100, 100)).astype(np.float32)
    mask = np.zeros(image.shape, bool)
    mask[30:70, 40:60, 20:80] = True
    render_preview(image, _affine("oblique"), {"m": mask}, tmp_path / "warm.png")
    start = time.perf_counter()
    render_preview(image, _affine("oblique"), {"m": mask}, tmp_path / "t.png")
    assert time.perf_counter() - start < 3.0  # about 0.2 s here; loose for slow CI machines


@pytest.mark.skipif(not (SAMPLES / "seg.nii.gz").exists(), reason="shared CT sample not present")
def test_real_sample_statistics_and_preview(tmp_path: Path) -> None:
    vol = load_volume(SAMPLES / "ct.nii.gz")
    seg = np.asarray(nib.load(str(SAMPLES / "seg.nii.gz")).dataobj)
    liver = seg == 5
    st = structure_statistics(liver, vol, None, "none")
    assert st["volume_ml"] == pytest.approx(liver.sum() * 27 / 1000)
    assert 0 < st["intensity_mean"] < 200  # soft-tissue HU
    spleen = structure_statistics(seg == 1, vol, None, "none")
    assert st["centroid_world_mm"][0] > spleen["centroid_world_mm"][0]  # RAS: liver to the patient's right
    out = render_preview(vol.array, vol.affine, {"liver": liver, "spleen": seg == 1}, tmp_path / "s.png")
    assert matplotlib.image.imread(out)[..., :3].std() > 0.05


def test_axis_aligned_fast_path_matches_the_general_one():
    """Flipped and permuted grids take the index-extreme shortcut; it equals the per-voxel path."""
    import numpy as np

    from sat.infer.stats import StatsAccumulator

    rng = np.random.default_rng(1)
    mask = rng.random((12, 10, 8)) > 0.7
    image = rng.normal(size=mask.shape).astype(np.float32)
    affine = np.array([[0.0, -1.5, 0.0, 30.0], [0.0, 0.0, 2.5, -4.0], [-0.8, 0.0, 0.0, 7.0], [0, 0, 0, 1]])
    fast, slow = StatsAccumulator(affine), StatsAccumulator(affine)
    slow._axis = None  # force the per-voxel world extremes
    assert fast._axis is not None
    for acc in (fast, slow):
        acc.add((0, 0, 0), mask[:6], image[:6])
        acc.add((6, 0, 0), mask[6:], image[6:])
    a, b = fast.result(), slow.result()
    assert a.keys() == b.keys()
    for k in a:
        assert np.allclose(a[k], b[k]) if isinstance(a[k], (float, list)) else a[k] == b[k], k
