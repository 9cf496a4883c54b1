"""Segmentation metrics: oracle comparison with MONAI, empty conventions, hand-computed cases."""
from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import ndimage

from sat.errors import InputError
from sat.eval.metrics import (
    EmptyPolicy,
    dice,
    evaluate_case,
    hd95,
    nsd,
    relative_volume_error,
    surface_distances,
    volume_ml,
)
from sat.eval.monai_f32 import quantile_f32

SHAPE = (24, 20, 16)
N_CASES = 100
TOL_MM = 2.0


def _blob(rng: np.random.Generator, noise: np.ndarray, frac: float) -> np.ndarray:
    smooth = ndimage.gaussian_filter(noise, sigma=float(rng.uniform(1.5, 3.0)))
    return smooth > np.quantile(smooth, 1.0 - frac)  # (D, H, W) bool, `frac` of the voxels


def _random_cases(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of related random blobs: (N, D, H, W) pred, (N, D, H, W) gt, (N, 3) spacing."""
    rng = np.random.default_rng(seed)
    preds, gts, spacings = [], [], []
    for i in range(N_CASES):
        noise = rng.normal(size=SHAPE)
        frac = float(rng.uniform(0.05, 0.4))
        gts.append(_blob(rng, noise, frac))
        jitter = noise + rng.uniform(0.1, 1.5) * rng.normal(size=SHAPE)
        pred = _blob(rng, jitter, frac * rng.uniform(0.6, 1.4))
        if i % 10 == 0:  # some grossly misplaced predictions
            pred = np.roll(pred, int(rng.integers(3, 8)), axis=int(rng.integers(0, 3)))
        preds.append(pred)
        spacings.append((0.8, 1.3, 3.0) if i == 0 else rng.uniform([0.5, 0.5, 1.0], [1.5, 1.5, 3.5]))
    return np.stack(preds), np.stack(gts), np.asarray(spacings)


@pytest.fixture(scope="module")
def monai_reference() -> dict[str, np.ndarray]:
    torch = pytest.importorskip("torch")
    mm = pytest.importorskip("monai.metrics")
    pred, gt, spacing = _random_cases()

    def onehot(x: np.ndarray) -> torch.Tensor:  # (N, D, H, W) -> (N, 2, D, H, W)
        return torch.from_numpy(np.stack([~x, x], axis=1).astype(np.float32))

    yp, yt = onehot(pred), onehot(gt)
    sp = [list(map(float, s)) for s in spacing]
    with warnings.catch_warnings():  # MONAI's own deprecation notice inside get_mask_edges
        warnings.simplefilter("ignore", FutureWarning)
        ref = {
            "dice": mm.DiceMetric(include_background=False, reduction="none")(yp, yt),
            "nsd": mm.SurfaceDiceMetric([TOL_MM], include_background=False, reduction="none")(yp, yt, spacing=sp),
            "hd95": mm.HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")(
                yp, yt, spacing=sp
            ),
        }
    out = {k: v.numpy()[:, 0].astype(np.float64) for k, v in ref.items()}  # (N,) per metric
    out.update(pred=pred, gt=gt, spacing=spacing)
    return out


@pytest.mark.parametrize("metric", ["dice", "nsd", "hd95"])
def test_matches_monai(monai_reference: dict[str, np.ndarray], metric: str) -> None:
    """The issue's target: within 1e-6 of MONAI on 100 random anisotropic cases (MONAI arithmetic)."""
    r = monai_reference
    fns = {
        "dice": lambda p, g, s: dice(p, g),
        "nsd": lambda p, g, s: nsd(p, g, s, tolerance_mm=TOL_MM, monai_compatible=True),
        "hd95": lambda p, g, s: hd95(p, g, s, monai_compatible=True),
    }
    ours = np.array([fns[metric](p, g, s) for p, g, s in zip(r["pred"], r["gt"], r["spacing"])])
    ref = r[metric]
    assert len(ref) == N_CASES and np.all(np.isfinite(ref)) and np.ptp(ref) > 0.1  # varied, non-degenerate
    assert np.max(np.abs(ours - ref)) <= 1e-6
    if metric == "hd95":  # in fact bit-identical: same surfaces, distances and float32 quantile
        assert np.array_equal(ours, ref)


@pytest.mark.parametrize("metric", ["nsd", "hd95"])
def test_float64_default_differs_only_by_float32_rounding(monai_reference: dict[str, np.ndarray], metric: str) -> None:
    r = monai_reference
    fn = (lambda p, g, s: nsd(p, g, s, TOL_MM)) if metric == "nsd" else hd95
    ours = np.array([fn(p, g, s) for p, g, s in zip(r["pred"], r["gt"], r["spacing"])])
    # MONAI rounds distances and the percentile to float32 (relative 2^-24 per rounding)
    assert np.max(np.abs(ours - r[metric]) / np.maximum(np.abs(r[metric]), 1.0)) <= 8e-6


def test_quantile_f32_is_bit_identical_to_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for i in range(400):
        d = rng.gamma(2.0, rng.uniform(0.01, 300.0), size=int(rng.integers(1, 2000))).astype(np.float32)
        q = 0.95 if i % 2 else float(rng.uniform())
        assert quantile_f32(d, q) == torch.quantile(torch.from_numpy(d), q).item()


def test_hd95_float32_replica_is_exact(monai_reference: dict[str, np.ndarray]) -> None:
    import torch

    r = monai_reference
    replica = []
    for p, g, s in zip(r["pred"], r["gt"], r["spacing"]):
        d = [torch.from_numpy(x.astype(np.float32)) for x in surface_distances(p, g, s)]
        replica.append(max(torch.quantile(x, 0.95).item() for x in d))
    assert np.array_equal(np.array(replica), r["hd95"])


def test_evaluate_case_agrees_with_single_metrics(monai_reference: dict[str, np.ndarray]) -> None:
    r = monai_reference
    p, g, s = r["pred"][3], r["gt"][3], r["spacing"][3]
    res = evaluate_case({"a": p}, {"a": g}, s, tolerance_mm=TOL_MM)["a"]
    assert res["dice"] == dice(p, g) and res["nsd"] == nsd(p, g, s, TOL_MM) and res["hd95"] == hd95(p, g, s)
    assert res["rve"] == pytest.approx(relative_volume_error(p, g, s))
    assert res["gt_ml"] == pytest.approx(g.sum() * np.prod(s) / 1000)


def test_nested_cubes_hand_computed() -> None:
    gt = np.zeros((10, 10, 10), bool)
    gt[2:8, 2:8, 2:8] = True  # 216 voxels, surface 152 = 96 face + 48 edge + 8 corner
    pred = np.zeros_like(gt)
    pred[3:7, 3:7, 3:7] = True  # 64 voxels, surface 56, each 1 voxel inside a gt face
    d_pg, d_gp = surface_distances(pred, gt, (1.0, 1.0, 1.0))
    assert len(d_pg) == 56 and np.allclose(d_pg, 1.0)
    assert sorted(np.round(d_gp**2).astype(int).tolist()) == [1] * 96 + [2] * 48 + [3] * 8
    # numpy 'linear' percentile: position 0.95 * 151 = 143.45 between sorted[143]=sqrt2 and sorted[144]=sqrt3
    assert hd95(pred, gt, (1, 1, 1)) == pytest.approx(math.sqrt(2) + 0.45 * (math.sqrt(3) - math.sqrt(2)))
    assert nsd(pred, gt, (1, 1, 1), tolerance_mm=1.0) == pytest.approx(152 / 208)
    assert nsd(pred, gt, (1, 1, 1), tolerance_mm=1.5) == pytest.approx(200 / 208)
    assert dice(pred, gt) == pytest.approx(128 / 280)
    assert relative_volume_error(pred, gt, (1, 1, 1)) == pytest.approx((64 - 216) / 216)
    # anisotropic: scaling axis 0 by 2 doubles the face distances along it
    assert hd95(pred, gt, (2.0, 1.0, 1.0)) >= 2.0


def test_shifted_cubes_and_single_voxels() -> None:
    a = np.zeros((12, 8, 8), bool)
    a[0:4, 0:4, 0:4] = True
    b = np.roll(a, 2, axis=0)
    assert dice(a, b) == pytest.approx(0.5)
    assert volume_ml(a, (2.0, 1.5, 1.0)) == pytest.approx(64 * 3.0 / 1000)
    p, g = np.zeros((5, 3, 3), bool), np.zeros((5, 3, 3), bool)
    p[0, 0, 0], g[3, 0, 0] = True, True
    assert hd95(p, g, (2.0, 1.0, 1.0)) == pytest.approx(6.0)
    assert nsd(p, g, (2.0, 1.0, 1.0), tolerance_mm=5.9) == 0.0
    assert nsd(p, g, (2.0, 1.0, 1.0), tolerance_mm=6.0) == 1.0
    assert evaluate_case({"x": a}, {"x": a}, (1, 1, 1))["x"] == pytest.approx(
        {"dice": 1.0, "nsd": 1.0, "hd95": 0.0, "rve": 0.0, "gt_ml": 0.064, "pred_ml": 0.064}
    )


def test_empty_policy_one() -> None:
    empty = np.zeros((6, 5, 4), bool)
    full = empty.copy()
    full[1:4, 1:3, 1:3] = True
    sp = (1.0, 2.0, 3.0)
    diag = float(np.linalg.norm(np.array(empty.shape) * sp))
    both = evaluate_case({"x": empty}, {"x": empty}, sp)["x"]
    assert both == {"dice": 1.0, "nsd": 1.0, "hd95": 0.0, "rve": 0.0, "gt_ml": 0.0, "pred_ml": 0.0}
    missed = evaluate_case({"x": empty}, {"x": full}, sp)["x"]
    assert (missed["dice"], missed["nsd"], missed["hd95"], missed["rve"]) == (0.0, 0.0, pytest.approx(diag), -1.0)
    spurious = evaluate_case({"x": full}, {"x": empty}, sp)["x"]
    assert (spurious["dice"], spurious["nsd"], spurious["rve"]) == (0.0, 0.0, math.inf)
    assert spurious["hd95"] == pytest.approx(diag)
    assert hd95(full, empty, sp, max_distance_mm=math.inf) == math.inf
    d_pg, d_gp = surface_distances(full, empty, sp)
    assert np.all(np.isinf(d_pg)) and len(d_pg) > 0 and len(d_gp) == 0


def test_empty_policy_exclude() -> None:
    empty = np.zeros((6, 5, 4), bool)
    full = empty.copy()
    full[2, 2, 2] = True
    for pred in (empty, full):  # empty ground truth: every metric is NaN, whatever the prediction
        res = evaluate_case({"x": pred}, {"x": empty}, (1, 1, 1), empty="exclude")["x"]
        assert all(math.isnan(res[k]) for k in ("dice", "nsd", "hd95", "rve"))
        assert res["gt_ml"] == 0.0
    missed = evaluate_case({"x": empty}, {"x": full}, (1, 1, 1), empty=EmptyPolicy.EXCLUDE)["x"]
    assert missed["dice"] == 0.0 and missed["nsd"] == 0.0 and missed["hd95"] > 0 and missed["rve"] == -1.0


def test_missing_prediction_is_failure() -> None:
    gt = np.zeros((8, 8, 8), bool)
    gt[2:5, 2:5, 2:5] = True
    res = evaluate_case({"other": gt}, {"liver": gt, "spleen": gt}, (1, 1, 1))
    assert set(res) == {"liver", "spleen"}  # scored per gt structure, extras in pred ignored
    assert res["liver"]["dice"] == 0.0 and res["liver"]["nsd"] == 0.0 and res["liver"]["pred_ml"] == 0.0
    assert res["liver"]["hd95"] == pytest.approx(math.sqrt(3 * 64))


def test_bad_input() -> None:
    m = np.ones((4, 4, 4), bool)
    with pytest.raises(InputError, match="shape"):
        dice(m, m[:3])
    with pytest.raises(InputError, match="spacing"):
        hd95(m, m, (1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="spacing"):
        nsd(m, m, (1.0, 1.0))
    with pytest.raises(InputError, match="dtype"):
        dice(m.astype(np.float32), m)
    with pytest.raises(InputError, match="empty"):
        dice(m, m, empty="zero")
    with pytest.raises(InputError, match="tolerance"):
        nsd(m, m, (1, 1, 1), tolerance_mm=-1.0)
    assert dice(m.astype(np.uint8), m) == 1.0  # integer masks are read as != 0


def test_import_is_light() -> None:
    mods = "sat.eval.metrics, sat.eval.calibration, sat.eval.report, sat.eval.summary"
    code = f"import sys, {mods}; print('torch' in sys.modules, 'monai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
