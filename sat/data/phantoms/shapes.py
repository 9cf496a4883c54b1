"""Geometric primitives for the phantoms: a deformed voxel grid, smooth random fields, solids.

Every solid is evaluated only inside its bounding box, on coordinates that the case's smooth
displacement field has already moved, so organ outlines wobble the same way everywhere.
Coordinates are body-frame millimetres in RAS+ (x to the patient's right, y anterior, z superior).
"""
from __future__ import annotations

import numpy as np

Box = tuple[slice, slice, slice]


def _axis_weights(coords: np.ndarray, node_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian interpolation weights from coarse nodes to ``coords``, rows of unit L2 norm.

    Returns:
        (W, nodes): W is (N, K) float32, nodes the K node positions in mm.
    """
    lo, hi = float(coords.min()), float(coords.max())
    nodes = np.arange(lo - node_mm, hi + 2 * node_mm, node_mm)
    w = np.exp(-0.5 * ((coords[:, None] - nodes[None, :]) / (0.7 * node_mm)) ** 2)
    w /= np.sqrt((w**2).sum(axis=1, keepdims=True))
    return w.astype(np.float32), nodes


def smooth_noise(
    rng: np.random.Generator,
    axes: tuple[np.ndarray, np.ndarray, np.ndarray],
    node_mm: float,
    channels: int = 1,
) -> np.ndarray:
    """Smooth Gaussian noise with unit variance at every voxel and correlation length ~``node_mm``.

    Coarse N(0, 1) node values are spread to the voxels with separable Gaussian weights, so the
    cost is a few matrix products instead of a 3D filter.

    Args:
        rng: the case's generator.
        axes: 1D voxel-centre coordinates (mm) along x, y and z.
        node_mm: spacing of the coarse nodes in mm.
        channels: number of independent fields.

    Returns:
        (C, X, Y, Z) float32 field.
    """
    wx, wy, wz = (_axis_weights(a, node_mm)[0] for a in axes)
    coarse = rng.standard_normal((channels, wx.shape[1], wy.shape[1], wz.shape[1])).astype(np.float32)
    out = np.matmul(coarse, wz.T)                            # (C, Kx, Ky, Z)
    out = np.matmul(wy, out)                                 # (C, Kx, Y, Z)
    c, kx, ny, nz = out.shape
    out = np.matmul(wx, out.reshape(c, kx, ny * nz))         # (C, X, Y*Z)
    return out.reshape(c, wx.shape[0], ny, nz)               # (C, X, Y, Z)


class Grid:
    """A RAS-ordered voxel grid with a displacement field applied to its coordinates.

    Args:
        xs, ys, zs: 1D voxel-centre coordinates in body-frame mm, increasing.
        disp: (3, X, Y, Z) float32 displacement in mm; a voxel at p is shaped as if it were at
            p + disp(p).
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, zs: np.ndarray, disp: np.ndarray) -> None:
        self.axes = (xs.astype(np.float32), ys.astype(np.float32), zs.astype(np.float32))
        self.shape = (len(xs), len(ys), len(zs))
        if disp.shape != (3, *self.shape):
            raise ValueError(f"displacement shape {disp.shape} does not match grid {self.shape}")
        self.disp = disp
        self.reach = np.abs(disp).reshape(3, -1).max(axis=1) + 1.0  # (3,) max |displacement|

    def box(self, lo: np.ndarray, hi: np.ndarray) -> Box | None:
        """Index slices covering world box [lo, hi] grown by the displacement reach; None if empty."""
        out = []
        for axis, a, b, r in zip(self.axes, lo, hi, self.reach):
            i0 = int(np.searchsorted(axis, a - r, side="left"))
            i1 = int(np.searchsorted(axis, b + r, side="right"))
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)  # type: ignore[return-value]

    def coords(self, box: Box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Deformed coordinates inside ``box``, each (x, y, z) of the box's shape."""
        sx, sy, sz = box
        x = self.axes[0][sx][:, None, None] + self.disp[0][box]
        y = self.axes[1][sy][None, :, None] + self.disp[1][box]
        z = self.axes[2][sz][None, None, :] + self.disp[2][box]
        return x, y, z


def rotation(rx_deg: float = 0.0, ry_deg: float = 0.0, rz_deg: float = 0.0) -> np.ndarray:
    """3x3 rotation matrix, applied as Rz @ Ry @ Rx; columns are the rotated local axes."""
    a, b, c = np.deg2rad([rx_deg, ry_deg, rz_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def ellipsoid_local(
    grid: Grid, center: np.ndarray, radii: np.ndarray, rot: np.ndarray | None = None
) -> tuple[Box, np.ndarray] | None:
    """Normalised local coordinates of an ellipsoid: inside where the squared norm is <= 1.

    Args:
        grid: the deformed grid.
        center: (3,) centre in mm.
        radii: (3,) semi-axes in mm along the local axes.
        rot: (3, 3) rotation whose columns are the local axes; identity if None.

    Returns:
        (box, u) with u of shape (3, *box shape) in units of the semi-axes, or None when the
        ellipsoid misses the grid.
    """
    rot = np.eye(3) if rot is None else rot
    half = np.sqrt(((rot * radii[None, :]) ** 2).sum(axis=1))  # (3,) world half-extent
    box = grid.box(center - half, center + half)
    if box is None:
        return None
    p = [c - np.float32(c0) for c, c0 in zip(grid.coords(box), center)]
    m = (rot / radii[None, :]).astype(np.float32)  # local axis j, scaled by 1 / radius j
    u = np.stack([p[0] * m[0, j] + p[1] * m[1, j] + p[2] * m[2, j] for j in range(3)])
    return box, u  # (3, *box shape) float32


def ellipsoid(grid: Grid, center, radii, rot=None) -> tuple[Box, np.ndarray] | None:
    """Boolean ellipsoid inside its box; see :func:`ellipsoid_local` for the arguments."""
    hit = ellipsoid_local(grid, np.asarray(center, float), np.asarray(radii, float), rot)
    if hit is None:
        return None
    box, u = hit
    return box, (u**2).sum(axis=0) <= 1.0


def tube(grid: Grid, points, radii) -> tuple[Box, np.ndarray] | None:
    """A chain of tapered capsules through ``points`` (K, 3) with radii (K,), all in mm."""
    pts, rad = np.asarray(points, float), np.asarray(radii, float)
    r = rad.max()
    box = grid.box(pts.min(axis=0) - r, pts.max(axis=0) + r)
    if box is None:
        return None
    x, y, z = grid.coords(box)
    inside = np.zeros(x.shape, dtype=bool)
    for a, b, ra, rb in zip(pts[:-1], pts[1:], rad[:-1].tolist(), rad[1:].tolist()):
        d = (b - a).astype(np.float32)
        px, py, pz = x - np.float32(a[0]), y - np.float32(a[1]), z - np.float32(a[2])
        t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / np.float32(d @ d), 0.0, 1.0)
        dist2 = (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2
        inside |= dist2 <= (ra + t * (rb - ra)) ** 2
    return box, inside


def paint(
    owner: np.ndarray,
    part: int,
    hit: tuple[Box, np.ndarray] | None,
    within: np.ndarray | None = None,
    onto: tuple[int, ...] | None = None,
) -> None:
    """Write ``part`` into the exclusive part map where ``hit`` is true (in place).

    Args:
        owner: (X, Y, Z) uint8 part map.
        part: id to write.
        hit: (box, mask) from a primitive, or None (nothing to paint).
        within: optional full-size boolean mask that limits the paint (e.g. the body cavity).
        onto: optional part ids; paint only over voxels that currently hold one of them.
    """
    if hit is None:
        return
    box, mask = hit
    view = owner[box]
    if within is not None:
        mask = mask & within[box]
    if onto is not None:
        mask = mask & np.isin(view, onto)
    view[mask] = part
