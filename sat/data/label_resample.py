"""Resampling of label code maps onto another grid, faithful to volumes.

A code map (0 = background) is resampled by point sampling: each target voxel takes the code
of the source voxel cube its centre falls in. Point sampling a partition of cubes is unbiased:
a structure's expected volume is preserved, whatever the two spacings. The one trap is ties:
a target centre exactly on a cube face. ``torch.grid_sample(mode="nearest")`` rounds half to
even, so with commensurate spacings (3 mm -> 1.5 mm, 0.8 mm -> 1.5 mm) every other source
voxel wins all ties, and thin structures gain or lose 5-10 % of their volume; the result also
depends on how the file stores its axes. Here every tie goes the same way in world space (a
shift of 1e-3 voxel along a fixed RAS direction), which moves a boundary by at most half a target
voxel, keeps volumes, and gives the same masks for RAS, LPS or permuted storage.
"""
from __future__ import annotations

import numpy as np

_TIE = np.array([1.0, 1.1, 1.2]) * 1e-3  # world tie-break direction (mm per mm of voxel size)


def resample_codes(codes: np.ndarray, src_affine: np.ndarray, dst_affine: np.ndarray,
                   dst_shape: tuple[int, int, int], slab: int = 8) -> np.ndarray:
    """Resample an exclusive code map onto another grid by consistent point sampling.

    Args:
        codes: (X, Y, Z) unsigned code map on the source grid (0 = background).
        src_affine, dst_affine: voxel -> world affines of both grids.
        dst_shape: target grid shape (X', Y', Z').
        slab: target X-planes computed at once (bounds the memory of the index grid).

    Returns:
        (X', Y', Z') code map of ``codes``' dtype; target voxels outside the source grid are 0.
    """
    dst_shape = tuple(int(n) for n in dst_shape)
    m = np.linalg.inv(np.asarray(src_affine, np.float64)) @ np.asarray(dst_affine, np.float64)
    src_lin = np.asarray(src_affine, np.float64)[:3, :3]
    tie = np.linalg.solve(src_lin, _TIE * float(np.linalg.norm(src_lin, axis=0).min()))  # ~1e-3 voxel
    lin, off = m[:3, :3], m[:3, 3] + 0.5 + tie
    jj, kk = np.meshgrid(np.arange(dst_shape[1]), np.arange(dst_shape[2]), indexing="ij")
    base = jj[..., None] * lin[:, 1] + kk[..., None] * lin[:, 2] + off  # (Y', Z', 3)
    src_shape = np.array(codes.shape)
    out = np.zeros(dst_shape, dtype=codes.dtype)
    for x0 in range(0, dst_shape[0], slab):
        ii = np.arange(x0, min(x0 + slab, dst_shape[0]))
        idx = np.floor(base[None] + ii[:, None, None, None] * lin[:, 0]).astype(np.int64)  # (x, Y', Z', 3)
        inside = np.all((idx >= 0) & (idx < src_shape), axis=-1)
        np.clip(idx, 0, src_shape - 1, out=idx)
        vals = codes[idx[..., 0], idx[..., 1], idx[..., 2]]
        out[x0:x0 + len(ii)] = np.where(inside, vals, 0)
    return out
