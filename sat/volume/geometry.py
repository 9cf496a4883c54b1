"""Voxel-grid geometry: affines, target grids and resampling between grids.

Conventions: arrays are indexed (X, Y, Z) in the file's voxel order and an affine maps voxel
indices (i, j, k, 1) to world RAS millimetres (nibabel convention). Resampling goes through world
coordinates, so RAS, LPS, permuted and oblique inputs share one code path. A voxel is a cube
centred on its index: voxel ``i`` spans indices ``[i - 0.5, i + 0.5]``, and target grids
(:func:`ras_grid`) cover those cubes, not just the voxel centres.
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
    return _box_bounds(affine, [(0.0, n - 1.0) for n in shape])


def world_extent(affine: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Min and max world coordinates (mm) of the voxel corners of a grid. Each shape (3,).

    Voxel ``i`` spans indices ``[i - 0.5, i + 0.5]``, so this box holds every voxel in full; it
    is :func:`world_bounds` grown by half a voxel (along the voxel axes) on every side.
    """
    return _box_bounds(affine, [(-0.5, n - 0.5) for n in shape])


def _box_bounds(affine: np.ndarray, ranges: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[i, j, k, 1.0] for i in ranges[0] for j in ranges[1] for k in ranges[2]])  # (8, 4)
    world = corners @ np.asarray(affine, dtype=np.float64).T
    return world[:, :3].min(0), world[:, :3].max(0)


def max_grid_voxels() -> int:
    """Largest target grid :func:`ras_grid` builds (``SAT_MAX_GRID_VOXELS``, default 2**28):
    a whole-body CT at 1.5 mm is ~2e8 voxels."""
    import os

    raw = os.environ.get("SAT_MAX_GRID_VOXELS", "")
    return int(float(raw)) if raw.strip() else 2**28


def ras_grid(affine: np.ndarray, shape: tuple[int, int, int],
             spacing: tuple[float, float, float]) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An axis-aligned RAS grid at ``spacing`` that covers the source grid's full world extent.

    The grid is centred on the world box of the source voxels' corners (:func:`world_extent`),
    with ``ceil(extent / spacing)`` voxels per axis, so its voxels cover every source voxel whole
    and overhang the box by the same amount (less than half an output voxel) on both sides.
    Anchoring the first output centre on the first source centre instead would drop the outer
    half of the border voxels and shift every structure by up to half an output voxel.

    Args:
        affine: 4x4 voxel -> world affine of the source grid.
        shape: source grid shape (X, Y, Z).
        spacing: output voxel size in mm along R, A, S.

    Returns:
        ``(affine, shape)`` of the new grid.

    Raises:
        ValueError: if ``spacing`` is not three positive numbers.
        InputError: if the grid would hold more than :func:`max_grid_voxels` voxels.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    if sp.shape != (3,) or not np.all(sp > 0):
        raise ValueError(f"spacing must be three positive numbers, got {spacing!r}")
    lo, hi = world_extent(affine, shape)
    new_shape = tuple(max(1, int(math.ceil((h - l) / s - 1e-6))) for l, h, s in zip(lo, hi, sp))
    n = math.prod(new_shape)
    if n > max_grid_voxels():  # a few huge voxels must not become a grid of billions
        from sat.errors import InputError

        raise InputError(f"the image spans {np.round(hi - lo, 1).tolist()} mm: a {'x'.join(map(str, new_shape))} "
                         f"grid at {sp.tolist()} mm would hold {n} voxels, more than the {max_grid_voxels()} "
                         "limit (SAT_MAX_GRID_VOXELS)")
    new_affine = np.diag([*sp, 1.0])
    new_affine[:3, 3] = (lo + hi) / 2.0 - (np.asarray(new_shape) - 1) / 2.0 * sp
    return new_affine, new_shape


def axis_permutation(m: np.ndarray) -> list[int] | None:
    """Source axis of each target axis when ``m`` (target index -> source index, 3x3 or 4x4) is
    axis-aligned (any flips, permutations and scalings), else ``None`` (oblique)."""
    lin = np.abs(np.asarray(m)[:3, :3])
    nz = lin > 1e-9 * lin.max()
    if (nz.sum(0) == 1).all() and (nz.sum(1) == 1).all():
        return [int(np.flatnonzero(nz[:, d])[0]) for d in range(3)]
    return None


def crop_affine(affine: np.ndarray, start: tuple[int, int, int]) -> np.ndarray:
    """Affine of a sub-grid whose voxel (0, 0, 0) is voxel ``start`` of the parent grid."""
    out = np.array(affine, dtype=np.float64, copy=True)
    out[:3, 3] = affine[:3, :3] @ np.asarray(start, dtype=np.float64) + affine[:3, 3]
    return out


_PADDING_MODES = ("zeros", "edge")
_RIM_TOL = 1e-3  # voxels: float32 slack on the edge of the source's voxel extent


