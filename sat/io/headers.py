"""What an image file declares, read and checked before any voxel data is decoded.

* NIfTI: the 348/540-byte header is parsed from the first decompressed bytes; dims, voxel type
  and spacing are checked, then the rest is decompressed with a cap of exactly what the header
  declared, through zlib, which verifies every gzip member's CRC and length.
* MetaImage (``.mha``/``.mhd``) and NRRD (``.nrrd``/``.nhdr``): the text header is parsed here;
  a detached data file (``ElementDataFile`` / ``data file:``) is resolved against the header's
  folder and passes :func:`sat.safe_open.check_file` (regular file, inside the roots); ``LIST``
  and numbered multi-file patterns are refused. SimpleITK reads the image only afterwards.

Every refusal is an :class:`sat.errors.InputError` with one line.
"""
from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from sat.errors import InputError
from sat.safe_open import Limits, check_file, check_spacing, check_voxels, open_regular

_TEXT_HEADER_BYTES = 1 << 16  # MetaImage/NRRD headers are a few hundred bytes
_CHUNK = 1 << 22
_METAIMAGE_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
                    "MET_LONG": 8, "MET_ULONG": 8, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
                    "MET_DOUBLE": 8}
_NRRD_SIZES = {1: ("char", "uchar", "int8", "uint8", "signed char", "unsigned char", "int8_t", "uint8_t"),
               2: ("short", "ushort", "int16", "uint16", "short int", "unsigned short", "int16_t", "uint16_t",
                   "signed short", "signed short int", "unsigned short int"),
               4: ("int", "uint", "int32", "uint32", "float", "signed int", "unsigned int", "int32_t", "uint32_t"),
               8: ("longlong", "ulonglong", "int64", "uint64", "double", "long long", "unsigned long long",
                   "int64_t", "uint64_t", "long long int", "signed long long", "unsigned long long int")}


