"""Image I/O in the file's own voxel grid: load with strict validation (writers: :mod:`sat.infer.outputs`).

Geometry convention (nibabel's): ``Volume.array`` is indexed ``(i, j, k)`` in the file's voxel
order and ``Volume.affine`` maps ``(i, j, k, 1)`` to world RAS+ millimetres. Nothing is reoriented
or resampled here, so a mask saved with ``save_mask(mask, volume.affine, ...)`` overlays the input.
SimpleITK readers (NRRD, DICOM) are converted from LPS world coordinates and ``(z, y, x)`` arrays.
Every bad input raises :class:`sat.errors.InputError` with a one-line message.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from sat.errors import InputError
from sat.infer.outputs import (check_writable_dir, one_line, safe_filename, save_mask, save_probabilities,
                               unique_filenames)

__all__ = ["Volume", "check_writable_dir", "find_dicom_series", "is_image_file", "load_volume", "safe_filename",
           "save_mask", "save_probabilities", "unique_filenames"]

log = logging.getLogger(__name__)
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_MAX_ZIP_BYTES = 16 * 2**30  # refuse archives that would unpack to more than this
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


def _validate(array: np.ndarray, affine: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Check shape, values and geometry; return (float32 (X, Y, Z) array, float64 (4, 4) affine)."""
    if array.size == 0:
        raise InputError(f"{source}: empty image (shape {array.shape})")
    if array.ndim < 3 or min(array.shape[:3]) < 2:
        raise InputError(f"{source}: 2D image of shape {array.shape}; a 3D volume is required")
    if array.dtype.kind not in "biuf":
        raise InputError(f"{source}: voxel type {array.dtype} is not real-valued numeric")
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
    return array, affine


def _check(array: np.ndarray, affine: np.ndarray, channel: int | None,
           source: str) -> tuple[np.ndarray, np.ndarray]:
    if array.ndim >= 4 or channel is not None:
        array = _select_channel(array, channel, source)
    return _validate(array, affine, source)


def _check_raw_pixdim(path: Path) -> None:
    """Refuse zero/negative header spacing when no sform overrides it (nibabel would silently fix it)."""
    try:
        with nib.openers.ImageOpener(str(path)) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = nib.Nifti1Header.from_fileobj(f, check=False)
    except Exception:  # noqa: BLE001 - unreadable headers are reported by nib.load below
        return
    if int(raw["sizeof_hdr"]) != 348 or int(raw["sform_code"]) > 0:
        return  # NIfTI-2 (own header) or an explicit sform: pixdim does not define the geometry
    pixdim = np.asarray(raw["pixdim"][1:4], dtype=np.float64)
    dims = int(raw["dim"][0])
    if 1 <= dims <= 7 and not np.all(np.isfinite(pixdim) & (pixdim > 0)):
        raise InputError(f"{path}: zero or negative voxel spacing in the header (pixdim "
                         f"{np.round(pixdim, 6).tolist()}); a 3D volume needs positive spacing")


def _load_nifti(path: Path, channel: int | None) -> Volume:
    picked = None  # the channel already read, so that only one channel of a 4D file is loaded
    _check_raw_pixdim(path)
    try:
        with warnings.catch_warnings(record=True) as caught:  # header oddities: logged, not printed
            warnings.simplefilter("always")
            img = nib.load(str(path))
            shape = img.shape
            if len(shape) == 4 and channel is not None and 0 <= channel < shape[3]:
                array, picked = np.asarray(img.dataobj[..., channel], dtype=np.float32), channel
            else:
                array = img.get_fdata(dtype=np.float32)  # reads (and decompresses) inside the try
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: not a readable NIfTI image ({one_line(exc)})") from None
    for w in caught:
        log.info("%s: %s", path, w.message)
    array, affine = _check(array, img.affine, None if picked is not None else channel, str(path))
    hdr = img.header
    meta = {"format": "nifti", "original_dtype": str(img.get_data_dtype()),
            "original_shape": list(shape), "qform_code": int(hdr["qform_code"]),
            "sform_code": int(hdr["sform_code"])}
    return Volume(array, affine, None, str(path), meta)


def _from_sitk(image: Any, channel: int | None, source: str) -> tuple[np.ndarray, np.ndarray]:
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
    return _check(arr, affine, channel, source)


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


