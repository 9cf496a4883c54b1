"""Spatial augmentation of a training crop: a random rotation and isotropic scaling, applied to
the image and its targets with one MONAI :class:`~monai.transforms.Affine` (nnU-Net's default
augmentation, minus elastic deformation).

The transform is drawn first (:func:`draw_affine`); the crop is then cut with the margin that the
rotated and zoomed patch reaches (:attr:`SpatialDraw.region`), so the patch samples real image
around it wherever the scan has it, never padding. Targets are resampled trilinearly, as
occupancies: a 0 / 1 target becomes a fraction at the moved border, which the Dice + BCE loss takes
as it is (hard targets are thresholded back at 0.5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


def check_spatial(prob: float, rotate_deg: float, scale_range) -> None:
    """``ValueError`` naming the bad value of the spatial-augmentation settings."""
    if not 0.0 <= float(prob) <= 1.0:
        raise ValueError(f"spatial_prob must lie in [0, 1], got {prob!r}")
    if not 0.0 <= float(rotate_deg) <= 45.0:
        raise ValueError(f"rotate_deg must lie in [0, 45], got {rotate_deg!r}")
    if len(scale_range) != 2 or not 0.5 <= float(scale_range[0]) <= 1.0 <= float(scale_range[1]) <= 2.0:
        raise ValueError(f"scale_range must be (low, high) with 0.5 <= low <= 1 <= high <= 2, got {scale_range!r}")


@dataclass(frozen=True)
class SpatialDraw:
    """One drawn transform: ``angles`` (3,) radians about x, y, z (MONAI's order), ``scale`` (the
    patch covers ``scale`` times its size of the scan) and ``region``, the voxels per axis that the
    transformed patch reaches (at least the patch)."""

    angles: tuple[float, float, float]
    scale: float
    region: tuple[int, int, int]


def draw_affine(patch: tuple[int, ...], rng: np.random.Generator, rotate_deg: float,
                scale_range: tuple[float, float]) -> SpatialDraw:
    """Angles uniform in [-rotate_deg, rotate_deg] about each axis, the scale log-uniform in
    ``scale_range``; the region is what the patch's corners reach: along axis j, the half-size
    sum_i |M_ji| * patch_i / 2 of the scaled rotation M."""
    from monai.transforms.utils import create_rotate

    angles = tuple(math.radians(float(rng.uniform(-rotate_deg, rotate_deg))) for _ in range(3))
    scale = math.exp(float(rng.uniform(*(math.log(float(s)) for s in scale_range))))
    m = np.abs(np.asarray(create_rotate(3, angles))[:3, :3]) * scale  # (3, 3)
    half = m @ (np.asarray(patch, dtype=float) / 2)
    region = tuple(max(int(p), 2 * int(math.ceil(h)) + int(p) % 2) for p, h in zip(patch, half))
    return SpatialDraw(angles, scale, region)


def apply_affine(draw: SpatialDraw, image: np.ndarray, target: np.ndarray, patch: tuple[int, ...]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate and scale about the region's centre and cut ``patch`` from it.

    Args:
        image: (C, *draw.region) float32. target: (Q, *draw.region) bool or float32.

    Returns:
        image (C, *patch) float32 and target (Q, *patch) with the input's dtype.
    """
    from monai.transforms import Affine

    warp = Affine(rotate_params=list(draw.angles), scale_params=[draw.scale] * 3, spatial_size=tuple(patch),
                  padding_mode="border", image_only=True)
    both = np.concatenate([image.astype(np.float32, copy=False), target.astype(np.float32, copy=False)])
    out = np.asarray(warp(torch.from_numpy(both), mode="bilinear"), dtype=np.float32)  # one grid, C + Q channels
    img, tgt = out[:len(image)], out[len(image):].clip(0.0, 1.0)
    return img, (tgt >= 0.5 if target.dtype == np.bool_ else tgt)
