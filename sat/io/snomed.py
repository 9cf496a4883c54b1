"""SNOMED CT codes of a DICOM-SEG segment: category, property type and laterality modifier.

The knowledge tree gives each concept its SNOMED CT concept id (``Concept.snomed``, 995 of them).
The code's meaning comes from ``snomed_meanings.csv`` beside this module (the meanings that
TotalSegmentator's DICOM-SEG table uses, Apache-2.0; regenerate with ``python -m sat.io.snomed
--totalseg totalsegmentator_snomed_mapping.csv``), else from the concept's name without its side.
Sides are a modifier (SNOMED "Left" / "Right"), never part of the type, as DICOM-SEG expects.
A concept without a code keeps the private scheme ``99SAT`` (value = concept id).
"""
from __future__ import annotations

import argparse
import csv
import functools
import re
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from sat.knowledge.tree import Concept, KnowledgeTree

TABLE = "snomed_meanings.csv"
ANATOMY = ("SCT", "91723000", "Anatomical Structure")
ABNORMAL = ("SCT", "49755003", "Morphologically Abnormal Structure")
SIDES = {"left": ("SCT", "7771000", "Left"), "right": ("SCT", "24028007", "Right")}
PRIVATE = "99SAT"
_SIDE_WORDS = re.compile(r"\b(left|right)\b\s*", re.IGNORECASE)

Code = tuple[str, str, str]  # (scheme, value, meaning)


@dataclass(frozen=True)
class SegmentCodes:
    """The coded description of one segment.

    Attributes:
        category: segmented property category. type: segmented property type.
        modifier: laterality modifier of the type, ``None`` for unpaired structures.
        region: anatomic region of a lesion (the coded structure it is part of), else ``None``.
    """

    category: Code
    type: Code
    modifier: Code | None = None
    region: Code | None = None


@functools.lru_cache(maxsize=1)
def code_meanings() -> dict[str, str]:
    """SNOMED CT concept id -> meaning, from the table shipped beside this module."""
    text = files("sat.io").joinpath(TABLE).read_text(encoding="utf-8")
    rows = csv.reader(line for line in text.splitlines() if line and not line.startswith("#"))
    next(rows, None)  # header
    return {code: meaning for code, meaning in rows}


def _meaning(concept: Concept) -> str:
    found = code_meanings().get(concept.snomed or "")
    if found:
        return found
    name = _SIDE_WORDS.sub("", concept.name).strip() if concept.laterality in SIDES else concept.name
    return (name or concept.name)[:64]


def segment_codes(concept_id: str, name: str, tree: KnowledgeTree | None) -> SegmentCodes:
    """Codes for a segment of ``concept_id`` (``name``: its display name when the tree lacks it)."""
    concept = tree.concepts.get(concept_id) if tree is not None else None
    if concept is None:
        return SegmentCodes(ANATOMY, (PRIVATE, concept_id[:16], name[:64]))
    lesion = concept.kind == "lesion"
    kind = ("SCT", concept.snomed, _meaning(concept)) if concept.snomed else (PRIVATE, concept.id[:16],
                                                                                  concept.name[:64])
    region = None
    if lesion:  # where the lesion is: the first coded structure it is part of
        host = next((tree.get(p) for p in (*concept.part_of, *concept.is_a)
                     if p in tree.concepts and tree.get(p).snomed and tree.get(p).kind != "lesion"), None)
        region = ("SCT", host.snomed, _meaning(host)) if host is not None else None
    return SegmentCodes(ABNORMAL if lesion else ANATOMY, kind, SIDES.get(concept.laterality), region)


def write_table(totalseg_csv: Path, out: Path) -> int:
    """Write ``code,meaning`` rows of every SNOMED CT property type in TotalSegmentator's table."""
    meanings: dict[str, str] = {}
    with open(totalseg_csv, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("SegmentedPropertyTypeCodeSequence.CodingSchemeDesignator") == "SCT":
                meanings.setdefault(row["SegmentedPropertyTypeCodeSequence.CodeValue"],
                                    row["SegmentedPropertyTypeCodeSequence.CodeMeaning"])
    with open(out, "w", newline="", encoding="utf-8") as fh:
        fh.write("# SNOMED CT code meanings used for DICOM-SEG segment types; from TotalSegmentator's\n"
                 "# totalsegmentator_snomed_mapping.csv (github.com/wasserth/TotalSegmentator, Apache-2.0).\n")
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["code", "meaning"])
        writer.writerows(sorted(meanings.items(), key=lambda kv: int(kv[0])))
    return len(meanings)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sat.io.snomed", description=write_table.__doc__)
    ap.add_argument("--totalseg", type=Path, required=True, help="totalsegmentator_snomed_mapping.csv")
    ap.add_argument("--out", type=Path, default=Path(str(files("sat.io").joinpath(TABLE))))
    args = ap.parse_args(argv)
    print(f"{write_table(args.totalseg, args.out)} code meanings -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
