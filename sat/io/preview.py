"""A PNG preview: axial, coronal and sagittal planes with coloured structure overlays (``--preview``).

For display only, a copy of the image and masks is flipped/transposed to the closest RAS+ axes
(``nibabel.orientations``, no interpolation), so every input orientation is shown the same way:
radiological convention (patient right on screen left), anterior up in the axial plane, superior
up in the coronal and sagittal planes, anterior on the left in the sagittal plane. Pixels keep
their physical aspect ratio.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from nibabel.orientations import apply_orientation, io_orientation

from sat.errors import InputError

_ALPHA = 0.45
# (array axis held fixed, panel name, (left, right, top, bottom) edge letters); RAS axes 0/1/2.
_PLANES = ((2, "axial", "RLAP"), (1, "coronal", "RLSI"), (0, "sagittal", "APSI"))
_EDGE_SPOTS = ((0.01, 0.5, "left", "center"), (0.99, 0.5, "right", "center"),
               (0.5, 0.99, "center", "top"), (0.5, 0.01, "center", "bottom"))  # axes coordinates


def _window(image: np.ndarray) -> tuple[float, float]:
    """Display range: a soft-tissue window for CT-like intensities, else the 1-99 percentiles."""
    sample = image[::2, ::2, ::2] if image.size > 2_000_000 else image
    lo, hi = np.percentile(sample, [1.0, 99.0])
    if lo < -500.0:  # only Hounsfield units (air at -1000) go this low
        return -160.0, 240.0
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def _colours(n: int) -> list[tuple[float, float, float]]:
    import matplotlib

    if n <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [cmap(i)[:3] for i in range(n)]
    cmap = matplotlib.colormaps["hsv"]
    return [cmap(i / n)[:3] for i in range(n)]


def _centroid(mask: np.ndarray) -> np.ndarray:
    """Mean voxel index (3,) of a non-empty mask from its axis projections (no (N, 3) index array)."""
    out = np.empty(3)
    for a in range(3):
        counts = mask.sum(axis=tuple(d for d in range(3) if d != a), dtype=np.int64)  # (n_a,)
        out[a] = float(counts @ np.arange(mask.shape[a])) / float(counts.sum())
    return out


def _pick_slice(union: np.ndarray, axis: int, target: int) -> int:
    """The slice along ``axis`` nearest ``target`` that contains some mask voxel (``target`` if none)."""
    present = np.flatnonzero(union.any(axis=tuple(a for a in range(3) if a != axis)))
    return target if present.size == 0 else int(present[np.argmin(np.abs(present - target))])


def _plane(vol: np.ndarray, axis: int, index: int) -> np.ndarray:
    """(rows, cols) plane of a RAS volume, oriented for display as documented above."""
    return np.take(vol, index, axis=axis).T[::-1, ::-1]


def _ras_index_to_world(ras_index: list[int], ornt: np.ndarray, shape: tuple[int, ...],
                        affine: np.ndarray) -> np.ndarray:
    """World RAS mm of a voxel given by its index in the display (RAS-reoriented) array."""
    voxel = np.ones(4)
    for i, (ras_axis, flip) in enumerate(ornt.astype(int)):
        r = ras_index[ras_axis]
        voxel[i] = r if flip == 1 else shape[i] - 1 - r
    return (affine @ voxel)[:3]


def render_preview(image: np.ndarray, affine: np.ndarray, masks: dict[str, np.ndarray],
                   path: str | os.PathLike, title: str | None = None) -> Path:
    """Write a three-plane PNG of ``image`` with each mask overlaid in its own colour and a legend.

    Args:
        image: (X, Y, Z) intensities in the file's voxel order.
        affine: (4, 4) voxel -> world RAS+ mm.
        masks: structure name -> (X, Y, Z) boolean mask on the same grid (may be empty).
        path: output PNG path.
        title: optional figure title.

    Returns:
        The written path.

    Raises:
        ValueError: an array is not 3D or a mask shape differs from the image.
        InputError: the PNG cannot be written.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend state, renders with Agg
    from matplotlib.patches import Patch

    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"image must be 3D (X, Y, Z), got shape {image.shape}")
    for name, m in masks.items():
        if np.shape(m) != image.shape:
            raise ValueError(f"mask {name!r} has shape {np.shape(m)}, expected {image.shape}")
    ornt = io_orientation(np.asarray(affine, dtype=np.float64))  # (3, 2): RAS axis, flip per axis
    spacing = np.empty(3)
    spacing[ornt[:, 0].astype(int)] = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
    vol = apply_orientation(image, ornt)  # (R, A, S) view, no copy of values needed
    ras = {name: apply_orientation(m if m.dtype == bool else m != 0, ornt)  # views of bool masks
           for name, m in ((k, np.asarray(v)) for k, v in masks.items())}
    union = np.zeros(vol.shape, dtype=bool)
    for m in ras.values():
        union |= m
    centre = _centroid(union) if union.any() else (np.array(vol.shape) - 1) / 2.0
    lo, hi = _window(vol)
    colours = dict(zip(ras, _colours(len(ras))))

    picks = [_pick_slice(union, a, int(round(float(centre[a])))) for a in range(3)]  # RAS indices
    world = _ras_index_to_world(picks, ornt, image.shape, np.asarray(affine, dtype=np.float64))
    fig = Figure(figsize=(12, 4.6), facecolor="black")
    axes = fig.subplots(1, 3)
    for ax, (axis, name, edges) in zip(axes, _PLANES):
        index = picks[axis]
        plane = _plane(vol, axis, index)  # (rows, cols)
        col_axis, row_axis = (a for a in range(3) if a != axis)
        extent = (0, plane.shape[1] * spacing[col_axis], 0, plane.shape[0] * spacing[row_axis])
        ax.imshow(plane, cmap="gray", vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
        overlay = np.zeros(plane.shape + (4,), dtype=np.float32)  # (rows, cols, RGBA)
        for struct, m in ras.items():
            sl = _plane(m, axis, index)
            overlay[sl] = (*colours[struct], _ALPHA)
        ax.imshow(overlay, extent=extent, interpolation="nearest")
        ax.set_title(f"{name}  {'RAS'[axis]} = {world[axis]:.1f} mm", color="white", fontsize=10)
        for (x, y, ha, va), letter in zip(_EDGE_SPOTS, edges):
            ax.text(x, y, letter, transform=ax.transAxes, ha=ha, va=va, color="yellow", fontsize=9)
        ax.axis("off")
    handles = [Patch(color=colours[s], label=s if ras[s].any() else f"{s} (empty)") for s in ras]
    rows = 0
    if handles:  # long labels (e.g. "[implausible: volume, intensity]") get fewer columns, more rows
        longest = max(len(h.get_label()) for h in handles)
        ncol = max(1, min(len(handles), 6, 150 // max(longest + 6, 1)))
        rows = -(-len(handles) // ncol)
        fig.legend(handles=handles, loc="lower center", ncol=ncol, frameon=False, labelcolor="white", fontsize=9)
    if title:
        fig.suptitle(title, color="white")
    fig.tight_layout(rect=(0, min(0.06 + 0.05 * rows, 0.4) if handles else 0, 1, 0.95 if title else 1))
    path = Path(path)
    try:
        fig.savefig(path, dpi=100, facecolor="black")
    except OSError as exc:
        raise InputError(f"{path}: cannot write preview ({type(exc).__name__}: {exc})") from None
    return path
