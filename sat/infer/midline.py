"""The body's mid-sagittal plane, and the components of a median structure that reach it.

An unpaired median structure (spinal cord, brainstem, larynx, oesophagus, mandible) crosses or
lies beside the body's mid-sagittal plane. A network that mistakes other anatomy for it (in the
upper arms, a marrow cavity in its bone shell looks like the cord in its canal) adds pieces
10-22 cm to the side, far from that plane, where no part of it can be. The midline rule
drops the pieces whose left-right extent stays more than :data:`REACH_MM` from the plane at their
own height; which concepts get it is chosen on validation patients, like the other component rules
(:mod:`sat.infer.postprocess`).

The plane is estimated from the image itself: the centre (RAS world x) of the body's voxels in
each :data:`BIN_MM` band of height (world z). A band where the body reaches the image's left or
right edge (a field of view cut through the body, a small crop) has no known centre; a piece at
such heights takes the plane of known bands up to 2 cm above or below, and is kept when there
are none, and so is every piece when none of them reaches the plane: the rule only
removes stray pieces beside a structure it found, it never decides that the structure is absent.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REACH_MM = 50.0  # a piece is kept when its left-right extent comes this close to the plane
BIN_MM = 10.0  # height of the bands the plane's position is measured in
NEAR_BANDS = 2  # a piece at heights of unknown plane takes the plane of bands this near
_MAX_VOXELS = 2_000_000  # the image is subsampled to about this many voxels to find the body


@dataclass(frozen=True)
class Midline:
    """The body's centre along its height, in world (RAS) millimetres.

    Attributes:
        z0: world z of the lower edge of band 0. centre: (B,) world x of the body's centre per
            band, NaN where unknown (no body, or the body touches the image's side edges).
    """

    z0: float
    centre: np.ndarray  # (B,) float64

    @classmethod
    def from_body(cls, body: np.ndarray, affine: np.ndarray) -> Midline:
        """(X, Y, Z) bool body mask on a grid with (4, 4) voxel-to-RAS ``affine``."""
        if body.ndim != 3:
            raise ValueError(f"body mask must be 3D (X, Y, Z), got shape {body.shape}")
        affine = np.asarray(affine, dtype=np.float64)
        idx = np.argwhere(body)  # (N, 3)
        if not len(idx):
            return cls(0.0, np.zeros(0))
        world = idx @ affine[:3, :3].T + affine[:3, 3]  # (N, 3)
        z0 = float(world[:, 2].min())
        band = ((world[:, 2] - z0) // BIN_MM).astype(int)
        count = np.bincount(band)
        centre = np.bincount(band, weights=world[:, 0]) / np.maximum(count, 1)
        # the grid axis that runs most nearly left-right: the body at either end of it is cut off
        lr = int(np.argmax(np.abs(affine[0, :3]) / np.linalg.norm(affine[:3, :3], axis=0)))
        edge = (idx[:, lr] == 0) | (idx[:, lr] == body.shape[lr] - 1)
        cut = np.bincount(band[edge], minlength=len(count)) > 0
        centre[(count == 0) | cut] = np.nan
        return cls(z0, centre)

    @classmethod
    def from_image(cls, image: np.ndarray, affine: np.ndarray) -> Midline:
        """(X, Y, Z) image (any intensity units) -> its body's midline, found on a subsampled grid."""
        from sat.infer.plausibility import body_mask

        step = max(1, int(np.ceil((np.prod(image.shape) / _MAX_VOXELS) ** (1 / 3))))
        sub = np.asarray(image[::step, ::step, ::step], dtype=np.float32)
        return cls.from_body(body_mask(sub), np.asarray(affine, dtype=np.float64) @ np.diag([step, step, step, 1.0]))

    def at(self, z_lo: float, z_hi: float) -> float | None:
        """World x of the plane between heights ``z_lo`` and ``z_hi`` (mm), averaged over the known
        bands there, else over those up to :data:`NEAR_BANDS` bands above or below (the plane moves
        little over a few centimetres); ``None`` when none is known."""
        lo, hi = int((z_lo - self.z0) // BIN_MM), int((z_hi - self.z0) // BIN_MM)
        for widen in (0, NEAR_BANDS):
            known = self.centre[max(lo - widen, 0):max(hi + widen + 1, 0)]
            known = known[~np.isnan(known)]
            if len(known):
                return float(known.mean())
        return None


def reaching(labels: np.ndarray, n: int, affine: np.ndarray, midline: Midline, reach: float = REACH_MM) -> np.ndarray:
    """Which of ``n`` labelled components reach the midline.

    Args:
        labels: (X, Y, Z) int component labels 1..n (0 background) on a grid with (4, 4) ``affine``.
        midline: the body's plane. reach: mm a component's left-right extent may stay from it.

    Returns:
        (n + 1,) bool, index 0 unused: True for components that come within ``reach`` of the plane
        at their own height, or whose height has no known plane; every one True when none reaches.
    """
    from scipy import ndimage

    affine = np.asarray(affine, dtype=np.float64)
    axes = [np.arange(s).reshape([-1 if a == d else 1 for a in range(3)]) for d, s in enumerate(labels.shape)]
    ids = np.arange(1, n + 1)

    def extent(row: int) -> tuple[np.ndarray, np.ndarray]:
        field = sum(affine[row, d] * axes[d] for d in range(3)) + affine[row, 3]  # (X, Y, Z) world coordinate
        field = np.broadcast_to(field, labels.shape)
        return (np.asarray(ndimage.minimum(field, labels, ids)), np.asarray(ndimage.maximum(field, labels, ids)))

    (x_lo, x_hi), (z_lo, z_hi) = extent(0), extent(2)
    ok = np.ones(n + 1, dtype=bool)
    for i in range(n):
        centre = midline.at(z_lo[i], z_hi[i])
        ok[i + 1] = centre is None or x_lo[i] - reach <= centre <= x_hi[i] + reach
    if not ok[1:].any():
        ok[:] = True
    return ok
