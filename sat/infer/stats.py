"""Per-structure statistics of a mask in its image's own voxel grid (``statistics.json``).

All world quantities are RAS+ millimetres through the image affine, so they hold for any
orientation, including oblique and sheared grids. The world bounding box is the axis-aligned box
around the voxel *boxes* (each voxel centre plus/minus half a voxel along its own axes), i.e. the
physical extent of the structure, not the box around the voxel centres.

Statistics are accumulated slab by slab (:class:`StatsAccumulator`), so memory stays bounded by one
slab even for a structure that fills a 512 x 512 x 400 volume; the inference engine feeds it the
slabs it resamples anyway and never needs the whole mask at once.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sat.volume.geometry import axis_permutation
from sat.io.volume import Volume


class StatsAccumulator:
    """Streaming volume, intensity, extent, centroid and confidence of one structure.

    Args:
        affine: (4, 4) voxel -> world RAS mm of the full image grid.
        laterality: passed through to the result.
    """

    def __init__(self, affine: np.ndarray, laterality: str = "none") -> None:
        self.affine = np.asarray(affine, dtype=np.float64)
        self.laterality = laterality
        self.count = 0
        self.mean = 0.0  # running intensity mean and sum of squared deviations (Chan et al.)
        self.m2 = 0.0
        self.index_sum = np.zeros(3)
        self.vox_min = np.full(3, np.iinfo(np.int64).max)
        self.vox_max = np.full(3, -1)
        self.world_min = np.full(3, np.inf)
        self.world_max = np.full(3, -np.inf)
        self.prob_sum = 0.0
        self.has_prob = False
        # world axis d depends on index axis _axis[d] only (any flips / permutations), else None
        self._axis = axis_permutation(self.affine[:3, :3].T)

    def add(self, start: tuple[int, int, int], mask: np.ndarray, image: np.ndarray,
            prob: np.ndarray | None = None) -> None:
        """Fold in one block of the grid.

        Args:
            start: voxel index of the block's first voxel in the full grid.
            mask: (x, y, z) bool block. image: (x, y, z) intensities of the same block.
            prob: optional (x, y, z) foreground probabilities of the same block.
        """
        if prob is not None:
            self.has_prob = True
        idx = np.nonzero(mask)
        n = int(idx[0].size)
        if n == 0:
            return
        values = image[idx].astype(np.float64)  # (n,)
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        off = np.asarray(start, dtype=np.int64)
        lo = np.array([int(i.min()) for i in idx]) + off  # per-axis extremes without an (n, 3) copy
        hi = np.array([int(i.max()) for i in idx]) + off
        self.index_sum += np.array([float(i.sum(dtype=np.float64)) for i in idx]) + n * off
        self.vox_min = np.minimum(self.vox_min, lo)
        self.vox_max = np.maximum(self.vox_max, hi)
        if self._axis is not None:  # axis-aligned grid: world extremes come from the index extremes
            corners = np.stack([lo, hi])[:, self._axis]  # (2, 3): index axis feeding each world axis
            scaled = corners * self.affine[[0, 1, 2], self._axis] + self.affine[:3, 3]
            centres_min, centres_max = scaled.min(0), scaled.max(0)
        else:
            centres = (np.stack(idx, axis=1) + off) @ self.affine[:3, :3].T + self.affine[:3, 3]  # (n, 3)
            centres_min, centres_max = centres.min(0), centres.max(0)
        self.world_min = np.minimum(self.world_min, centres_min)
        self.world_max = np.maximum(self.world_max, centres_max)
        if prob is not None:
            self.prob_sum += float(prob[idx].astype(np.float64).sum())

    def result(self) -> dict[str, Any]:
        """The JSON-serialisable statistics (see :func:`structure_statistics`)."""
        linear = self.affine[:3, :3]
        stats: dict[str, Any] = {
            "volume_ml": self.count * abs(float(np.linalg.det(linear))) / 1000.0,
            "voxel_count": self.count, "intensity_mean": None, "intensity_std": None,
            "bbox_world_mm": None, "bbox_voxel": None, "centroid_world_mm": None,
            "laterality": self.laterality, "mean_confidence": None,
        }
        if self.count == 0:
            return stats
        half = 0.5 * np.abs(linear).sum(axis=1)  # (3,) world half-extent of one voxel box
        stats.update({
            "intensity_mean": self.mean,
            "intensity_std": float(np.sqrt(self.m2 / self.count)),
            "bbox_voxel": {"min": [int(v) for v in self.vox_min], "max": [int(v) for v in self.vox_max]},
            "bbox_world_mm": {"min": (self.world_min - half).tolist(), "max": (self.world_max + half).tolist()},
            "centroid_world_mm": (linear @ (self.index_sum / self.count) + self.affine[:3, 3]).tolist(),
        })
        if self.has_prob:
            stats["mean_confidence"] = self.prob_sum / self.count
        return stats


def structure_statistics(mask: np.ndarray, image: Volume, prob: np.ndarray | None = None,
                         laterality: str = "none", *, slab: int = 16) -> dict[str, Any]:
    """Volume, intensity, extent, position and confidence of one segmented structure.

    Args:
        mask: (X, Y, Z) boolean mask on ``image``'s grid (non-bool arrays are taken as ``!= 0``).
        image: the Volume the mask was predicted on.
        prob: optional (X, Y, Z) foreground probabilities on the same grid.
        laterality: passed through ("left", "right", "midline", "bilateral", "none", ...).
        slab: X-planes processed at once (bounds the working memory).

    Returns:
        A JSON-serialisable dict: ``volume_ml``, ``voxel_count``, ``intensity_mean``, ``intensity_std``,
        ``bbox_world_mm`` ({"min": [x, y, z], "max": [x, y, z]}, physical extent, RAS mm),
        ``bbox_voxel`` ({"min": [i, j, k], "max": [i, j, k]}, inclusive indices), ``centroid_world_mm``
        (mean of voxel centres, RAS mm), ``laterality`` and ``mean_confidence`` (mean of ``prob``
        inside the mask). An empty mask gives zero volume/count and None for everything else.

    Raises:
        ValueError: ``mask`` or ``prob`` does not match the image shape.
    """
    mask = np.asarray(mask)
    if mask.shape != image.array.shape:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.array.shape}")
    if prob is not None and np.shape(prob) != mask.shape:
        raise ValueError(f"prob shape {np.shape(prob)} does not match mask shape {mask.shape}")
    acc = StatsAccumulator(image.affine, laterality)
    for x0 in range(0, mask.shape[0], slab):
        block = mask[x0:x0 + slab]
        block = block if block.dtype == bool else block != 0  # (x, Y, Z) bool
        acc.add((x0, 0, 0), block, image.array[x0:x0 + slab],
                None if prob is None else np.asarray(prob[x0:x0 + slab]))
    return acc.result()