def _load_dicom_dir(folder: Path, channel: int | None, source: str) -> Volume:
    import SimpleITK as sitk

    series = _find_dicom_series(folder)
    if not series:
        where = "archive" if source.lower().endswith(".zip") else "folder"
        raise InputError(f"{source}: no DICOM series or image file found in this {where}")
    if len(series) > 1:
        raise InputError(f"{source}: contains {len(series)} DICOM series; pass a folder holding exactly one")
    root, sid = series[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(root), sid))
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{source}: unreadable DICOM series ({one_line(exc)})") from None
    tags = {"0008|0060": "Modality", "0008|103e": "SeriesDescription", "0008|0070": "Manufacturer",
            "0018|0050": "SliceThickness"}
    files = list(reader.GetFileNames())  # slice order: index k of the volume is files[k]
    meta: dict[str, Any] = {"format": "dicom", "n_files": len(files)}
    if source.lower().endswith(".zip"):  # the unpacked copy is temporary: keep archive member names
        meta["dicom_archive"] = source
        meta["dicom_files"] = [Path(os.path.relpath(f, folder)).as_posix() for f in files]
    else:
        meta["dicom_files"] = [str(Path(f).resolve()) for f in files]
    for tag, name in tags.items():
        if reader.HasMetaDataKey(0, tag):
            meta[name] = reader.GetMetaData(0, tag).strip()
    modality = meta.get("Modality") or None
    array, affine = _from_sitk(image, channel, source)
    return Volume(array, affine, modality, source, meta)


def _load_zip(path: Path, channel: int | None) -> Volume:
    try:
        with zipfile.ZipFile(path) as zf:
            if sum(info.file_size for info in zf.infolist()) > _MAX_ZIP_BYTES:
                raise InputError(f"{path}: archive unpacks to more than {_MAX_ZIP_BYTES // 2**30} GiB")
            with tempfile.TemporaryDirectory(prefix="sat_zip_") as tmp:
                zf.extractall(tmp)  # zipfile strips absolute paths and '..' components
                return _load_dicom_dir(Path(tmp), channel, str(path))
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: not a readable zip archive ({one_line(exc)})") from None


def _load_sitk_file(path: Path, channel: int | None) -> Volume:
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable image ({one_line(exc)})") from None
    if _suffix(path) == ".dcm" and (image.GetDimension() < 3 or image.GetSize()[2] == 1):
        raise InputError(f"{path}: a single 2D DICOM slice; pass the folder (or .zip) of the whole series")
    array, affine = _from_sitk(image, channel, str(path))
    meta = {"format": _suffix(path).lstrip("."), "original_shape": list(array.shape)}
    modality = image.GetMetaData("0008|0060").strip() if image.HasMetaDataKey("0008|0060") else None
    return Volume(array, affine, modality or None, str(path), meta)


def load_volume(path_or_array: str | os.PathLike | np.ndarray | Volume,
                affine: np.ndarray | None = None, *, channel: int | None = None) -> Volume:
    """Load and validate a 3D image without reorienting or resampling it.

    Args:
        path_or_array: a NIfTI file (.nii, .nii.gz), NRRD/MetaImage file (.nrrd, .nhdr, .mha, .mhd), a
            folder holding one DICOM series, a .zip of one DICOM series, a (X, Y, Z[, C]) array, or a Volume.
        affine: (4, 4) voxel -> world RAS+ mm; required with an array, ignored otherwise.
        channel: index along the last axis of a 4D (channel-last) image; required for 4D inputs.

    Returns:
        A Volume with a finite float32 (X, Y, Z) array and its affine.

    Raises:
        InputError: missing/unreadable/non-image path, no DICOM series, 2D or empty image, 4D without
            ``channel`` or channel out of range, NaN/Inf voxels, or degenerate spacing.
    """
    if isinstance(path_or_array, Volume):
        arr, aff = _check(path_or_array.array, path_or_array.affine, channel, path_or_array.source)
        v = path_or_array
        return Volume(arr, aff, v.modality, v.source, dict(v.header_meta))
    if isinstance(path_or_array, np.ndarray):
        if affine is None:
            raise InputError("an array input needs its 4x4 voxel-to-world affine (affine=...)")
        arr, aff = _check(path_or_array, affine, channel, "array")
        return Volume(arr, aff, None, "array", {"format": "array"})
    if not isinstance(path_or_array, (str, os.PathLike)):
        kind = type(path_or_array).__name__
        raise InputError(f"expected a path, a numpy array or a Volume, got {kind}")
    path = Path(path_or_array).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_dicom_dir(path, channel, str(path))
    suffix = _suffix(path)
    if suffix in _NIFTI_SUFFIXES:
        return _load_nifti(path, channel)
    if suffix in _SITK_SUFFIXES:
        return _load_sitk_file(path, channel)
    if suffix == ".zip":
        return _load_zip(path, channel)
    raise InputError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected .nii, .nii.gz, "
                     ".nrrd, .nhdr, .mha, .mhd, .zip or a DICOM series folder")
