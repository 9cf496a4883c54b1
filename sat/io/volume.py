"""Image I/O in the file's own voxel grid: load with strict validation (writers: :mod:`sat.io.writers`).

Geometry convention (nibabel's): ``Volume.array`` is indexed ``(i, j, k)`` in the file's voxel
order and ``Volume.affine`` maps ``(i, j, k, 1)`` to world RAS+ millimetres. Nothing is reoriented
or resampled here, so a mask saved with :func:`sat.io.writers.save_mask` ``(mask, volume.affine, ...)``
overlays the input.
SimpleITK readers (NRRD, DICOM) are converted from LPS world coordinates and ``(z, y, x)`` arrays.
Every bad input raises :class:`sat.errors.InputError` with a one-line message.
"""
from __future__ import annotations

import logging
import os
import warnings
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from sat.errors import InputError
from sat.io.dicom_series import check_series, series_files
from sat.io.headers import check_sitk_header, open_nifti
from sat.io.writers import one_line
from sat.safe_open import Limits, check_file, check_spacing, check_tree, check_voxels

__all__ = ["Limits", "Volume", "find_dicom_series", "is_image_file", "load_volume"]

log = logging.getLogger(__name__)
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_READ_ERRORS = (OSError, EOFError, ValueError, RuntimeError, MemoryError, zlib.error,
                nib.filebasedimages.ImageFileError)


@dataclass
class Volume:
    """A 3D image in its own voxel grid."""

    array: np.ndarray  # (X, Y, Z) float32, the file's voxel order, never reoriented
    affine: np.ndarray  # (4, 4) float64, voxel index -> world RAS+ mm
    modality: str | None = None  # "CT" / "MR" / "PT" from DICOM metadata, else None
    source: str = "array"  # the path it came from, or "array"
    header_meta: dict[str, Any] = field(default_factory=dict)  # format, original dtype/shape, ...

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size in mm along each array axis, shape (3,)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _select_channel(array: np.ndarray, channel: int | None, source: str) -> np.ndarray:
    """Squeeze singleton axes past the third, then pick ``channel`` of a channel-last 4D array."""
    while array.ndim > 3 and 1 in array.shape[3:]:
        array = np.squeeze(array, axis=3 + array.shape[3:].index(1))
    if array.ndim > 4:
        raise InputError(f"{source}: {array.ndim}D image of shape {array.shape}; expected a 3D volume")
    n_channels = array.shape[3] if array.ndim == 4 else 1
    if array.ndim == 4 and channel is None:
        raise InputError(f"{source}: 4D image with {n_channels} channels (shape {array.shape}); "
                         f"pass a channel index 0..{n_channels - 1} to choose one")
    if channel is not None and not 0 <= channel < n_channels:
        raise InputError(f"{source}: channel {channel} is out of range; the image has {n_channels} "
                         f"channel(s), valid indices are 0..{n_channels - 1}")
    return array[..., channel] if array.ndim == 4 else array


