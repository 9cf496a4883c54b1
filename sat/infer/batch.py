"""Batch mode of ``sat segment``: many cases, one output folder each, resumable and splittable.

A batch is a folder of images (NIfTI, NRRD, MetaImage, DICOM zips), a folder holding several DICOM
series in sub-folders, or a CSV with an ``image`` column (optional ``case_id`` and ``modality``;
relative paths are relative to the CSV). ``--num-parts P --part K`` keeps every P-th case of the
sorted list starting at K, so P machines split any batch without talking to each other. A case
that finishes gets a done marker recording what was asked; a rerun with the same request skips it.
A case that fails is reported and skipped; the others still run.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sat.errors import InputError
from sat.atomic import write_text_atomic
from sat.io.volume import find_dicom_series, is_image_file
from sat.io.writers import unique_filenames

DONE_MARKER = ".sat_done.json"


@dataclass
class Case:
    """One input of a batch: ``case_id`` names its output folder."""

    case_id: str
    path: Path
    modality: str | None = None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".zip"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _named(raw: list[tuple[str, Path, str | None]]) -> list[Case]:
    stems = unique_filenames([name for name, _, _ in raw])
    return [Case(stems[name], path, modality) for name, path, modality in raw]


def read_csv_cases(path: Path) -> list[Case]:
    """Cases from a CSV with an ``image`` (or ``path``) column, optional ``case_id`` and ``modality``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV ({type(exc).__name__})") from None
    column = next((c for c in ("image", "path", "input") if rows and c in rows[0]), None)
    if column is None:
        raise InputError(f"{path}: the CSV needs a header row with an 'image' column and at least one case")
    raw, seen = [], set()
    for i, row in enumerate(rows, start=2):
        image = (row.get(column) or "").strip()
        if not image:
            raise InputError(f"{path}: line {i} has an empty {column!r} field")
        full = Path(image).expanduser()
        full = full if full.is_absolute() else path.parent / full
        name = (row.get("case_id") or row.get("id") or "").strip() or _stem(full)
        if name in seen:
            raise InputError(f"{path}: case id {name!r} appears twice")
        seen.add(name)
        raw.append((name, full, (row.get("modality") or "").strip() or None))
    return _named(raw)


def discover_cases(path: Path) -> list[Case] | None:
    """The batch ``path`` describes, or ``None`` when it is a single image (file, DICOM folder or zip)."""
    if path.is_file():
        return read_csv_cases(path) if path.suffix.lower() == ".csv" else None
    if not path.is_dir():
        return None
    images = sorted(p for p in path.iterdir() if is_image_file(p))
    if images:
        return _named([(_stem(p), p, None) for p in images])
    roots = sorted({root for root, _ in find_dicom_series(path)})
    if len(roots) > 1:  # one case per folder that holds a series
        return _named([(Path(os.path.relpath(r, path)).as_posix().replace("/", "_"), r, None) for r in roots])
    return None


def select_part(cases: list[Case], num_parts: int, part: int) -> list[Case]:
    """Every ``num_parts``-th case of the id-sorted list, starting at index ``part`` (0-based)."""
    if num_parts < 1:
        raise InputError(f"--num-parts must be >= 1, got {num_parts}")
    if not 0 <= part < num_parts:
        raise InputError(f"--part must be in 0..{num_parts - 1} for --num-parts {num_parts}, got {part}")
    return sorted(cases, key=lambda c: c.case_id)[part::num_parts]


def is_done(folder: Path, fingerprint: dict) -> bool:
    """Whether ``folder`` holds a finished result of exactly this request."""
    try:
        return json.loads((folder / DONE_MARKER).read_text())["request"] == fingerprint
    except (OSError, ValueError, KeyError, TypeError):
        return False


def mark_done(folder: Path, fingerprint: dict, summary: dict) -> None:
    write_text_atomic(folder / DONE_MARKER, json.dumps({
        "request": fingerprint, "structures": sorted(summary.get("structures", {})),
        "refused": [r["prompt"] for r in summary.get("refused", [])]}))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, InputError):
        return str(exc)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def run_batch(cases: list[Case], out: Path, segment_case, fingerprint: dict, *, progress: bool = True) -> dict:
    """Run ``segment_case(case, folder) -> summary`` for each case, isolating failures.

    Returns:
        ``{"done": [...], "skipped": [...], "failed": {case_id: message}}``, also written to
        ``out/batch_summary.json`` (one file per part when split).
    """
    from tqdm import tqdm

    report: dict = {"done": [], "skipped": [], "failed": {}}
    bar = tqdm(cases, file=sys.stderr, unit="case", desc="sat segment", disable=not progress, dynamic_ncols=True)
    for case in bar:
        folder = out / case.case_id
        bar.set_postfix_str(case.case_id[:30])
        if is_done(folder, fingerprint):
            report["skipped"].append(case.case_id)
            continue
        try:
            (folder / DONE_MARKER).unlink(missing_ok=True)  # a stale marker of another request
            summary = segment_case(case, folder)
            mark_done(folder, fingerprint, summary)
            report["done"].append(case.case_id)
        except Exception as exc:  # noqa: BLE001 - a bad case must not stop the batch
            report["failed"][case.case_id] = _one_line(exc)
            tqdm.write(f"sat segment: case {case.case_id} failed: {report['failed'][case.case_id]}", file=sys.stderr)
    bar.close()
    return report
