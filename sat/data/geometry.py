"""Voxel-grid geometry: affines, target grids and resampling between grids.

Conventions: arrays are indexed (X, Y, Z) in the file's voxel order and an affine maps voxel
indices (i, j, k, 1) to world RAS millimetres (nibabel convention). Resampling goes through world
coordinates, so RAS, LPS, permuted and oblique inputs share one code path.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def spacing_of(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing in mm: the norms of the affine's three columns. Shape (3,)."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def world_bounds(affine: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Min and max world coordinates (mm) of the voxel centres of a grid. Each shape (3,)."""
    corners = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1)
                        for k in (0, shape[2] - 1)])
    world = corners @ np.asarray(affine, dtype=np.float64).T
    return world[:, :3].min(0), world[:, :3].max(0)


def ras_grid(affine: np.ndarray, shape: tuple[int, int, int],
             spacing: tuple[float, float, float]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An axis-aligned RAS grid at ``spacing`` that covers the source grid's world extent.

    Returns:
        ``(affine, shape)`` of the new grid; its first voxel centre sits at the minimum corner.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    if sp.shape != (3,) or not np.all(sp > 0):
        raise ValueError(f"spacing must be three positive numbers, got {spacing!r}")
    lo, hi = world_bounds(affine, shape)
    new_shape = tuple(int(math.floor((h - l) / s + 1e-6)) + 1 for l, h, s in zip(lo, hi, sp))
    new_affine = np.diag([*sp, 1.0])
    new_affine[:3, 3] = lo
    return new_affine, new_shape


def crop_affine(affine: np.ndarray, start: tuple[int, int, int]) -> np.ndarray:
    """Affine of a sub-grid whose voxel (0, 0, 0) is voxel ``start`` of the parent grid."""
    out = np.array(affine, dtype=np.float64, copy=True)
    out[:3, 3] = affine[:3, :3] @ np.asarray(start, dtype=np.float64) + affine[:3, 3]
    return out


@torch.no_grad()
def resample_slabs(volume: torch.Tensor, src_affine: np.ndarray, dst_affine: np.ndarray,
                   dst_shape: tuple[int, int, int], *, mode: str = "bilinear", padding: float = 0.0,
                   slab: int = 16):
    """Yield ``(x0, x1, values)`` for consecutive target X-slabs; ``values`` is (C, x1-x0, Y', Z').

    The sampling grid of one slab is built once and shared by all channels, and only one slab of
    output exists at a time, so callers can reduce (threshold, cast) large outputs as they go.
    """
    if volume.ndim != 4:
        raise ValueError(f"volume must be (C, X, Y, Z), got shape {tuple(volume.shape)}")
    src_shape = volume.shape[1:]
    m = torch.as_tensor(np.linalg.inv(src_affine) @ dst_affine, dtype=torch.float64)
    denom = torch.tensor([max(n - 1, 1) for n in src_shape], dtype=torch.float64)
    # fold voxel->normalised-coordinate scaling into one float32 affine map; rows reversed to
    # the (z, y, x) component order grid_sample expects, so no grid needs flipping
    lin = (2.0 * m[:3, :3] / denom[:, None]).float().flip(0)
    off = (2.0 * m[:3, 3] / denom - 1.0).float().flip(0)
    jj, kk = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in dst_shape[1:]], indexing="ij")
    base = jj[..., None] * lin[:, 1] + kk[..., None] * lin[:, 2] + off  # (Y', Z', 3)
    src = volume.float().unsqueeze(0) - padding  # (1, C, X, Y, Z); zero padding then means ``padding``
    for x0 in range(0, dst_shape[0], slab):
        x1 = min(x0 + slab, dst_shape[0])
        ii = torch.arange(x0, x1, dtype=torch.float32)
        grid = (base[None] + ii[:, None, None, None] * lin[:, 0]).unsqueeze(0)  # (1, x, Y', Z', 3) zyx
        part = F.grid_sample(src, grid, mode=mode, padding_mode="zeros", align_corners=True)
        yield x0, x1, part[0] + padding


def resample(volume: torch.Tensor, src_affine: np.ndarray, dst_affine: np.ndarray,
             dst_shape: tuple[int, int, int], *, mode: str = "bilinear", padding: float = 0.0,
             slab: int = 16) -> torch.Tensor:
    """Resample ``volume`` from its grid onto another grid through world coordinates.

    Args:
        volume: (C, X, Y, Z) tensor on the source grid (float; masks as 0/1 floats or uint8).
        src_affine, dst_affine: 4x4 voxel->world affines of the source and target grids.
        dst_shape: target grid shape (X', Y', Z').
        mode: ``"bilinear"`` (trilinear in 3D) or ``"nearest"``.
        padding: value for target voxels that fall outside the source grid.
        slab: number of target X-planes resampled at once, which bounds the memory of the grid.

    Returns:
        (C, X', Y', Z') tensor of ``volume``'s dtype.
    """
    out = torch.empty((volume.shape[0], *dst_shape), dtype=volume.dtype)
    for x0, x1, part in resample_slabs(volume, src_affine, dst_affine, dst_shape, mode=mode,
                                       padding=padding, slab=slab):
        out[:, x0:x1] = part.to(volume.dtype)
    return out
