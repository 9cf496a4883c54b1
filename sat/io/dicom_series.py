"""Checks on a DICOM series before it is decoded: declared size and slice positions.

SimpleITK stacks the slices it is given and derives one slice spacing from the first and last
positions, so a series with missing, duplicated or unevenly spaced slices would load with a wrong
uniform spacing (5 of 30 slices missing: 3.625 mm instead of 3.0, every volume ~21 % too large).
:func:`check_series` reads each slice's header only (rows, columns, position, orientation),
refuses such series with one line naming the problem, and returns what it measured; the loader
stores that as ``Volume.header_meta["slices"]`` and the writer reports it in ``result.json``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sat.errors import InputError
from sat.safe_open import Limits, check_voxels

REL_TOL = 0.01  # slice gaps may differ from their median by 1 % ...
ABS_TOL_MM = 0.01  # ... or by 0.01 mm, whichever is larger


def _floats(text: str, n: int) -> np.ndarray | None:
    try:
        values = np.asarray([float(v) for v in text.replace(",", "\\").split("\\") if v.strip()], dtype=np.float64)
    except ValueError:
        return None
    return values if values.shape == (n,) and np.all(np.isfinite(values)) else None


def _slice_info(path: str) -> tuple[int, int, int, np.ndarray | None, np.ndarray | None]:
    """``(rows, columns, frames, position (3,), orientation (6,))`` from one file's header."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"{path}: unreadable DICOM header ({str(exc).strip().splitlines()[-1][:200]})") from None
    size = reader.GetSize()
    get = (lambda tag: reader.GetMetaData(tag) if reader.HasMetaDataKey(tag) else "")
    frames = int(size[2]) if len(size) > 2 else 1
    return int(size[0]), int(size[1]), frames, _floats(get("0020|0032"), 3), _floats(get("0020|0037"), 6)


def check_series(files: list[str], limits: Limits, source: str) -> dict:
    """Check a series' declared size and slice spacing; return the measured slice geometry.

    Args:
        files: slice files in the order the reader will stack them.

    Returns:
        ``{"n_slices", "spacing_mm", "min_gap_mm", "max_gap_mm", "uniform": True}``.

    Raises:
        InputError: too many voxels, mixed slice sizes or orientations, missing positions, or
            missing / duplicated / unevenly spaced slices.
    """
    infos = [_slice_info(f) for f in files]
    rows, cols = infos[0][0], infos[0][1]
    check_voxels((rows, cols, sum(i[2] for i in infos)), limits, source)
    if any((i[0], i[1]) != (rows, cols) for i in infos):
        raise InputError(f"{source}: slices of different sizes in one series")
    report = {"n_slices": len(files), "spacing_mm": None, "min_gap_mm": None, "max_gap_mm": None, "uniform": True}
    if len(files) < 2:
        return report
    if any(i[3] is None or i[4] is None for i in infos):
        raise InputError(f"{source}: a slice lacks its position or orientation (ImagePositionPatient / "
                         "ImageOrientationPatient); the slice spacing cannot be checked")
    orient = infos[0][4]
    if any(not np.allclose(i[4], orient, atol=1e-4) for i in infos):
        raise InputError(f"{source}: slices with different orientations in one series")
    normal = np.cross(orient[:3], orient[3:])
    pos = np.asarray([float(np.dot(i[3], normal)) for i in infos])  # along the stacking axis, in file order
    gaps = np.diff(pos)
    if np.any(gaps < 0) and np.any(gaps > 0):
        raise InputError(f"{source}: slices are not stacked in position order")
    gaps = np.abs(gaps)
    step = float(np.median(gaps))
    report.update(spacing_mm=round(step, 6), min_gap_mm=round(float(gaps.min()), 6),
                  max_gap_mm=round(float(gaps.max()), 6))
    tol = max(ABS_TOL_MM, REL_TOL * step)
    dup = int(np.sum(gaps <= tol)) if step > tol else len(gaps)
    if dup:
        raise InputError(f"{source}: {dup} duplicated slice position(s) (two slices at the same place); "
                         "remove the duplicates or pass one series")
    missing = int(np.sum(np.rint(gaps / step) - 1)) if np.any(gaps > step + tol) else 0
    if missing > 0:
        where = float(pos[1:][np.argmax(gaps)])
        raise InputError(f"{source}: about {missing} slice(s) missing (gaps up to {gaps.max():.3f} mm, slice "
                         f"spacing {step:.3f} mm, largest gap before position {where:.2f} mm); the volume "
                         "would be stretched")
    if np.any(np.abs(gaps - step) > tol):
        raise InputError(f"{source}: unevenly spaced slices (gaps {gaps.min():.3f}..{gaps.max():.3f} mm); "
                         "resample the series to a uniform spacing first")
    return report


def series_files(root: Path, series_id: str) -> list[str]:
    """The files of one series in SimpleITK's stacking order."""
    import SimpleITK as sitk

    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(root), series_id))
