"""Per-structure statistics of a mask in its image's own voxel grid (``--statistics``).

All world quantities are RAS+ millimetres through the image affine, so they hold for any
orientation, including oblique and sheared grids. The world bounding box is the axis-aligned box
around the voxel *boxes* (each voxel centre plus/minus half a voxel along its own axes), i.e. the
physical extent of the structure, not the box around the voxel centres.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sat.infer.io import Volume


def structure_statistics(mask: np.ndarray, image: Volume, prob: np.ndarray | None = None,
                         laterality: str = "none") -> dict[str, Any]:
    """Volume, intensity, extent, position and confidence of one segmented structure.

    Args:
        mask: (X, Y, Z) boolean mask on ``image``'s grid (non-bool arrays are taken as ``!= 0``).
        image: the Volume the mask was predicted on.
        prob: optional (X, Y, Z) foreground probabilities on the same grid.
        laterality: passed through ("left", "right", "midline", "bilateral", "none", ...).

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
    mask = mask if mask.dtype == bool else mask != 0  # (X, Y, Z) bool
    if mask.shape != image.array.shape:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {image.array.shape}")
    if prob is not None and np.shape(prob) != mask.shape:
        raise ValueError(f"prob shape {np.shape(prob)} does not match mask shape {mask.shape}")
    affine = np.asarray(image.affine, dtype=np.float64)
    linear, offset = affine[:3, :3], affine[:3, 3]
    voxel_ml = abs(float(np.linalg.det(linear))) / 1000.0
    count = int(np.count_nonzero(mask))
    stats: dict[str, Any] = {
        "volume_ml": count * voxel_ml, "voxel_count": count, "intensity_mean": None,
        "intensity_std": None, "bbox_world_mm": None, "bbox_voxel": None, "centroid_world_mm": None,
        "laterality": laterality, "mean_confidence": None,
    }
    if count == 0:
        return stats
    values = image.array[mask].astype(np.float64)  # (N,)
    stats["intensity_mean"] = float(values.mean())
    stats["intensity_std"] = float(values.std())
    idx = np.stack(np.nonzero(mask), axis=1)  # (N, 3) voxel indices
    stats["bbox_voxel"] = {"min": idx.min(0).tolist(), "max": idx.max(0).tolist()}
    centres = idx @ linear.T + offset  # (N, 3) world RAS mm of voxel centres
    half = 0.5 * np.abs(linear).sum(axis=1)  # (3,) world half-extent of one voxel box
    stats["bbox_world_mm"] = {"min": (centres.min(0) - half).tolist(),
                              "max": (centres.max(0) + half).tolist()}
    stats["centroid_world_mm"] = centres.mean(0).tolist()
    if prob is not None:
        stats["mean_confidence"] = float(np.asarray(prob)[mask].astype(np.float64).mean())
    return stats
