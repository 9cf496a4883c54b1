"""``sat reference``: lay out ground truth for ``sat evaluate`` from a label map and a class map.

    sat reference --labels seg.nii.gz --classes classes.json --case ct01 --out GT

writes ``GT/ct01/<name>.nii.gz``, one uint8 mask per class present in the label map, on the label
map's exact grid, which is the per-case layout ``sat evaluate --gt GT`` reads. The class map is a
JSON object ``{"1": "liver", ...}`` (or that object under ``"class_map"``, as TotalSegmentator's
``classes.json``), or a CSV/TSV with ``value,name`` rows. Names must be concept ids, names or
synonyms of the knowledge tree; the others are written too but listed, since ``sat evaluate``
cannot match them to a prompt's concept.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from sat.errors import InputError


def read_class_map(path: Path) -> dict[int, str]:
    """Label value -> class name from a JSON object or a ``value,name`` CSV/TSV."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read class map {path}: {exc.strerror or exc}") from None
    rows: list[tuple[str, str]]
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
        data = data.get("class_map", data) if isinstance(data, dict) else None
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object {{\"1\": \"liver\", ...}}")
        rows = [(str(k), str(v)) for k, v in data.items()]
    else:
        dialect = "excel-tab" if "\t" in text.splitlines()[0] else "excel"
        rows = [(r[0].strip(), r[1].strip()) for r in csv.reader(text.splitlines(), dialect) if len(r) >= 2]
    out = {}
    for value, name in rows:
        try:
            out[int(value)] = name
        except ValueError:
            continue  # a header row
    if not out:
        raise InputError(f"{path}: no 'value -> name' entries found")
    return out


def write_reference(labels_path: Path, class_map: dict[int, str], out: Path, case: str) -> dict:
    """Write ``out/case/<name>.nii.gz`` per class present; returns ``{"written", "absent", "unknown"}``."""
    from sat.io.volume import load_volume
    from sat.io.writers import save_mask, unique_filenames
    from sat.knowledge.tree import load_tree

    vol = load_volume(labels_path)
    labels = np.rint(vol.array).astype(np.int64)
    present = set(np.unique(labels).tolist()) - {0}
    folder = out / case
    folder.mkdir(parents=True, exist_ok=True)
    stems = unique_filenames(list(class_map.values()))
    tree = load_tree()
    report: dict = {"written": [], "absent": [], "unknown": []}
    used: set[str] = set()
    for value, name in sorted(class_map.items()):
        if value not in present:
            report["absent"].append(name)
            continue
        concept = tree.lookup(name)  # the exact lookup sat evaluate uses on file names
        stem = concept.id if concept is not None and concept.id not in used else stems[name]
        used.add(stem)
        save_mask(labels == value, vol.affine, folder / f"{stem}.nii.gz")
        report["written"].append(name)
        if concept is None:
            report["unknown"].append(name)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat reference", description=__doc__.splitlines()[0].replace("``", ""))
    p.add_argument("--labels", required=True, help="label map (NIfTI, NRRD, ...): one integer per structure")
    p.add_argument("--classes", required=True, help="class map: JSON {value: name} or value,name CSV")
    p.add_argument("--case", help="case folder name (default: the label file's stem)")
    p.add_argument("--out", required=True, help="ground-truth root for sat evaluate --gt")
    args = p.parse_args(argv)
    labels = Path(args.labels).expanduser()
    if not labels.exists():
        raise InputError(f"label map not found: {labels}")
    case = args.case or labels.name.split(".")[0]
    report = write_reference(labels, read_class_map(Path(args.classes).expanduser()), Path(args.out), case)
    print(f"sat reference: {len(report['written'])} structures written to {Path(args.out) / case}; "
          f"{len(report['absent'])} classes not present in the label map")
    if report["unknown"]:
        print(f"sat reference: warning: not knowledge-tree names, sat evaluate will not match them: "
              f"{', '.join(report['unknown'])}", file=sys.stderr)
    return 0
