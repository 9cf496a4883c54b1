"""Overlap, surface and volume metrics for binary segmentation masks (numpy + scipy only).

Surface conventions follow MONAI 1.6 (``get_mask_edges`` without sub-voxels, euclidean
``get_surface_distance``), so values agree with ``DiceMetric``, ``SurfaceDiceMetric`` and
``HausdorffDistanceMetric(percentile=95)`` on the same inputs:

* the surface of a mask is ``mask XOR binary_erosion(mask)`` with the face-connected (6-neighbour
  in 3D) structuring element and background outside the image, so voxels on the image border count
  as surface;
* a distance is the euclidean distance in mm between voxel centres (``index * spacing``) of a
  surface voxel of one mask and the nearest surface voxel of the other;
* NSD at tolerance ``t`` is ``(#pred-surface within t of gt-surface + #gt-surface within t of
  pred-surface) / (#pred-surface + #gt-surface)`` (voxel counts, no surface-area weighting);
* HD95 is the larger of the two directed 95th percentiles (linear interpolation).

Precision: by default distances and percentiles are float64. MONAI casts distances to float32 and
takes ``torch.quantile`` in float32, which moves HD95 by up to a few 1e-6 mm (float32 rounding at
tens of mm). ``monai_compatible=True`` (on :func:`nsd`, :func:`hd95`, :func:`evaluate_case`)
reproduces that arithmetic in numpy: float32 distances, the tolerance compared in float32, and the
percentile interpolated as torch does on CPU (rank in float64, float32 weight, fused multiply-add),
so values equal MONAI's on CPU. Use it only to compare with MONAI; float64 is the better estimate.

Empty masks (see :class:`EmptyPolicy`): with ``"one"`` (default) both-empty is a perfect score
(Dice 1, NSD 1, HD95 0, RVE 0) and exactly-one-empty is a total failure (Dice 0, NSD 0, HD95 =
``max_distance_mm``, which defaults to the diagonal of the image extent in mm, RVE -1 for an empty
prediction and +inf for an empty ground truth). With ``"exclude"`` every metric of a case whose
ground truth is empty is NaN (so ``np.nanmean`` skips it); an empty prediction against a non-empty
ground truth is still a failure scored as under ``"one"``.

Importing this module must stay cheap: no torch, no MONAI.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from sat.errors import InputError
from sat.eval.monai_f32 import quantile_f32

DEFAULT_TOLERANCE_MM = 1.0  # NSD tolerance used by evaluate_case unless told otherwise
METRIC_KEYS = ("dice", "nsd", "hd95", "rve", "gt_ml", "pred_ml")


class EmptyPolicy(str, Enum):
    """What a metric returns when the ground truth and/or the prediction is empty."""

    ONE = "one"  # both empty -> perfect score; exactly one empty -> worst score
    EXCLUDE = "exclude"  # empty ground truth -> NaN; empty prediction alone -> worst score


def _policy(empty: EmptyPolicy | str) -> EmptyPolicy:
    try:
        return EmptyPolicy(empty)
    except ValueError:
        raise InputError(f"empty={empty!r}: expected one of {[p.value for p in EmptyPolicy]}") from None


def _as_mask(mask: np.ndarray, name: str) -> np.ndarray:
    """Return ``mask`` as a bool array; integer masks are read as ``!= 0``, floats are refused."""
    arr = np.asarray(mask)
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.integer):
        return arr != 0
    raise InputError(f"{name} has dtype {arr.dtype}: expected a bool or integer mask (threshold probabilities)")


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_mask(pred, "pred"), _as_mask(gt, "gt")
    if p.shape != g.shape:
        raise InputError(f"pred shape {p.shape} != gt shape {g.shape}: masks must share one grid")
    return p, g


def _spacing(spacing: Sequence[float] | float, ndim: int) -> np.ndarray:
    try:
        sp = np.asarray(spacing, dtype=np.float64)
    except (TypeError, ValueError):
        sp = np.zeros(0)
    if sp.ndim == 0:
        sp = np.full(ndim, float(sp))
    if sp.shape != (ndim,) or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise InputError(f"spacing={spacing!r}: expected {ndim} positive finite voxel sizes in mm")
    return sp


def volume_ml(mask: np.ndarray, spacing: Sequence[float]) -> float:
    """Volume of a binary mask in millilitres (1 ml = 1000 mm^3)."""
    m = _as_mask(mask, "mask")
    return float(np.count_nonzero(m) * np.prod(_spacing(spacing, m.ndim)) / 1000.0)


def dice(pred: np.ndarray, gt: np.ndarray, empty: EmptyPolicy | str = EmptyPolicy.ONE) -> float:
    """Dice overlap ``2|P & G| / (|P| + |G|)`` of two binary masks of one shape, e.g. (D, H, W)."""
    policy = _policy(empty)
    p, g = _pair(pred, gt)
    n_p, n_g = np.count_nonzero(p), np.count_nonzero(g)
    if n_g == 0:
        return float("nan") if policy is EmptyPolicy.EXCLUDE else float(n_p == 0)
    return float(2.0 * np.count_nonzero(p & g) / (n_p + n_g))


def relative_volume_error(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], empty: EmptyPolicy | str = EmptyPolicy.ONE
) -> float:
    """Signed relative volume error ``(Vp - Vg) / Vg``; -1 for an empty prediction.

    An empty ground truth gives 0 (empty prediction) or +inf under ``"one"``, NaN under ``"exclude"``.
    """
    policy = _policy(empty)
    p, g = _pair(pred, gt)
    _spacing(spacing, p.ndim)  # validates; the voxel volume cancels in the ratio
    n_p, n_g = np.count_nonzero(p), np.count_nonzero(g)
    if n_g == 0:
        return float("nan") if policy is EmptyPolicy.EXCLUDE else (0.0 if n_p == 0 else float("inf"))
    return float((n_p - n_g) / n_g)


def _surface_points(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray, sp: np.ndarray) -> np.ndarray:
    """Centres in mm, (N, ndim), of the surface voxels of ``mask`` inside the box ``[lo, hi)``."""
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    crop = mask[box]
    edges = crop & ~ndimage.binary_erosion(crop, border_value=0)
    return (np.argwhere(edges) + lo) * sp


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Directed surface distances in mm between two binary masks (MONAI conventions, see module doc).

    Args:
        pred: predicted mask, e.g. (D, H, W), bool or integer.
        gt: ground-truth mask of the same shape.
        spacing: voxel size in mm per axis, in array-axis order.

    Returns:
        ``(d_pred_to_gt, d_gt_to_pred)``: float64 arrays, one entry per surface voxel of ``pred``
        (resp. ``gt``). When the other mask is empty every entry is ``inf``; an empty mask gives
        an empty array.
    """
    p, g = _pair(pred, gt)
    sp = _spacing(spacing, p.ndim)
    union = p | g
    if not union.any():
        return np.zeros(0), np.zeros(0)
    # Crop to the bounding box of pred | gt plus a one-voxel margin (clipped at the image border;
    # erosion treats outside-the-image as background, so clipping does not change the edges).
    nz = np.nonzero(union)
    lo = np.array([max(int(ax.min()) - 1, 0) for ax in nz])
    hi = np.array([min(int(ax.max()) + 2, n) for ax, n in zip(nz, p.shape)])
    pts_p = _surface_points(p, lo, hi, sp)  # (Np, ndim)
    pts_g = _surface_points(g, lo, hi, sp)  # (Ng, ndim)
    return _directed(pts_p, pts_g), _directed(pts_g, pts_p)


