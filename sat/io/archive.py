"""Unpacking a zipped DICOM series without trusting the archive.

Every member is checked before anything is written: encrypted members and unknown compression
methods are refused with one line; the declared unpacked total must stay under
:attr:`~sat.safe_open.Limits.max_unpacked_bytes`, and the archive's unpacked/packed ratio under
:attr:`~sat.safe_open.Limits.max_zip_ratio` (a 1 MB zip of zeros that unpacks to 1 GB is refused
at once). :mod:`zipfile` never writes more than a member declares and checks each CRC; member
names are sanitised (no absolute paths, no ``..``) and links are written as plain files.
The folder goes under :attr:`~sat.safe_open.Limits.tmp_dir` (the agent server's output root).
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from sat.errors import InputError
from sat.safe_open import Limits, open_regular

_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_RATIO_FLOOR_BYTES = 64 * 2**20  # small archives may compress well (blank slices): no ratio check below this


def check_members(zf: zipfile.ZipFile, packed_bytes: int, limits: Limits, source: str) -> list[zipfile.ZipInfo]:
    """The file members to unpack, after the encryption, method, size and ratio checks."""
    members = [i for i in zf.infolist() if not i.is_dir()]
    for info in members:
        if info.flag_bits & 0x1:
            raise InputError(f"{source}: member {info.filename!r} is encrypted; unpack it yourself")
        if info.compress_type not in _METHODS:
            raise InputError(f"{source}: member {info.filename!r} uses compression method {info.compress_type}, "
                             "which this reader does not support")
    total = sum(i.file_size for i in members)
    if total > limits.max_unpacked_bytes:
        raise InputError(f"{source}: archive unpacks to {total} bytes, more than the "
                         f"{limits.max_unpacked_bytes} byte limit")
    if total > _RATIO_FLOOR_BYTES and total > limits.max_zip_ratio * max(packed_bytes, 1):
        raise InputError(f"{source}: archive unpacks to {total} bytes from {packed_bytes} "
                         f"({total / max(packed_bytes, 1):.0f}x, limit {limits.max_zip_ratio:g}x); "
                         "refusing a likely zip bomb")
    return members


@contextlib.contextmanager
def unpacked(path: Path, limits: Limits, source: str) -> Iterator[Path]:
    """Unpack a checked zip into a private temporary folder, removed on exit."""
    tmp = None
    try:
        with open_regular(path, limits) as fh, zipfile.ZipFile(fh) as zf:
            fh.seek(0, 2)
            members = check_members(zf, fh.tell(), limits, source)
            if limits.tmp_dir is not None:
                Path(limits.tmp_dir).mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="sat_zip_", dir=limits.tmp_dir))
            for info in members:
                zf.extract(info, tmp)  # sanitised name; at most file_size bytes; CRC checked
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, RuntimeError,
            NotImplementedError, ValueError) as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise InputError(f"{source}: not a readable zip archive ({type(exc).__name__}: {first})") from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
