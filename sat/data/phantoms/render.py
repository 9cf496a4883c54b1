"""Intensities for a part map: CT-like Hounsfield units or T2-like MR arbitrary units.

Each tissue gets one value per case, drawn uniformly from its range, so the ordering of the soft
tissues changes from case to case and a fixed intensity window cannot separate them. Paired
organs share a tissue and therefore identical values. A smooth texture, a partial-volume blur and
noise follow; MR adds a multiplicative bias field and Rician noise.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from sat.data.phantoms.anatomy import PARTS
from sat.data.phantoms.shapes import smooth_noise

MODALITIES = ("CT", "MR")  # the modalities phantoms are rendered in (of sat.knowledge.modality.MODALITIES)

TISSUE_OF = {
    "air": "air", "fat": "fat", "muscle": "muscle", "bowel_wall": "bowel_wall",
    "bowel_fluid": "bowel_fluid", "bowel_gas": "gas", "bone": "bone", "vert_cortex": "bone",
    "vert_marrow": "marrow", "disc": "disc", "canal": "csf", "lung_left": "lung",
    "lung_right": "lung", "airway": "airway", "heart_muscle": "heart_muscle",
    "heart_blood": "heart_blood", "liver": "liver", "liver_tumor": "tumor", "gallbladder": "bile",
    "spleen": "spleen", "stomach_wall": "stomach_wall", "stomach_fluid": "stomach_fluid",
    "stomach_gas": "gas", "pancreas": "pancreas", "kidney_left": "kidney",
    "kidney_right": "kidney", "kidney_cyst_left": "cyst", "kidney_cyst_right": "cyst",
    "aorta": "aorta", "ivc": "ivc", "vessel": "vessel", "bladder": "urine",
}

# tissue: (low, high, texture amplitude); one value per case is drawn from [low, high].
_SOFT = (40.0, 70.0, 5.0)
CT_TISSUES: dict[str, tuple[float, float, float]] = {
    "air": (-1000, -1000, 0), "fat": (-115, -85, 6), "muscle": (40, 65, 5),
    "bowel_wall": (35, 65, 6), "bowel_fluid": (0, 25, 3), "gas": (-990, -900, 15),
    "bone": (450, 800, 40), "marrow": (180, 320, 25), "disc": (70, 100, 4), "csf": (5, 20, 2),
    "lung": (-900, -800, 25), "airway": (-1000, -980, 0), "heart_muscle": _SOFT,
    "heart_blood": (150, 250, 5), "liver": _SOFT, "tumor": (20, 40, 4), "bile": (0, 20, 2),
    "spleen": _SOFT, "stomach_wall": _SOFT, "stomach_fluid": (5, 25, 3), "pancreas": _SOFT,
    "kidney": _SOFT, "cyst": (0, 20, 2), "aorta": (150, 250, 4), "ivc": (150, 250, 6),
    "vessel": (150, 250, 6), "urine": (0, 20, 2),
}
MR_TISSUES: dict[str, tuple[float, float, float]] = {  # T2-like: fluid bright, flow voids dark
    "air": (0, 0, 0), "fat": (750, 900, 25), "muscle": (180, 260, 12),
    "bowel_wall": (300, 420, 20), "bowel_fluid": (900, 1200, 30), "gas": (0, 20, 0),
    "bone": (20, 60, 5), "marrow": (380, 520, 30), "disc": (700, 950, 25), "csf": (1150, 1350, 20),
    "lung": (30, 70, 10), "airway": (0, 10, 0), "heart_muscle": (220, 320, 12),
    "heart_blood": (40, 120, 30), "liver": (280, 380, 12), "tumor": (550, 750, 25),
    "bile": (1050, 1300, 20), "spleen": (520, 650, 15), "stomach_wall": (300, 420, 15),
    "stomach_fluid": (900, 1200, 30), "pancreas": (350, 450, 15), "kidney": (520, 680, 15),
    "cyst": (1150, 1350, 20), "aorta": (40, 120, 20), "ivc": (60, 300, 40),
    "vessel": (60, 250, 40), "urine": (1150, 1350, 20),
}


def _lookup(tissues: dict[str, tuple[float, float, float]], rng: np.random.Generator):
    """Per-part base value and texture amplitude, (len(PARTS),) float32 each."""
    drawn = {name: (rng.uniform(lo, hi), amp) for name, (lo, hi, amp) in tissues.items()}
    base = np.array([drawn[TISSUE_OF[p]][0] for p in PARTS], dtype=np.float32)
    amp = np.array([drawn[TISSUE_OF[p]][1] for p in PARTS], dtype=np.float32)
    return base, amp


def render(
    owner: np.ndarray,
    modality: str,
    rng: np.random.Generator,
    axes: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """Render a part map as an image.

    Args:
        owner: (X, Y, Z) uint8 part map indexing :data:`~sat.data.phantoms.anatomy.PARTS`.
        modality: ``"CT"`` (Hounsfield-like) or ``"MR"`` (T2-like, arbitrary units).
        rng: the case's generator.
        axes: 1D voxel coordinates in mm along x, y, z (for the smooth fields).

    Returns:
        (X, Y, Z) int16 image.

    Raises:
        ValueError: for an unknown modality.
    """
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
    base, amp = _lookup(CT_TISSUES if modality == "CT" else MR_TISSUES, rng)
    texture = smooth_noise(rng, axes, 12.0)[0]                      # (X, Y, Z)
    img = base[owner] + amp[owner] * texture
    del texture
    img = ndimage.gaussian_filter(img, sigma=0.6, truncate=2.5)     # partial-volume blur
    noise = rng.standard_normal((1 if modality == "CT" else 2, *owner.shape), dtype=np.float32)
    if modality == "CT":
        img += rng.uniform(10.0, 20.0) * noise[0]
        return np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    bias = np.exp(0.12 * smooth_noise(rng, axes, 120.0)[0])         # smooth, ~ +-25 %
    img *= bias * np.float32(rng.uniform(0.75, 1.1))
    sigma = np.float32(rng.uniform(12.0, 25.0))
    img = np.sqrt((img + sigma * noise[0]) ** 2 + (sigma * noise[1]) ** 2)  # Rician magnitude
    return np.clip(np.rint(img), 0, 4095).astype(np.int16)
