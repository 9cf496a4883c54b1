"""Measurements behind the ``measure`` and ``compare`` tools (numpy only, world RAS+ mm)."""
from __future__ import annotations

import numpy as np

from sat.agent.models import Stats
from sat.errors import InputError
from sat.io.volume import Volume
from sat.infer.stats import structure_statistics


def to_stats(raw: dict) -> Stats:
    """Convert a :func:`structure_statistics` dict to :class:`Stats` (adds ``extent_mm``)."""
    box = raw.get("bbox_world_mm")
    extent = None if box is None else [float(b - a) for a, b in zip(box["min"], box["max"])]
    keys = ("volume_ml", "voxel_count", "bbox_world_mm", "bbox_voxel", "centroid_world_mm",
            "intensity_mean", "intensity_std", "mean_confidence")
    return Stats(extent_mm=extent, **{k: raw.get(k) for k in keys})


def mask_of(volume: Volume) -> np.ndarray:
    """(X, Y, Z) bool mask of a loaded mask/label file (any non-zero voxel is inside)."""
    return volume.array != 0


def same_grid(a: Volume, b: Volume, atol: float = 1e-3) -> bool:
    """Whether two volumes share shape and affine (within ``atol`` mm)."""
    return a.shape == b.shape and bool(np.allclose(a.affine, b.affine, atol=atol))


def measure_mask(mask: Volume, image: Volume | None = None) -> Stats:
    """Volume, extent, centroid and (with ``image``) intensity statistics of a mask file.

    Raises:
        InputError: ``image`` is not on the mask's grid.
    """
    if image is not None and not same_grid(mask, image):
        raise InputError(f"mask grid {mask.shape} does not match image grid {image.shape} "
                         "(shape or affine differ); pass the image the mask was made on")
    ref = image if image is not None else Volume(np.zeros(mask.shape, np.float32), mask.affine)
    stats = to_stats(structure_statistics(mask_of(mask), ref))
    if image is None:
        stats.intensity_mean = stats.intensity_std = None
    return stats


def compare_masks(a: Volume, b: Volume) -> dict:
    """Volume change, Dice and centroid shift from mask ``a`` (baseline) to ``b`` (follow-up).

    Volumes and centroids are measured on each mask's own grid. Dice needs one grid: when the
    grids differ, ``b`` is resampled onto ``a`` through world coordinates (nearest neighbour), which
    is only meaningful when both scans share a world frame (same session or registered).
    """
    import torch

    from sat.volume.geometry import resample
    from sat.eval.metrics import dice

    ma, mb = mask_of(a), mask_of(b)
    sa = structure_statistics(ma, Volume(np.zeros(a.shape, np.float32), a.affine))
    sb = structure_statistics(mb, Volume(np.zeros(b.shape, np.float32), b.affine))
    grid = same_grid(a, b)
    if grid:
        mb_on_a = mb
        note = "masks share one grid"
    else:
        moved = resample(torch.from_numpy(mb.astype(np.float32))[None], b.affine, a.affine, a.shape,
                         mode="nearest")[0]
        mb_on_a = moved.numpy() > 0.5
        note = ("grids differ: Dice was computed after resampling mask_b onto mask_a's grid in world "
                "coordinates; it is meaningful only if the scans are aligned")
    va, vb = float(sa["volume_ml"]), float(sb["volume_ml"])
    ca, cb = sa["centroid_world_mm"], sb["centroid_world_mm"]
    shift = None if ca is None or cb is None else (np.asarray(cb) - np.asarray(ca)).tolist()
    return {
        "volume_a_ml": va, "volume_b_ml": vb, "volume_change_ml": vb - va,
        "volume_change_pct": None if va == 0 else 100.0 * (vb - va) / va,
        "dice": dice(mb_on_a, ma), "centroid_shift_mm": shift,
        "centroid_distance_mm": None if shift is None else float(np.linalg.norm(shift)),
        "same_grid": grid, "note": note,
    }
