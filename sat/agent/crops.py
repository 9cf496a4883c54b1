"""Key slices and PNG crops of one structure, for a VLM (or a person) to look at.

A key slice is, for each anatomical plane, the slice through the mask with the largest area. Its
index runs along the image's own array axis (the one closest to that plane's normal), so it can be
used directly on the input file. Crops are shown like ``preview.png``: radiological convention,
anterior up in axial, superior up in coronal and sagittal, square pixels in millimetres.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from nibabel.orientations import apply_orientation, io_orientation
from scipy.ndimage import binary_erosion

from sat.agent.models import KeySlice

PLANES = (("axial", 2), ("coronal", 1), ("sagittal", 0))  # (name, RAS axis held fixed)
MARGIN_MM = 20.0
MIN_SIDE_PX = 160
_COLOUR = np.array([255.0, 90.0, 0.0])


def array_axis_of(affine: np.ndarray) -> dict[int, tuple[int, bool]]:
    """RAS axis -> (array axis closest to it, whether the array runs against it)."""
    ornt = io_orientation(np.asarray(affine, dtype=np.float64))  # (3, 2): per array axis (RAS axis, flip)
    return {int(r): (i, f < 0) for i, (r, f) in enumerate(ornt)}


def key_slices(mask: np.ndarray, affine: np.ndarray) -> list[tuple[str, int, int]]:
    """``(plane, array axis, index)`` of the largest-area slice per plane; empty for an empty mask.

    Args:
        mask: (X, Y, Z) bool mask in the image's voxel order.
        affine: (4, 4) voxel -> world RAS+ mm.
    """
    if not mask.any():
        return []
    axes = array_axis_of(affine)
    out = []
    for name, ras in PLANES:
        axis = axes[ras][0]
        area = mask.sum(axis=tuple(a for a in range(3) if a != axis))  # (n_slices,)
        out.append((name, axis, int(np.argmax(area))))
    return out


def _window(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values, [1.0, 99.0]) if values.size else (0.0, 1.0)
    if lo < -500.0:  # Hounsfield units: a soft-tissue window
        return -160.0, 240.0
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def render_crop(image: np.ndarray, mask: np.ndarray, affine: np.ndarray, plane: str, index: int,
                path: str | Path) -> Path:
    """Write an RGB PNG of one plane around the mask, with the mask tinted and outlined.

    Args:
        image, mask: (X, Y, Z) arrays on one grid. affine: (4, 4) voxel -> world RAS+ mm.
        plane: ``axial``, ``coronal`` or ``sagittal``. index: slice index along the image array axis
            of that plane (as returned by :func:`key_slices`).
        path: output PNG path.
    """
    from PIL import Image

    ras = dict(PLANES)[plane]
    ornt = io_orientation(np.asarray(affine, dtype=np.float64))
    axis, flipped = array_axis_of(affine)[ras]
    ras_index = image.shape[axis] - 1 - index if flipped else index
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    img = np.take(apply_orientation(image, ornt), ras_index, axis=ras).T[::-1, ::-1]  # (rows, cols)
    msk = np.take(apply_orientation(mask, ornt), ras_index, axis=ras).T[::-1, ::-1]
    col_ras, row_ras = (a for a in range(3) if a != ras)
    row_sp, col_sp = spacing[row_ras], spacing[col_ras]
    rows, cols = np.nonzero(msk)
    if rows.size:
        mr, mc = int(np.ceil(MARGIN_MM / row_sp)), int(np.ceil(MARGIN_MM / col_sp))
        r0, r1 = max(rows.min() - mr, 0), min(rows.max() + mr + 1, msk.shape[0])
        c0, c1 = max(cols.min() - mc, 0), min(cols.max() + mc + 1, msk.shape[1])
        img, msk = img[r0:r1, c0:c1], msk[r0:r1, c0:c1]
    lo, hi = _window(img)
    gray = np.clip((img - lo) / (hi - lo), 0.0, 1.0)[..., None] * 255.0  # (rows, cols, 1)
    rgb = np.repeat(gray, 3, axis=2)
    rgb[msk] = 0.6 * rgb[msk] + 0.4 * _COLOUR
    edge = msk & ~binary_erosion(msk)
    rgb[edge] = _COLOUR
    base = min(row_sp, col_sp)  # square pixels: repeat rows/cols by their spacing ratio
    reps = [max(1, int(round(row_sp / base))), max(1, int(round(col_sp / base)))]
    zoom = max(1, int(np.ceil(MIN_SIDE_PX / max(1, min(rgb.shape[0] * reps[0], rgb.shape[1] * reps[1])))))
    rgb = np.repeat(np.repeat(rgb, reps[0] * zoom, axis=0), reps[1] * zoom, axis=1)
    path = Path(path)
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return path


def key_slice_crops(image: np.ndarray, mask: np.ndarray, affine: np.ndarray, outdir: str | Path,
                    stem: str) -> list[KeySlice]:
    """Key slices of ``mask`` with a PNG crop each (``<stem>_<plane>.png`` in ``outdir``)."""
    out = []
    for plane, axis, index in key_slices(mask, affine):
        png = render_crop(image, mask, affine, plane, index, Path(outdir) / f"{stem}_{plane}.png")
        out.append(KeySlice(plane=plane, axis=axis, index=index, png_path=str(png)))
    return out