def _validate(array: np.ndarray, affine: np.ndarray, source: str,
              limits: Limits | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check shape, values, size and geometry; return (float32 (X, Y, Z) array, float64 (4, 4) affine)."""
    limits = limits or Limits.from_env()
    if array.size == 0:
        raise InputError(f"{source}: empty image (shape {array.shape})")
    if array.ndim < 3 or min(array.shape[:3]) < 2:
        raise InputError(f"{source}: 2D image of shape {array.shape}; a 3D volume is required")
    if array.dtype.kind not in "biuf":
        raise InputError(f"{source}: voxel type {array.dtype} is not real-valued numeric")
    check_voxels(array.shape, limits, source)
    array = np.asarray(array, dtype=np.float32)
    n_bad = int(array.size - np.count_nonzero(np.isfinite(array)))
    if n_bad:
        raise InputError(f"{source}: {n_bad} of {array.size} voxels are NaN or Inf; "
                         "fix or mask them before segmenting")
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise InputError(f"{source}: affine must be a finite 4x4 matrix, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)) or not np.allclose(affine[3], [0, 0, 0, 1]):
        what = "non-finite values or last row != 0 0 0 1"
        raise InputError(f"{source}: affine must be a finite 4x4 matrix, got {what}")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    # |det| / prod(spacing) is 1 for orthogonal axes and 0 for a singular (degenerate) grid.
    skew = abs(np.linalg.det(affine[:3, :3])) / max(float(np.prod(spacing)), 1e-300)
    if np.any(spacing < 1e-6) or skew < 1e-6:
        sp = np.round(spacing, 6).tolist()
        raise InputError(f"{source}: invalid voxel geometry (spacing {sp} mm, "
                         "zero or singular affine); the header's spacing/direction are broken")
    check_spacing(spacing, limits, source)
    return array, affine


def _check(array: np.ndarray, affine: np.ndarray, channel: int | None,
           source: str, limits: Limits | None = None) -> tuple[np.ndarray, np.ndarray]:
    if array.ndim >= 4 or channel is not None:
        array = _select_channel(array, channel, source)
    return _validate(array, affine, source, limits)


def _check_raw_pixdim(path: Path, raw) -> None:
    """Refuse zero/negative header spacing when no sform overrides it (nibabel would silently fix it)."""
    if int(raw["sizeof_hdr"]) != 348 or int(raw["sform_code"]) > 0:
        return  # NIfTI-2 (own header) or an explicit sform: pixdim does not define the geometry
    pixdim = np.asarray(raw["pixdim"][1:4], dtype=np.float64)
    dims = int(raw["dim"][0])
    if 1 <= dims <= 7 and not np.all(np.isfinite(pixdim) & (pixdim > 0)):
        raise InputError(f"{path}: zero or negative voxel spacing in the header (pixdim "
                         f"{np.round(pixdim, 6).tolist()}); a 3D volume needs positive spacing")


def _load_nifti(path: Path, channel: int | None, limits: Limits) -> Volume:
    picked = None  # the channel already read, so that only one channel of a 4D file is loaded
    try:
        with warnings.catch_warnings(record=True) as caught:  # header oddities: logged, not printed
            warnings.simplefilter("always")
            img, raw = open_nifti(path, limits, str(path))  # header checked before any voxel is decoded
            _check_raw_pixdim(path, raw)
            shape = img.shape
            if len(shape) == 4 and channel is not None and 0 <= channel < shape[3]:
                array, picked = np.asarray(img.dataobj[..., channel], dtype=np.float32), channel
            else:
                array = img.get_fdata(dtype=np.float32)  # reads (and decompresses) inside the try
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: not a readable NIfTI image ({one_line(exc)})") from None
    for w in caught:
        log.info("%s: %s", path, w.message)
    array, affine = _check(array, img.affine, None if picked is not None else channel, str(path), limits)
    hdr = img.header
    meta = {"format": "nifti", "original_dtype": str(img.get_data_dtype()),
            "original_shape": list(shape), "qform_code": int(hdr["qform_code"]),
            "sform_code": int(hdr["sform_code"])}
    return Volume(array, affine, None, str(path), meta)


def _from_sitk(image: Any, channel: int | None, source: str,
               limits: Limits | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SimpleITK image -> ((X, Y, Z[, C]) array, RAS affine); LPS (z, y, x) converted."""
    import SimpleITK as sitk

    dim = image.GetDimension()
    arr = sitk.GetArrayViewFromImage(image)  # (z, y, x) or (t, z, y, x), plus (..., C) if vector
    if image.GetNumberOfComponentsPerPixel() > 1:
        arr = np.moveaxis(arr, -1, 0)  # components first, reversed to last below
    arr = np.array(arr.T, dtype=np.float32)  # (x, y, z[, t or C]); copies away from ITK memory
    if dim < 3:
        raise InputError(f"{source}: 2D image of shape {arr.shape}; a 3D volume is required")
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dim, dim)[:3, :3]
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)[:3]
    if not np.all(spacing > 0):
        raise InputError(f"{source}: zero or negative voxel spacing {np.round(spacing, 6).tolist()} mm; "
                         "a 3D volume needs positive spacing")
    origin = np.asarray(image.GetOrigin(), dtype=np.float64)[:3]
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ origin
    return _check(arr, affine, channel, source, limits)


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a file that :func:`load_volume` reads as one whole volume (not a .dcm slice)."""
    suffix = _suffix(path)
    return path.is_file() and (suffix in _NIFTI_SUFFIXES or suffix == ".zip"
                               or (suffix in _SITK_SUFFIXES and suffix != ".dcm"))


def find_dicom_series(folder: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(folder, series id)`` of every DICOM series under ``folder`` (recursively)."""
    return _find_dicom_series(Path(folder))


def _find_dicom_series(folder: Path) -> list[tuple[Path, str]]:
    import SimpleITK as sitk

    found = []
    warnings_on = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # GDCM warns on stderr per non-DICOM folder
    try:
        for root, _dirs, _files in os.walk(folder):
            ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(root) or ()
            found += [(Path(root), sid) for sid in ids]
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_on)
    return found


def _load_dicom_dir(folder: Path, channel: int | None, source: str, limits: Limits) -> Volume:
    import SimpleITK as sitk

    check_tree(folder, limits)  # every file a regular one inside the roots: no FIFO, no linked-out slice
    series = _find_dicom_series(folder)
    if not series:
        where = "archive" if source.lower().endswith(".zip") else "folder"
        raise InputError(f"{source}: no DICOM series or image file found in this {where}")
    if len(series) > 1:
        raise InputError(f"{source}: contains {len(series)} DICOM series; pass a folder holding exactly one")
    root, sid = series[0]
    files = [str(check_file(f, limits)) for f in series_files(root, sid)]
    slices = check_series(files, limits, source)  # declared size, missing/duplicate/uneven slices
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{source}: unreadable DICOM series ({one_line(exc)})") from None
    tags = {"0008|0060": "Modality", "0008|103e": "SeriesDescription", "0008|0070": "Manufacturer",
            "0018|0050": "SliceThickness"}
    files = list(reader.GetFileNames())  # slice order: index k of the volume is files[k]
    meta: dict[str, Any] = {"format": "dicom", "n_files": len(files), "slices": slices}
    if source.lower().endswith(".zip"):  # the unpacked copy is temporary: keep archive member names
        meta["dicom_archive"] = source
        real_folder = os.path.realpath(folder)
        meta["dicom_files"] = [Path(os.path.relpath(f, real_folder)).as_posix() for f in files]
    else:
        meta["dicom_files"] = [str(Path(f).resolve()) for f in files]
    for tag, name in tags.items():
        if reader.HasMetaDataKey(0, tag):
            meta[name] = reader.GetMetaData(0, tag).strip()
    modality = meta.get("Modality") or None
    array, affine = _from_sitk(image, channel, source, limits)
    return Volume(array, affine, modality, source, meta)


