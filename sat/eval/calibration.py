"""Voxelwise calibration of foreground probabilities: reliability curve and expected calibration error.

Definition (binary, positive-class): each voxel carries a predicted foreground probability ``p`` and
a ground-truth label ``y`` in {0, 1}. ``[0, 1]`` is split into ``n_bins`` equal-width bins
``[k/n, (k+1)/n)``, the last one closed at 1. For bin ``k`` with ``n_k`` voxels:

* confidence ``conf_k`` = mean of ``p`` over the bin;
* accuracy ``acc_k`` = observed foreground frequency, mean of ``y`` over the bin;
* ``ECE = sum_k (n_k / N) * |acc_k - conf_k|`` over non-empty bins (``N`` = voxels scored).

This is calibration of the foreground probability itself, not the "top-label" variant that uses
``max(p, 1 - p)``. Background voxels dominate whole volumes and pull ECE towards 0, so pass
``mask`` (e.g. a dilated bounding box of the structure) to score a region of interest.
Importing this module must stay cheap: numpy only.
"""
from __future__ import annotations

import numpy as np

from sat.errors import InputError

DEFAULT_N_BINS = 15  # equal-width bins on [0, 1]


def _flatten(prob: np.ndarray, gt: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(prob)
    g = np.asarray(gt)
    if p.shape != g.shape:
        raise InputError(f"prob shape {p.shape} != gt shape {g.shape}: arrays must share one grid")
    if not np.issubdtype(p.dtype, np.floating):
        raise InputError(f"prob has dtype {p.dtype}: expected floating-point probabilities in [0, 1]")
    if g.dtype != bool and not np.issubdtype(g.dtype, np.integer):
        raise InputError(f"gt has dtype {g.dtype}: expected a bool or integer 0/1 mask")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != p.shape:
            raise InputError(f"mask shape {m.shape} != prob shape {p.shape}: arrays must share one grid")
        p, g = p[m], g[m]
    p = p.ravel().astype(np.float64)  # (N,)
    g = (g.ravel() != 0).astype(np.float64)  # (N,)
    if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1 or np.isnan(p).any()):
        raise InputError(f"prob spans [{np.nanmin(p)}, {np.nanmax(p)}] or holds NaN: expected values in [0, 1]")
    return p, g


def reliability_curve(
    prob: np.ndarray, gt: np.ndarray, n_bins: int = DEFAULT_N_BINS, *, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin observed frequency and mean confidence of voxelwise foreground probabilities.

    Args:
        prob: foreground probabilities, any shape, e.g. (D, H, W), floating point in [0, 1].
        gt: ground-truth mask of the same shape (bool or integer, nonzero = foreground).
        n_bins: number of equal-width bins on [0, 1].
        mask: optional bool array of the same shape; only voxels where it is True are scored.

    Returns:
        ``(bin_centers, accuracy, confidence, counts)``, each (n_bins,). ``accuracy`` and
        ``confidence`` are NaN in empty bins; ``counts`` is int64.

    Raises:
        InputError: mismatched shapes, bad dtypes, probabilities outside [0, 1], or ``n_bins < 1``.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise InputError(f"n_bins={n_bins!r}: expected a positive integer")
    n_bins = int(n_bins)
    p, g = _flatten(prob, gt, mask)
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)  # (N,) bin of each voxel
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(idx, weights=p, minlength=n_bins) / counts
        accuracy = np.bincount(idx, weights=g, minlength=n_bins) / counts
    centers = (np.arange(n_bins) + 0.5) / n_bins
    return centers, accuracy, confidence, counts.astype(np.int64)


def expected_calibration_error(
    prob: np.ndarray, gt: np.ndarray, n_bins: int = DEFAULT_N_BINS, *, mask: np.ndarray | None = None
) -> float:
    """Expected calibration error of voxelwise foreground probabilities (see module docstring).

    Args:
        prob: foreground probabilities, e.g. (D, H, W), in [0, 1].
        gt: ground-truth mask of the same shape.
        n_bins: number of equal-width bins on [0, 1].
        mask: optional bool array restricting the voxels scored.

    Returns:
        ECE in [0, 1]; NaN when no voxel is scored.
    """
    _, accuracy, confidence, counts = reliability_curve(prob, gt, n_bins, mask=mask)
    total = counts.sum()
    if total == 0:
        return float("nan")
    filled = counts > 0
    return float(np.sum(counts[filled] / total * np.abs(accuracy[filled] - confidence[filled])))