# ------------------------------------------------------------------------------------------ NIfTI
def _nifti_header(head: bytes, source: str):
    """Parse the NIfTI-1 or NIfTI-2 header at the start of ``head``."""
    if len(head) < 348:
        raise InputError(f"{source}: not a readable NIfTI image (file shorter than a NIfTI header)")
    size = int.from_bytes(head[:4], "little")
    klass = nib.Nifti2Header if size == 540 or int.from_bytes(head[:4], "big") == 540 else nib.Nifti1Header
    try:
        n = klass.template_dtype.itemsize  # the fixed header only: extensions are read with the image
        if len(head) < n:
            raise ValueError(f"{len(head)} bytes, a {klass.__name__} needs {n}")
        return klass(binaryblock=head[:n], check=False)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for broken headers
        raise InputError(f"{source}: not a readable NIfTI header ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None


def check_nifti_header(hdr, limits: Limits, source: str) -> int:
    """Check dims, voxel type and spacing; return the bytes the voxel data occupies."""
    dim = [int(d) for d in hdr["dim"]]
    if not 1 <= dim[0] <= 7:
        raise InputError(f"{source}: not a readable NIfTI image (dim[0] = {dim[0]}; a valid header has "
                         "1..7 dimensions)")
    shape = dim[1:dim[0] + 1]
    if any(d < 1 for d in shape):
        raise InputError(f"{source}: not a readable NIfTI image (dimensions {shape} must all be positive)")
    dtype = hdr.get_data_dtype()
    if dtype.kind == "c":
        raise InputError(f"{source}: complex-valued voxels ({dtype}); pass the magnitude or one real part")
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise InputError(f"{source}: voxel type {dtype} (e.g. RGB) is not one real-valued number per voxel")
    n = check_voxels(shape, limits, source)
    try:
        zooms = np.asarray(hdr.get_zooms()[:3], dtype=np.float64)
    except Exception:  # noqa: BLE001 - nibabel validates units/zooms loosely
        zooms = np.ones(3)
    check_spacing(np.abs(zooms), limits, source)
    return n * dtype.itemsize


def _gunzip_capped(fh, cap: int, source: str) -> bytes:
    """Decompress every gzip member of ``fh``, refusing output beyond ``cap`` bytes; zlib checks
    each member's CRC-32 and length, and a member cut off before its trailer is refused."""
    out, total, started, buf = [], 0, False, b""
    d = zlib.decompressobj(wbits=31)
    while True:
        if not buf:
            buf = fh.read(_CHUNK)
            if not buf:
                break
        if not started and out and not buf.strip(b"\x00"):
            buf = b""  # zero padding after the last member
            continue
        started = True
        try:
            piece = d.decompress(buf, cap + 1 - total)  # >= 1: total <= cap here
        except zlib.error as exc:
            raise InputError(f"{source}: not a readable NIfTI image (corrupt gzip data: {exc}; "
                             "the file is damaged)") from None
        total += len(piece)
        out.append(piece)
        if total > cap:
            raise InputError(f"{source}: decompresses to more than the {cap} bytes its header declares")
        if d.eof:
            buf, started = d.unused_data, False
            d = zlib.decompressobj(wbits=31)
        else:
            buf = d.unconsumed_tail
    if started:
        raise InputError(f"{source}: not a readable NIfTI image (truncated gzip data: it ends before its CRC)")
    return b"".join(out)


def _head_bytes(fh, gz: bool, source: str) -> bytes:
    """The first 540 (decompressed) bytes of a NIfTI file."""
    if not gz:
        return fh.read(540)
    try:
        return zlib.decompressobj(wbits=31).decompress(fh.read(1 << 16), 540)
    except zlib.error as exc:
        raise InputError(f"{source}: not a readable NIfTI image (corrupt gzip data: {exc})") from None


def read_nifti_header(path: Path, limits: Limits, source: str | None = None):
    """The checked header of a NIfTI file, decompressing nothing past it."""
    source = source or str(path)
    with open_regular(path, limits) as fh:
        hdr = _nifti_header(_head_bytes(fh, path.name.lower().endswith(".gz"), source), source)
    check_nifti_header(hdr, limits, source)
    return hdr


def open_nifti(path: Path, limits: Limits, source: str):
    """A nibabel image of a checked NIfTI file whose header passed :func:`check_nifti_header`.

    ``.nii`` files are mapped lazily; ``.nii.gz`` files are decompressed here, capped at what
    the header declares and CRC-checked. Returns ``(image, raw header)``.
    """
    gz = path.name.lower().endswith(".gz")
    with open_regular(path, limits) as fh:
        hdr = _nifti_header(_head_bytes(fh, gz, source), source)
        nbytes = check_nifti_header(hdr, limits, source)
        image = None
        if gz:
            offset = int(hdr.get_data_offset()) if hasattr(hdr, "get_data_offset") else 352
            if offset > (1 << 24):
                raise InputError(f"{source}: NIfTI vox_offset {offset} is implausibly large (extensions over 16 MiB)")
            fh.seek(0)
            data = _gunzip_capped(fh, max(offset, 352) + nbytes + (1 << 20), source)
            klass = nib.Nifti2Image if isinstance(hdr, nib.Nifti2Header) else nib.Nifti1Image
            try:
                image = klass.from_bytes(data)
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"{source}: not a readable NIfTI image ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    if image is None:
        try:
            image = nib.load(str(path))
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{source}: not a readable NIfTI image ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    return image, hdr


# ----------------------------------------------------------------------------- MetaImage and NRRD
def _read_text_header(path: Path, limits: Limits) -> str:
    with open_regular(path, limits) as fh:
        return fh.read(_TEXT_HEADER_BYTES).decode("latin-1")


def _data_file(raw: str, header: Path, limits: Limits, source: str, key: str) -> Path | None:
    """Resolve and check a detached data file named in a header; None for attached data."""
    name = raw.strip()
    first = name.split()[0] if name.split() else ""
    if first.upper() == "LOCAL" or not name:
        return None
    if first.upper() == "LIST" or "%" in name or len(name.split()) > 1:
        raise InputError(f"{source}: {key} {name!r} names a list or pattern of files; only one data file "
                         "in the header's folder is read")
    target = Path(name) if os.path.isabs(name) else header.parent / name
    return check_file(target, limits, what=f"{source}: {key} {name!r}")


def check_metaimage(path: Path, limits: Limits, source: str) -> list[Path]:
    """Check a MetaImage header; return the detached data files it names (checked)."""
    fields: dict[str, str] = {}
    for line in _read_text_header(path, limits).splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        fields[key] = value.strip()
        if key == "elementdatafile":
            break  # the last header field: binary data may follow
    if "elementdatafile" not in fields or "dimsize" not in fields:
        raise InputError(f"{source}: not a readable image (no MetaImage DimSize / ElementDataFile)")
    try:
        dims = [int(v) for v in fields["dimsize"].split()]
        channels = int(fields.get("elementnumberofchannels", "1"))
        spacing = [float(v) for v in (fields.get("elementspacing") or fields.get("elementsize") or "1 1 1").split()]
    except ValueError:
        raise InputError(f"{source}: malformed MetaImage header (DimSize/ElementSpacing)") from None
    check_voxels(dims + [channels], limits, source)
    check_spacing(np.abs(spacing[:3]), limits, source)
    if fields.get("elementtype", "MET_FLOAT").upper() not in _METAIMAGE_TYPES:
        raise InputError(f"{source}: MetaImage ElementType {fields.get('elementtype')!r} is not a real scalar type")
    target = _data_file(fields["elementdatafile"], path, limits, source, "ElementDataFile")
    return [target] if target else []


def check_nrrd(path: Path, limits: Limits, source: str) -> list[Path]:
    """Check an NRRD header; return the detached data files it names (checked)."""
    text = _read_text_header(path, limits)
    lines = text.splitlines()
    if not lines or not lines[0].startswith("NRRD"):
        raise InputError(f"{source}: not a readable image (no NRRD magic line)")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line.strip():
            break
        if line.startswith("#") or ":=" in line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            key = key.strip().lower()
            if key in fields:
                raise InputError(f"{source}: NRRD field {key!r} appears twice")
            fields[key] = value.strip()
    try:
        sizes = [int(v) for v in fields["sizes"].split()]
    except (KeyError, ValueError):
        raise InputError(f"{source}: malformed NRRD header (no valid 'sizes:' field)") from None
    kind = fields.get("type", "").lower()
    if not any(kind in names for names in _NRRD_SIZES.values()):
        raise InputError(f"{source}: NRRD type {kind!r} is not a real scalar type")
    check_voxels(sizes, limits, source)
    if "spacings" in fields:
        try:
            check_spacing([abs(float(v)) for v in fields["spacings"].split() if v.lower() != "nan"], limits, source)
        except ValueError:
            raise InputError(f"{source}: malformed NRRD spacings {fields['spacings']!r}") from None
    for vec in re.findall(r"\(([^)]*)\)", fields.get("space directions", "")):
        try:
            check_spacing([float(np.linalg.norm([float(v) for v in vec.split(",")]))], limits, source)
        except ValueError:
            raise InputError(f"{source}: malformed NRRD space directions") from None
    raw = fields.get("data file", fields.get("datafile"))
    if raw is None:
        if path.suffix.lower() == ".nhdr":
            raise InputError(f"{source}: detached NRRD header without a 'data file:' field")
        return []
    target = _data_file(raw, path, limits, source, "data file")
    return [target] if target else []


def check_sitk_header(path: Path, limits: Limits, source: str) -> list[Path]:
    """Check a MetaImage/NRRD header; DICOM files (``.dcm``) only get the regular-file check."""
    suffix = path.suffix.lower()
    if suffix in (".mha", ".mhd"):
        return check_metaimage(path, limits, source)
    if suffix in (".nrrd", ".nhdr"):
        return check_nrrd(path, limits, source)
    return []
