"""Writing masks in the input's grid and naming output files safely (re-exported by :mod:`sat.io.volume`)."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from sat.errors import InputError


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` of an exception on one line (SimpleITK preambles dropped, 300 chars max)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = " ".join(lines[-2:]) if lines else type(exc).__name__
    text = text.split("ERROR:")[-1].strip()  # drop SimpleITK's "thrown in <file>:<line>" preamble
    return f"{type(exc).__name__}: {text}"[:300]


def _write_nifti(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike,
                 slope: float = 1.0) -> Path:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError(f"affine must be a finite (4, 4) matrix, got shape {affine.shape}")
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)  # sform carries the exact affine, also when it is sheared
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm")
    if slope != 1.0:
        img.header.set_slope_inter(slope, 0.0)  # readers return stored * slope
    path = Path(path)
    try:
        nib.save(img, str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({one_line(exc)})") from None
    return path


def save_mask(mask: np.ndarray, affine: np.ndarray, path: str | os.PathLike,
              dtype: Any = np.uint8) -> Path:
    """Write a (X, Y, Z) mask or label map as NIfTI with exactly ``affine`` (qform and sform, code 1).

    Raises:
        ValueError: the mask is not 3D or the affine is not a finite 4x4 matrix.
        InputError: the file cannot be written.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D (X, Y, Z), got shape {mask.shape}")
    return _write_nifti(mask.astype(dtype), affine, path)


def save_probabilities(prob: np.ndarray, affine: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a (X, Y, Z) probability map in [0, 1] as compact NIfTI with exactly ``affine``.

    NIfTI-1 has no float16, so values are clipped to [0, 1] and stored as uint8 with scale factor
    1/255 (``scl_slope``): nibabel's ``get_fdata`` and ITK return floats within 0.002 of the input.

    Raises:
        ValueError: ``prob`` is not 3D, or the affine is not a finite 4x4 matrix.
        InputError: the file cannot be written.
    """
    prob = np.asarray(prob)
    if prob.ndim != 3:
        raise ValueError(f"probabilities must be 3D (X, Y, Z), got shape {prob.shape}")
    quantised = np.empty(prob.shape, dtype=np.uint8)
    for x0 in range(0, prob.shape[0], 16):  # slab by slab: no float32 copy of a large map
        part = np.nan_to_num(prob[x0:x0 + 16].astype(np.float32))
        quantised[x0:x0 + 16] = np.round(np.clip(part, 0.0, 1.0) * 255.0)
    return _write_nifti(quantised, affine, path, slope=1.0 / 255.0)


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def safe_filename(prompt: str, max_len: int = 80) -> str:
    """A file-name stem for any prompt: lower-case ``[a-z0-9_-]``, at most ``max_len`` characters.

    Accents are folded (``"Rénal"`` -> ``"renal"``), other runs become ``_``; a prompt with nothing
    usable (``"???"``, non-Latin script) becomes ``prompt_<hash>``.
    """
    text = unicodedata.normalize("NFKD", str(prompt)).encode("ascii", "ignore").decode("ascii").lower()
    stem = re.sub(r"[^a-z0-9_-]+", "_", text)
    stem = re.sub(r"_+", "_", stem).strip("_-.")[:max_len].rstrip("_-")
    return stem or f"prompt_{_short_hash(str(prompt))}"


def unique_filenames(prompts: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Map each distinct prompt to a distinct stem; prompts whose stems collide all get a hash suffix."""
    base = {p: safe_filename(p) for p in dict.fromkeys(prompts)}
    owners: dict[str, list[str]] = {}
    for p, stem in base.items():
        owners.setdefault(stem, []).append(p)
    out = {}
    for p, stem in base.items():
        out[p] = stem if len(owners[stem]) == 1 else f"{stem[:71]}_{_short_hash(p)}"
    taken: set[str] = set()
    for p, stem in out.items():  # a suffixed stem could still equal another prompt's plain stem
        while stem in taken:
            stem = f"{stem[:71]}_{_short_hash(stem + p)}"
        taken.add(stem)
        out[p] = stem
    return out


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove it is writable; return it as a Path.

    Raises:
        InputError: it is a file, or cannot be created or written.
    """
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output path exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".sat_write_test_"):
            pass
    except OSError as exc:
        reason = one_line(exc)
        raise InputError(f"{out}: output folder cannot be created or written ({reason})") from None
    return out
