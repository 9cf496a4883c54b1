"""The geometry target of shard building, measured: volume and world centroid per structure.

For every structure of at least ``min_ml``, the physical volume (ml) before and after
preprocessing must agree within 2 % and the world-space centroid must move by less than one
voxel of the preprocessed grid. Synthetic cases cover what real data throws at us: LPS storage,
oblique and permuted axes, anisotropic voxels, overlapping labels.
"""
from __future__ import annotations

import numpy as np

from sat.data.adapters import Case, codes_from_masks
from sat.data.shard_build import preprocess_labelled

VOLUME_TOL = 0.02  # relative volume error allowed


def _rotation(deg_z: float, deg_x: float) -> np.ndarray:
    z, x = np.deg2rad(deg_z), np.deg2rad(deg_x)
    rz = np.array([[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]])
    return rz @ rx


# (name, centre mm, radii mm, HU): ~264, ~63, ~10.6 and ~20 ml structures plus a tumour inside
# the first one (overlapping labels); the thin long one behaves like a vessel.
_STRUCTURES = [("organ_a", (30, -10, 0), (45, 35, 40), 60), ("organ_b", (-35, 12, -10), (25, 20, 30), 90),
               ("organ_c", (-20, -30, 35), (15, 13, 13), 120), ("tube", (0, 30, 0), (8, 8, 75), 200),
               ("tumour", (35, -5, 5), (12, 10, 11), 30)]


def synthetic_case(kind: str) -> Case:
    """A CT-like case with ellipsoid structures stored in an awkward grid.

    Args:
        kind: ``"lps"`` (LPS axes, 0.8 x 0.8 x 2.5 mm), ``"oblique"`` (rotated 17 and 11 degrees,
            1 x 1 x 2 mm) or ``"permuted"`` (axis order S, L, P at 2.5 x 0.9 x 0.9 mm).
    """
    if kind == "lps":
        lin, shape = np.diag([-0.8, -0.8, 2.5]), (200, 200, 64)
    elif kind == "oblique":
        lin, shape = _rotation(17, 11) @ np.diag([1.0, 1.0, 2.0]), (180, 180, 90)
    elif kind == "permuted":
        lin, shape = np.array([[0, -0.9, 0], [0, 0, -0.9], [2.5, 0, 0]]), (64, 180, 180)  # S, L, P
    else:
        raise ValueError(f"kind must be 'lps', 'oblique' or 'permuted', got {kind!r}")
    affine = np.eye(4)
    affine[:3, :3] = lin
    affine[:3, 3] = -lin @ ((np.array(shape) - 1) / 2.0)  # grid centre at the world origin
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), -1)
    world = ijk @ lin.T.astype(np.float32) + affine[:3, 3].astype(np.float32)  # (X, Y, Z, 3)
    image = np.where(world[..., 0] ** 2 + world[..., 1] ** 2 < 70.0 ** 2, 20.0, -1000.0).astype(np.float32)
    masks = np.zeros((len(_STRUCTURES), *shape), dtype=bool)
    for k, (_, centre, radii, hu) in enumerate(_STRUCTURES):
        masks[k] = (((world - np.float32(centre)) / np.float32(radii)) ** 2).sum(-1) <= 1.0
        image[masks[k]] = hu
    codes, lut = codes_from_masks(masks)
    return Case(f"synthetic_{kind}", image[None], affine, [s[0] for s in _STRUCTURES], codes, lut)


def _native_moments(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Per-concept voxel counts (K,) and summed voxel indices (K, 3), without building masks."""
    n = case.lut.shape[1]
    count, sums = np.zeros(n), np.zeros((n, 3))
    ny, nz = case.codes.shape[1:]
    jj = np.broadcast_to(np.arange(ny)[:, None], (ny, nz)).ravel()
    kk = np.broadcast_to(np.arange(nz)[None, :], (ny, nz)).ravel()
    for i, plane in enumerate(case.codes):
        flat = plane.ravel()
        c = np.bincount(flat, minlength=n)
        count += c
        sums[:, 0] += c * i
        sums[:, 1] += np.bincount(flat, weights=jj, minlength=n)
        sums[:, 2] += np.bincount(flat, weights=kk, minlength=n)
    lut = case.lut.astype(np.float64)
    return lut @ count, lut @ sums


def check_geometry(case: Case, channels: list[str], spacing: tuple[float, float, float],
                   min_ml: float = 10.0) -> list[dict]:
    """Volume and centroid of every structure >= ``min_ml`` before vs after preprocessing.

    Returns:
        One row per structure: ``ml_before``, ``ml_after``, ``volume_error_pct``,
        ``centroid_shift_mm``, ``voxel_mm`` (smallest output voxel edge) and ``ok``.
    """
    pre = preprocess_labelled(case, channels, spacing)
    count, sums = _native_moments(case)
    vox_before = abs(float(np.linalg.det(case.affine[:3, :3]))) / 1000.0
    vox_after = float(np.prod(spacing)) / 1000.0
    rows = []
    for k, cid in enumerate(case.concepts):
        ml_before = count[k] * vox_before
        if ml_before < min_ml:
            continue
        idx = np.argwhere(pre["masks"][k])
        ml_after = len(idx) * vox_after
        c_before = case.affine[:3, :3] @ (sums[k] / count[k]) + case.affine[:3, 3]
        c_after = (pre["affine"][:3, :3] @ idx.mean(0) + pre["affine"][:3, 3]) if len(idx) else np.full(3, np.inf)
        err = abs(ml_after - ml_before) / ml_before
        shift = float(np.linalg.norm(c_after - c_before))
        rows.append({"case": case.case_id, "structure": cid, "ml_before": round(ml_before, 2),
                     "ml_after": round(ml_after, 2), "volume_error_pct": round(100 * err, 3),
                     "centroid_shift_mm": round(shift, 3), "voxel_mm": float(min(spacing)),
                     "ok": bool(err <= VOLUME_TOL and shift <= min(spacing))})
    return rows


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of :func:`check_geometry` rows."""
    head = f"{'case':<22}{'structure':<30}{'ml before':>10}{'ml after':>10}{'vol err %':>10}{'shift mm':>10}  ok"
    lines = [head] + [f"{r['case']:<22}{r['structure'][:29]:<30}{r['ml_before']:>10.1f}{r['ml_after']:>10.1f}"
                      f"{r['volume_error_pct']:>10.2f}{r['centroid_shift_mm']:>10.2f}  {'yes' if r['ok'] else 'NO'}"
                      for r in rows]
    return "\n".join(lines)