@torch.no_grad()
def resample_slabs(volume: torch.Tensor, src_affine: np.ndarray, dst_affine: np.ndarray,
                   dst_shape: tuple[int, int, int], *, mode: str = "bilinear", padding: float = 0.0,
                   padding_mode: str = "zeros", slab: int = 16):
    """Yield ``(x0, x1, values)`` for consecutive target X-slabs; ``values`` is (C, x1-x0, Y', Z').

    The sampling grid of one slab is built once and shared by all channels, and only one slab of
    output exists at a time, so callers can reduce (threshold, cast) large outputs as they go.
    Arguments are those of :func:`resample`; float64 volumes are sampled in float64, all others
    in float32.
    """
    if volume.ndim != 4:
        raise ValueError(f"volume must be (C, X, Y, Z), got shape {tuple(volume.shape)}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    src_shape = volume.shape[1:]
    m = torch.as_tensor(np.linalg.inv(src_affine) @ dst_affine, dtype=torch.float64)
    denom = torch.tensor([max(n - 1, 1) for n in src_shape], dtype=torch.float64)
    dt = torch.float64 if volume.dtype == torch.float64 else torch.float32
    # fold voxel->normalised-coordinate scaling into one affine map; rows reversed to the
    # (z, y, x) component order grid_sample expects, so no grid needs flipping
    lin = (2.0 * m[:3, :3] / denom[:, None]).to(dt).flip(0)
    off = (2.0 * m[:3, 3] / denom - 1.0).to(dt).flip(0)
    # the source's voxel extent, indices [-0.5, n - 0.5], in normalised (z, y, x) coordinates
    half = (1.0 / denom).to(dt).flip(0) * (1.0 + 2.0 * _RIM_TOL)  # (3,)
    upper = (2.0 * (torch.tensor(src_shape, dtype=torch.float64) - 1) / denom - 1.0).to(dt).flip(0) + half
    jj, kk = torch.meshgrid(*[torch.arange(n, dtype=dt) for n in dst_shape[1:]], indexing="ij")
    base = jj[..., None] * lin[:, 1] + kk[..., None] * lin[:, 2] + off  # (Y', Z', 3)
    src = volume.to(dt).unsqueeze(0) - padding  # (1, C, X, Y, Z); zero padding then means ``padding``
    for x0 in range(0, dst_shape[0], slab):
        x1 = min(x0 + slab, dst_shape[0])
        ii = torch.arange(x0, x1, dtype=dt)
        grid = (base[None] + ii[:, None, None, None] * lin[:, 0]).unsqueeze(0)  # (1, x, Y', Z', 3) zyx
        if padding_mode == "zeros":
            part = F.grid_sample(src, grid, mode=mode, padding_mode="zeros", align_corners=True)
        else:  # clamp to the outermost centres, but only within the source voxels' own extent
            part = F.grid_sample(src, grid, mode=mode, padding_mode="border", align_corners=True)
            inside = ((grid >= -1.0 - half) & (grid <= upper)).all(-1)  # (1, x, Y', Z')
            part = part * inside.unsqueeze(1)
        yield x0, x1, part[0] + padding


def resample(volume: torch.Tensor, src_affine: np.ndarray, dst_affine: np.ndarray,
             dst_shape: tuple[int, int, int], *, mode: str = "bilinear", padding: float = 0.0,
             padding_mode: str = "zeros", slab: int = 16) -> torch.Tensor:
    """Resample ``volume`` from its grid onto another grid through world coordinates.

    Args:
        volume: (C, X, Y, Z) tensor on the source grid (float; masks as 0/1 floats or uint8);
            float64 volumes are sampled in float64.
        src_affine, dst_affine: 4x4 voxel->world affines of the source and target grids.
        dst_shape: target grid shape (X', Y', Z').
        mode: ``"bilinear"`` (trilinear in 3D) or ``"nearest"``.
        padding: value for target voxels that fall outside the source grid.
        padding_mode: ``"zeros"``: trilinear samples past the outermost source voxel centres
            blend with ``padding``. ``"edge"``: within the source voxels' own extent (half a
            voxel past the outermost centres, the box :func:`ras_grid` covers) samples take
            the edge values, and only points outside every source voxel get ``padding``; use
            it for images, so border voxels keep their intensity.
        slab: number of target X-planes resampled at once, which bounds the memory of the grid.

    Returns:
        (C, X', Y', Z') tensor of ``volume``'s dtype.

    Raises:
        ValueError: if ``volume`` is not 4D or ``padding_mode`` is unknown.
    """
    out = torch.empty((volume.shape[0], *dst_shape), dtype=volume.dtype)
    for x0, x1, part in resample_slabs(volume, src_affine, dst_affine, dst_shape, mode=mode,
                                       padding=padding, padding_mode=padding_mode, slab=slab):
        out[:, x0:x1] = part.to(volume.dtype)
    return out
