"""Reading one case's files: image channels through :func:`sat.io.volume.load_volume`, label maps.

Images of every format (NIfTI, NRRD/MetaImage, DICOM series folders, zipped series) go through
``load_volume``, which validates them and returns RAS affines. Every file is opened through
:mod:`sat.safe_open` (regular files only, header-declared sizes checked before decoding). Label maps keep their integer type
(NIfTI is read with nibabel, so a 512x512x600 uint8 map stays 150 MB, not 600 MB of floats).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from sat.errors import InputError
from sat.io.headers import open_nifti, read_nifti_header
from sat.io.volume import Volume, load_volume
from sat.safe_open import Limits, check_file

_SLICE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def visible(path: Path) -> bool:
    """False for hidden files such as macOS ``._*`` resource forks and dot-files."""
    return not path.name.startswith(".")


def natural_key(text: str) -> list:
    """Sort key that orders ``slice_2`` before ``slice_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def channel_count(path: Path) -> int:
    """Number of channels in an image file (4D NIfTI, vector or 4D NRRD); 1 for DICOM folders."""
    if path.is_dir() or path.suffix.lower() == ".zip" or not path.exists():
        return 1
    import SimpleITK as sitk

    check_file(path, Limits.from_env())  # never hand a FIFO or device to a reader
    try:
        if is_nifti(path):
            hdr = read_nifti_header(path, Limits.from_env())
            shape = tuple(int(d) for d in hdr["dim"][1:int(hdr["dim"][0]) + 1])
        else:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
    except Exception:  # unreadable header (InputError included): load_volume reports it with a clear message
        return 1
    if is_nifti(path):
        extra = [n for n in shape[3:] if n != 1]
        if len(extra) > 1:
            raise ValueError(f"{path}: image of shape {shape} has more than one non-singleton axis "
                             "past the third")
        return extra[0] if extra else 1
    if reader.GetNumberOfComponents() > 1:
        return int(reader.GetNumberOfComponents())
    return int(reader.GetSize()[3]) if reader.GetDimension() == 4 else 1


def read_channels(path: Path) -> list[Volume]:
    """Every channel of one image file (or DICOM folder) as validated :class:`Volume` objects."""
    n = channel_count(path)
    if n == 1:
        return [load_volume(path)]
    if is_nifti(path):  # decompress a 4D file once, then validate each channel
        img, _ = open_nifti(path, Limits.from_env(), str(path))
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(*img.shape[:3], n)
        return [load_volume(np.ascontiguousarray(data[..., c]), img.affine) for c in range(n)]
    return [load_volume(path, channel=c) for c in range(n)]


def same_grid(shape_a, affine_a, shape_b, affine_b) -> bool:
    """True when two grids have the same shape and (to 1e-3 mm / 1e-4 relative) the same affine."""
    return tuple(shape_a)[:3] == tuple(shape_b)[:3] and np.allclose(
        np.asarray(affine_a, float), np.asarray(affine_b, float), rtol=1e-4, atol=1e-3)


def _as_labels(array: np.ndarray, source: str) -> np.ndarray:
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"{source}: label map must be 3D, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{source}: label map holds NaN or Inf")
        array = np.rint(array)
    elif array.dtype.kind not in "iub":
        raise ValueError(f"{source}: label voxel type {array.dtype} is not numeric")
    low, top = (int(array.min()), int(array.max())) if array.size else (0, 0)
    if low < 0:
        raise ValueError(f"{source}: label map holds negative values (min {low})")
    return array.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int64, copy=False)


def read_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An integer label map (or binary mask) and its RAS affine.

    Returns:
        ``(labels (X, Y, Z) unsigned ints, affine (4, 4))``.

    Raises:
        FileNotFoundError: missing file. ValueError: not a 3D map of non-negative integers.
    """
    if not path.exists():
        raise FileNotFoundError(f"missing label file {path}")
    if is_nifti(path):
        try:
            img, _ = open_nifti(path, Limits.from_env(), str(path))
            data = np.asanyarray(img.dataobj)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        except Exception as exc:  # nibabel raises many types for broken files
            raise ValueError(f"{path}: unreadable label file ({type(exc).__name__}: {exc})") from None
        return _as_labels(np.asarray(data), str(path)), np.asarray(img.affine, dtype=np.float64)
    vol = load_volume(path)
    return _as_labels(vol.array, str(path)), vol.affine


def _dicom_files_in_order(folder: Path) -> list[str]:
    """File names of the one DICOM series under ``folder``, in SimpleITK's (position) order."""
    import SimpleITK as sitk

    for root, _dirs, _files in os.walk(folder):
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(root) or ()
        if ids:
            return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(root, ids[0]))
    raise ValueError(f"{folder}: no DICOM series found")


def read_slice_stack(folder: Path, dicom_folder: Path) -> np.ndarray:
    """A label map from a folder of 2D slice images (e.g. CHAOS PNG ground truth).

    Slice ``i`` in natural file-name order belongs to DICOM file ``i`` in file-name order; the
    stack is reordered to the series' position order, so it lies on the image's grid.

    Returns:
        (X, Y, Z) unsigned label map (pixel row ``r``, column ``c`` -> voxel ``(c, r)``).
    """
    from PIL import Image

    if not folder.is_dir():
        raise FileNotFoundError(f"missing label slice folder {folder}")
    slices = sorted((p for p in folder.iterdir() if visible(p) and p.suffix.lower() in _SLICE_SUFFIXES),
                    key=lambda p: natural_key(p.name))
    dicom = _dicom_files_in_order(dicom_folder)
    if len(slices) != len(dicom):
        raise ValueError(f"{folder}: {len(slices)} label slices for {len(dicom)} DICOM files")
    by_name = sorted(dicom, key=lambda f: natural_key(Path(f).name))
    order = [by_name.index(f) for f in dicom]
    planes = [np.asarray(Image.open(check_file(slices[i], Limits.from_env())).convert("L")) for i in order]  # (rows, cols) each
    return _as_labels(np.stack(planes, axis=-1).transpose(1, 0, 2), str(folder))
