"""The output formats of a segmentation result, named once for the writer and the command line."""
from __future__ import annotations

from collections.abc import Iterable

from sat.errors import InputError

# nifti: one uint8 file per structure; multilabel: one label map plus a JSON sidecar;
# dicom_seg: one DICOM-SEG object (DICOM inputs only).
FORMATS = ("nifti", "multilabel", "dicom_seg")


def check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    """``formats`` lower-cased, without repeats, in their order.

    Raises:
        InputError: (a ``ValueError``) none given, or a name not in :data:`FORMATS`; the message
            names them.
    """
    out = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise InputError(f"unknown output formats {bad or list(formats)}; choose from {','.join(FORMATS)}")
    return out
