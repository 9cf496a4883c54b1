"""Voxelwise calibration: reliability curve and ECE on synthetic cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest

from sat.errors import InputError
from sat.eval.calibration import expected_calibration_error, reliability_curve


def _exact_case(levels: list[tuple[float, float]], n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Voxels with probability p whose observed foreground frequency is exactly f, per (p, f)."""
    probs, labels = [], []
    for p, f in levels:
        k = round(f * n)
        probs.append(np.full(n, p))
        labels.append(np.arange(n) < k)
    shape = (len(levels), 10, n // 10)
    return np.concatenate(probs).reshape(shape), np.concatenate(labels).reshape(shape)


def test_perfectly_calibrated_is_zero() -> None:
    prob, gt = _exact_case([(0.05, 0.05), (0.3, 0.3), (0.62, 0.62), (0.97, 0.97)])
    assert expected_calibration_error(prob, gt) == pytest.approx(0.0, abs=1e-12)


def test_sampled_calibrated_is_small() -> None:
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=(64, 64, 64))
    gt = rng.uniform(size=prob.shape) < prob  # y ~ Bernoulli(p)
    assert expected_calibration_error(prob, gt, n_bins=15) < 5e-3


def test_overconfident_expected_value() -> None:
    prob, gt = _exact_case([(0.9, 0.6)])
    assert expected_calibration_error(prob, gt) == pytest.approx(0.3)
    # half the voxels at p=0.95 (true 0.75), half at p=0.05 (true 0.25): ECE = 0.5*0.2 + 0.5*0.2
    prob, gt = _exact_case([(0.95, 0.75), (0.05, 0.25)])
    assert expected_calibration_error(prob, gt) == pytest.approx(0.2)


def test_reliability_curve_bins() -> None:
    prob = np.array([0.0, 0.1, 0.24, 0.25, 0.6, 1.0])
    gt = np.array([0, 0, 1, 1, 1, 1], dtype=bool)
    centers, acc, conf, counts = reliability_curve(prob, gt, n_bins=4)
    np.testing.assert_allclose(centers, [0.125, 0.375, 0.625, 0.875])
    np.testing.assert_array_equal(counts, [3, 1, 1, 1])  # 0.25 opens bin 1; 1.0 closes the last bin
    np.testing.assert_allclose(acc, [1 / 3, 1, 1, 1])
    np.testing.assert_allclose(conf, [0.34 / 3, 0.25, 0.6, 1.0])
    _, acc, conf, counts = reliability_curve(np.array([0.1, 0.2]), np.array([0, 1]), n_bins=5)
    assert counts.tolist() == [1, 1, 0, 0, 0] and np.isnan(acc[2:]).all() and np.isnan(conf[2:]).all()


def test_mask_restricts_voxels() -> None:
    prob, gt = _exact_case([(0.9, 0.6), (0.3, 0.3)])
    mask = np.zeros(prob.shape, bool)
    mask[1] = True  # only the calibrated half
    assert expected_calibration_error(prob, gt, mask=mask) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(expected_calibration_error(prob, gt, mask=np.zeros_like(mask)))


def test_bad_input() -> None:
    p = np.full((2, 2, 2), 0.5)
    g = np.ones((2, 2, 2), bool)
    with pytest.raises(InputError, match="shape"):
        expected_calibration_error(p, g[:1])
    with pytest.raises(InputError, match="0, 1"):
        expected_calibration_error(p * 3, g)
    with pytest.raises(InputError, match="n_bins"):
        reliability_curve(p, g, n_bins=0)
    with pytest.raises(InputError, match="dtype"):
        expected_calibration_error(g, g)