def _directed(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Distance from each point of ``src`` (N, ndim) to its nearest point of ``dst`` (M, ndim)."""
    if len(src) == 0:
        return np.zeros(0)
    if len(dst) == 0:
        return np.full(len(src), np.inf)
    return cKDTree(dst, leafsize=32).query(src, k=1)[0]


def _diagonal_mm(shape: tuple[int, ...], sp: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(shape) * sp))


def _nsd_from(
    d_pg: np.ndarray, d_gp: np.ndarray, tolerance_mm: float, policy: EmptyPolicy, f32: bool = False
) -> float:
    if len(d_gp) == 0:  # empty ground truth
        return float("nan") if policy is EmptyPolicy.EXCLUDE else float(len(d_pg) == 0)
    if f32:  # MONAI: float32 distances compared with the tolerance cast to float32
        d_pg, d_gp, tolerance_mm = d_pg.astype(np.float32), d_gp.astype(np.float32), np.float32(tolerance_mm)
    ok = np.count_nonzero(d_pg <= tolerance_mm) + np.count_nonzero(d_gp <= tolerance_mm)
    return float(ok / (len(d_pg) + len(d_gp)))


def _hd_from(
    d_pg: np.ndarray, d_gp: np.ndarray, percentile: float, policy: EmptyPolicy, worst: float, f32: bool = False
) -> float:
    if len(d_gp) == 0:  # empty ground truth
        return float("nan") if policy is EmptyPolicy.EXCLUDE else (0.0 if len(d_pg) == 0 else worst)
    if len(d_pg) == 0:  # empty prediction
        return worst
    if f32:
        return max(quantile_f32(d_pg, percentile / 100.0), quantile_f32(d_gp, percentile / 100.0))
    return float(max(np.percentile(d_pg, percentile), np.percentile(d_gp, percentile)))


def _check_tolerance(tolerance_mm: float) -> None:
    if not (np.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise InputError(f"tolerance_mm={tolerance_mm!r}: expected a finite distance >= 0 in mm")


def nsd(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    empty: EmptyPolicy | str = EmptyPolicy.ONE,
    *,
    monai_compatible: bool = False,
) -> float:
    """Normalised surface Dice: fraction of both surfaces lying within ``tolerance_mm`` of the other.

    ``monai_compatible`` compares float32 distances, as MONAI does (see module docstring).
    """
    policy = _policy(empty)
    _check_tolerance(tolerance_mm)
    return _nsd_from(*surface_distances(pred, gt, spacing), tolerance_mm, policy, monai_compatible)


def hd95(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    empty: EmptyPolicy | str = EmptyPolicy.ONE,
    *,
    percentile: float = 95.0,
    max_distance_mm: float | None = None,
    monai_compatible: bool = False,
) -> float:
    """Symmetric percentile Hausdorff distance in mm: max of the two directed percentiles.

    Args:
        pred: predicted mask, e.g. (D, H, W).
        gt: ground-truth mask of the same shape.
        spacing: voxel size in mm per axis.
        empty: empty-mask policy (see :class:`EmptyPolicy`).
        percentile: percentile of each directed distance set, in [0, 100].
        max_distance_mm: value scored when exactly one mask is empty; ``None`` means the diagonal
            of the image extent, ``norm(shape * spacing)``; pass ``float("inf")`` for infinity.
        monai_compatible: float32 distances and percentile exactly as MONAI on CPU (see module
            docstring); the default float64 result differs from MONAI's by float32 rounding only.
    """
    policy = _policy(empty)
    if not 0 <= percentile <= 100:
        raise InputError(f"percentile={percentile!r}: expected a value in [0, 100]")
    d_pg, d_gp = surface_distances(pred, gt, spacing)
    worst = max_distance_mm
    if worst is None:
        worst = _diagonal_mm(np.shape(pred), _spacing(spacing, np.ndim(pred)))
    return _hd_from(d_pg, d_gp, percentile, policy, float(worst), monai_compatible)


def evaluate_case(
    pred: Mapping[str, np.ndarray],
    gt: Mapping[str, np.ndarray],
    spacing: Sequence[float],
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    empty: EmptyPolicy | str = EmptyPolicy.ONE,
    *,
    max_distance_mm: float | None = None,
    monai_compatible: bool = False,
) -> dict[str, dict[str, float]]:
    """All metrics for every ground-truth structure of one case.

    The structures scored are the keys of ``gt``. A structure missing from ``pred`` is a failure
    and is scored as an empty prediction (Dice 0), never skipped. Keys of ``pred`` absent from
    ``gt`` are ignored (there is nothing to score them against).

    Args:
        pred: structure name -> predicted mask, each (D, H, W) on the ground-truth grid.
        gt: structure name -> ground-truth mask, each (D, H, W).
        spacing: voxel size in mm per axis.
        tolerance_mm: NSD tolerance in mm.
        empty: empty-mask policy (see :class:`EmptyPolicy`).
        max_distance_mm: HD95 of a one-sided empty case; ``None`` = image diagonal in mm.
        monai_compatible: NSD and HD95 in MONAI's float32 arithmetic (see module docstring).

    Returns:
        name -> {"dice", "nsd", "hd95", "rve", "gt_ml", "pred_ml"}.
    """
    policy = _policy(empty)
    _check_tolerance(tolerance_mm)
    out: dict[str, dict[str, float]] = {}
    for name, g_raw in gt.items():
        g = _as_mask(g_raw, f"gt[{name!r}]")
        p = _as_mask(pred[name], f"pred[{name!r}]") if name in pred else np.zeros_like(g)
        sp = _spacing(spacing, g.ndim)
        d_pg, d_gp = surface_distances(p, g, sp)
        worst = _diagonal_mm(g.shape, sp) if max_distance_mm is None else float(max_distance_mm)
        out[name] = {
            "dice": dice(p, g, policy),
            "nsd": _nsd_from(d_pg, d_gp, tolerance_mm, policy, monai_compatible),
            "hd95": _hd_from(d_pg, d_gp, 95.0, policy, worst, monai_compatible),
            "rve": relative_volume_error(p, g, sp, policy),
            "gt_ml": volume_ml(g, sp),
            "pred_ml": volume_ml(p, sp),
        }
    return out
