"""Resampling of label code maps onto another grid, faithful to volumes and positions.

A code map (0 = background) is resampled by point sampling: each target voxel takes the code
of the source voxel cube its centre falls in. Point sampling a partition of cubes is unbiased:
a structure's expected volume is preserved, whatever the two spacings. The one trap is ties:
a target centre exactly on a cube face. On the centred grids of :func:`sat.volume.geometry.ras_grid`
they arise when downsampling by commensurate spacings (0.75 mm -> 1.5 mm, 1.5 mm -> 3 mm slices
with an even slice count: every target centre lies on a face). Sending every tie the same way
shifts every structure by half a source voxel per axis, and ``torch.grid_sample(mode="nearest")``
leaves ties to float32 rounding, so its masks also depend on how the file stores its axes.
Here, on axis-aligned grid pairs (any flips, permutations and spacings), successive ties along
each target axis alternate between the world ``+`` and ``-`` side, so no direction is preferred;
the decision is made in world space, so RAS, LPS or permuted storage give the same masks.
Oblique pairs, where exact ties are accidents, break them along a fixed world direction (a
shift of 1e-3 voxel).

Point sampling is unbiased on average but not per structure: a small structure resampled from
2.5 mm to 3 mm slices can gain or lose a slab (3-4 % of 10 ml). :func:`match_volumes` then trades
boundary voxels with the background, ranked by the structure's trilinear occupancy, until each
structure that lies inside both grids has its source volume again (to half a target voxel).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from sat.volume.geometry import axis_permutation, crop_affine, resample

_TIE = np.array([1.0, 1.1, 1.2]) * 1e-3  # world tie-break direction (mm per mm of voxel size)
_TIE_TOL = 1e-6  # source voxels: a target centre this close to a face is a tie
_OCC_GRID = 2.0 ** 20  # occupancies are ranked after rounding to multiples of 1 / _OCC_GRID


def resample_codes(codes: np.ndarray, src_affine: np.ndarray, dst_affine: np.ndarray,
                   dst_shape: tuple[int, int, int], slab: int = 8) -> np.ndarray:
    """Resample an exclusive code map onto another grid by balanced point sampling.

    Args:
        codes: (X, Y, Z) unsigned code map on the source grid (0 = background).
        src_affine, dst_affine: voxel -> world affines of both grids.
        dst_shape: target grid shape (X', Y', Z').
        slab: target X-planes computed at once on oblique pairs (bounds the index grid's memory).

    Returns:
        (X', Y', Z') code map of ``codes``' dtype; target voxels whose centre lies in no source
        voxel (outside the box :func:`sat.volume.geometry.ras_grid` covers) are 0.
        Volumes are not matched here; see :func:`match_volumes`.
    """
    dst_shape = tuple(int(n) for n in dst_shape)
    m = np.linalg.inv(np.asarray(src_affine, np.float64)) @ np.asarray(dst_affine, np.float64)
    axes = axis_permutation(m)
    if axes is not None:
        return _resample_separable(codes, m, axes, dst_shape)
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


def _resample_separable(codes: np.ndarray, m: np.ndarray, axes: list[int],
                        dst_shape: tuple[int, int, int]) -> np.ndarray:
    """Point sampling on an axis-aligned pair: one source index per target index and axis."""
    picks, valid = [], []
    for d, a in enumerate(axes):
        scale = m[a, d]
        coord = scale * np.arange(dst_shape[d]) + m[a, 3] + 0.5  # (n,) source index + 0.5
        near = np.round(coord)
        ties = np.abs(coord - near) < _TIE_TOL
        # the k-th tie along this axis goes to the world + side for even k, the - side for odd k
        side = np.where(np.cumsum(ties) % 2 == 1, 1.0, -1.0) * np.sign(scale)
        idx = np.where(ties, near - (side < 0), np.floor(coord)).astype(np.int64)
        valid.append((idx >= 0) & (idx < codes.shape[a]))
        picks.append(np.clip(idx, 0, codes.shape[a] - 1))
    out = codes.transpose(axes)[np.ix_(*picks)]  # (X', Y', Z')
    inside = valid[0][:, None, None] & valid[1][None, :, None] & valid[2][None, None, :]
    out[~inside] = 0
    return out


def _target_box(src_affine, start, stop, dst_affine) -> tuple[np.ndarray, np.ndarray]:
    """Unclipped target index box ``[a, b)`` around the source box ``[start, stop)`` plus one voxel."""
    lo, hi = np.asarray(start, float) - 1.0, np.asarray(stop, float)
    corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    idx = (corners @ (np.linalg.inv(dst_affine) @ src_affine).T)[:, :3]
    return np.floor(idx.min(0)).astype(int), np.ceil(idx.max(0)).astype(int) + 1


def _covered(src_affine, start, stop, dst_affine, shape) -> bool:
    """True when the source voxel cubes of the box ``[start, stop)`` lie inside the target grid's."""
    lo, hi = np.asarray(start, float) - 0.5, np.asarray(stop, float) - 0.5
    corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    idx = (corners @ (np.linalg.inv(dst_affine) @ src_affine).T)[:, :3]
    return bool(np.all(idx.min(0) >= -0.5 - 1e-6) and np.all(idx.max(0) <= np.asarray(shape) - 0.5 + 1e-6))


def match_volumes(out: np.ndarray, codes: np.ndarray, src_affine: np.ndarray,
                  dst_affine: np.ndarray) -> np.ndarray:
    """Give every code its source volume back by trading boundary voxels with the background.

    Structures that the target grid does not wholly cover are left alone (their visible volume
    differs by construction), as are structures with no background to grow into. A structure
    touching the source grid's edge is matched like any other when the target grid covers it
    (the grids of :func:`sat.volume.geometry.ras_grid` cover every source voxel whole): a spinal
    cord that leaves a head-and-neck scan at its lower edge keeps its volume.

    Args:
        out: (X', Y', Z') resampled code map, modified in place. codes: the source code map.
        src_affine, dst_affine: voxel -> world affines of both grids.

    Returns:
        ``out``.
    """
    ratio = abs(np.linalg.det(np.asarray(src_affine)[:3, :3]) / np.linalg.det(np.asarray(dst_affine)[:3, :3]))
    n = int(codes.max()) + 1
    have = np.bincount(codes.ravel(), minlength=n)
    got = np.bincount(out.ravel(), minlength=n)
    for c, box in enumerate(ndimage.find_objects(codes), start=1):
        if box is None:
            continue
        start, stop = [s.start for s in box], [s.stop for s in box]
        diff = int(round(have[c] * ratio)) - int(got[c])
        if diff == 0 or not _covered(src_affine, start, stop, dst_affine, out.shape):
            continue
        a, b = _target_box(src_affine, start, stop, dst_affine)
        a, b = np.maximum(a, 0), np.minimum(b, out.shape)
        onehot = torch.from_numpy(np.ascontiguousarray(codes[box] == c, dtype=np.float64))[None]
        occ = resample(onehot, crop_affine(src_affine, [s.start for s in box]), crop_affine(dst_affine, a),
                       tuple(int(v) for v in b - a), mode="bilinear")[0].numpy().ravel()
        # float noise must not decide ranks (ties go by target index order). Commensurate spacings
        # give exact binary fractions (11/32) that decimal rounding splits by noise; on a binary
        # grid they are grid points, so RAS and LPS storage rank alike
        occ = np.round(occ * _OCC_GRID) / _OCC_GRID
        region = out[tuple(slice(lo, hi) for lo, hi in zip(a, b))]  # a view: writes go to ``out``
        flat = region.reshape(-1).copy()
        if diff > 0:  # grow into the background where the structure covers most
            idx = np.flatnonzero((flat == 0) & (occ > 0))
            pick = idx[np.argsort(-occ[idx], kind="stable")[:diff]]
            flat[pick] = c
        else:  # shrink where it covers least
            idx = np.flatnonzero(flat == c)
            pick = idx[np.argsort(occ[idx], kind="stable")[:-diff]]
            flat[pick] = 0
        region[...] = flat.reshape(region.shape)
    return out


def occupancy_edges(codes: np.ndarray, lut: np.ndarray, src_affine: np.ndarray, out: np.ndarray,
                    out_lut: np.ndarray, dst_affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each channel's trilinear occupancy of the target voxels differs from its code map.

    The soft, partial-volume version of a resampled mask: a target voxel half inside a spinal
    cord has occupancy 0.5, where the code map can only say 0 or 1. Only the voxels where the two
    differ (after quantising the occupancy to 1/255) are listed, a band along each boundary.

    Args:
        codes: (X, Y, Z) source code map; lut: (K, n) bool, its channels.
        src_affine, dst_affine: voxel -> world affines of both grids.
        out: (X', Y', Z') target code map; out_lut: (K, n') bool, the same K channels.

    Returns:
        ``(index (M, 2) uint32 [channel, flat target voxel], value (M,) uint8 occupancy * 255)``,
        sorted by channel then voxel.
    """
    if lut.shape[0] != out_lut.shape[0]:
        raise ValueError(f"{lut.shape[0]} source channels vs {out_lut.shape[0]} target channels")
    index, value = [], []
    code_boxes = ndimage.find_objects(codes.astype(np.int32, copy=False), max_label=lut.shape[1] - 1)
    for k in range(lut.shape[0]):
        # the channel's box from its codes' boxes: one pass over the source for all channels
        parts = [code_boxes[c - 1] for c in np.flatnonzero(lut[k]) if c > 0 and code_boxes[c - 1] is not None]
        if lut[k, 0]:  # code 0 is the background in compacted maps; if not, the channel may be anywhere
            parts.append(tuple(slice(0, n) for n in codes.shape))
        if not parts:
            continue
        start = [min(p[a].start for p in parts) for a in range(3)]
        stop = [max(p[a].stop for p in parts) for a in range(3)]
        box = tuple(slice(lo, hi) for lo, hi in zip(start, stop))
        a, b = _target_box(src_affine, start, stop, dst_affine)
        a, b = np.maximum(a, 0), np.minimum(b, out.shape)
        if np.any(b <= a):
            continue
        onehot = torch.from_numpy(np.ascontiguousarray(lut[k][codes[box]], dtype=np.float32))[None]
        occ = resample(onehot, crop_affine(src_affine, start), crop_affine(dst_affine, a),
                       tuple(int(v) for v in b - a), mode="bilinear")[0].numpy()
        q = np.rint(np.clip(occ, 0.0, 1.0) * 255).astype(np.uint8)
        binary = out_lut[k][out[tuple(slice(lo, hi) for lo, hi in zip(a, b))]].astype(np.uint8) * 255
        local = np.argwhere(q != binary)
        if not len(local):
            continue
        flat = np.ravel_multi_index(tuple((local + a).T), out.shape)
        order = np.argsort(flat)
        index.append(np.stack([np.full(len(flat), k), flat[order]], 1))
        value.append(q[tuple(local[order].T)])
    if not index:
        return np.zeros((0, 2), np.uint32), np.zeros(0, np.uint8)
    return np.concatenate(index).astype(np.uint32), np.concatenate(value)