def _load_zip(path: Path, channel: int | None, limits: Limits) -> Volume:
    from sat.io.archive import unpacked

    with unpacked(path, limits, str(path)) as tmp:
        return _load_dicom_dir(tmp, channel, str(path), replace(limits, roots=()))  # the private copy


def _load_sitk_file(path: Path, channel: int | None, limits: Limits) -> Volume:
    import SimpleITK as sitk

    check_sitk_header(path, limits, str(path))  # declared size, detached data file, before decoding
    if _suffix(path) == ".dcm":
        check_series([str(path)], limits, str(path))
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable image ({one_line(exc)})") from None
    if _suffix(path) == ".dcm" and (image.GetDimension() < 3 or image.GetSize()[2] == 1):
        raise InputError(f"{path}: a single 2D DICOM slice; pass the folder (or .zip) of the whole series")
    array, affine = _from_sitk(image, channel, str(path), limits)
    meta = {"format": _suffix(path).lstrip("."), "original_shape": list(array.shape)}
    modality = image.GetMetaData("0008|0060").strip() if image.HasMetaDataKey("0008|0060") else None
    return Volume(array, affine, modality or None, str(path), meta)


def load_volume(path_or_array: str | os.PathLike | np.ndarray | Volume,
                affine: np.ndarray | None = None, *, channel: int | None = None,
                limits: Limits | None = None) -> Volume:
    """Load and validate a 3D image without reorienting or resampling it.

    Files are opened through :mod:`sat.safe_open`: only regular files (never a FIFO or device),
    every file the reader touches inside ``limits.roots`` when roots are set, and the voxel count
    and spacing a header declares checked before anything is decoded.

    Args:
        path_or_array: a NIfTI file (.nii, .nii.gz), NRRD/MetaImage file (.nrrd, .nhdr, .mha, .mhd), a
            folder holding one DICOM series, a .zip of one DICOM series, a (X, Y, Z[, C]) array, or a Volume.
        affine: (4, 4) voxel -> world RAS+ mm; required with an array, ignored otherwise.
        channel: index along the last axis of a 4D (channel-last) image; required for 4D inputs.
        limits: roots and size limits (default :meth:`Limits.from_env`: no roots).

    Returns:
        A Volume with a finite float32 (X, Y, Z) array and its affine.

    Raises:
        InputError: missing/unreadable/non-image path, not a regular file, outside the roots, over a
            size limit, no DICOM series or a series with missing/duplicate/uneven slices, 2D or empty
            image, 4D without ``channel`` or channel out of range, NaN/Inf voxels, complex voxels,
            corrupt gzip data, or degenerate or huge spacing.
    """
    limits = limits or Limits.from_env()
    if isinstance(path_or_array, Volume):
        arr, aff = _check(path_or_array.array, path_or_array.affine, channel, path_or_array.source, limits)
        v = path_or_array
        return Volume(arr, aff, v.modality, v.source, dict(v.header_meta))
    if isinstance(path_or_array, np.ndarray):
        if affine is None:
            raise InputError("an array input needs its 4x4 voxel-to-world affine (affine=...)")
        arr, aff = _check(path_or_array, affine, channel, "array", limits)
        return Volume(arr, aff, None, "array", {"format": "array"})
    if not isinstance(path_or_array, (str, os.PathLike)):
        kind = type(path_or_array).__name__
        raise InputError(f"expected a path, a numpy array or a Volume, got {kind}")
    path = Path(path_or_array).expanduser()
    if not os.path.lexists(path):
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_dicom_dir(path, channel, str(path), limits)
    check_file(path, limits)  # regular file inside the roots, before any reader opens it
    suffix = _suffix(path)
    if suffix in _NIFTI_SUFFIXES:
        return _load_nifti(path, channel, limits)
    if suffix in _SITK_SUFFIXES:
        return _load_sitk_file(path, channel, limits)
    if suffix == ".zip":
        return _load_zip(path, channel, limits)
    raise InputError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected .nii, .nii.gz, "
                     ".nrrd, .nhdr, .mha, .mhd, .zip or a DICOM series folder")
