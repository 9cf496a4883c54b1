"""Readers of UBERON releases for the extractor (:mod:`sat.knowledge.extract_uberon`).

Two formats are read, both offline:

* the compressed JSON that the ``cellxgene-ontology-guide`` package ships
  (``{"UBERON:...": {"label", "description", "synonyms", "ancestors": {id: distance}}}``);
* OBO text files (``../shared/ontologies/*.obo``) with synonym scopes (EXACT / RELATED /
  NARROW / BROAD), synonym types (LATIN, ABBREVIATION, PLURAL, ...), ``is_a`` / ``part_of``
  relations and cross-references (``SCTID:`` gives the SNOMED CT code, ``FMA:`` marks a class of
  human anatomy).

Neither package is a runtime dependency of ``sat``: only the extractor imports them.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_SYNONYM = re.compile(r'^synonym: "((?:[^"\\]|\\.)*)" (EXACT|RELATED|NARROW|BROAD)(?: ([A-Z_]+))?')
_REF = re.compile(r"\s*\[[^\]]*\]\s*$")


@dataclass
class Term:
    """One UBERON class, merged from every source that holds it.

    Attributes:
        id: ``UBERON:NNNNNNN``.
        label: its preferred English name.
        definition: its textual definition ('' when none).
        exact / related / latin / abbreviations: synonyms by scope and type.
        is_a / part_of: direct parents by relation (OBO sources only).
        ancestors: every ancestor id with its distance (JSON source only).
        snomed: SNOMED CT id from an ``SCTID:`` cross-reference, if any.
        human: the class has an FMA (human anatomy) cross-reference.
    """

    id: str
    label: str = ""
    definition: str = ""
    exact: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    latin: list[str] = field(default_factory=list)
    abbreviations: list[str] = field(default_factory=list)
    is_a: list[str] = field(default_factory=list)
    part_of: list[str] = field(default_factory=list)
    ancestors: dict[str, int] = field(default_factory=dict)
    snomed: str | None = None
    human: bool = False
    deprecated: bool = False


def clean_definition(text: str) -> str:
    """A definition without its trailing source references ("...blood[GO]." -> "...blood.")."""
    text = re.sub(r"\[[A-Za-z]+\]", "", text or "").strip()
    return re.sub(r"\s+", " ", text)


def read_json(path: str | Path) -> dict[str, Term]:
    """UBERON classes of a ``*.json.zst`` file of ``cellxgene-ontology-guide`` (needs ``zstandard``)."""
    import zstandard  # dev-only dependency of the extractor

    with open(path, "rb") as fh:
        raw = json.loads(zstandard.ZstdDecompressor().stream_reader(fh).read())
    out: dict[str, Term] = {}
    for tid, v in raw.items():
        if not tid.startswith("UBERON:"):
            continue
        out[tid] = Term(tid, label=v.get("label", ""), definition=clean_definition(v.get("description", "")),
                        exact=list(v.get("synonyms") or []), ancestors=dict(v.get("ancestors") or {}),
                        deprecated=bool(v.get("deprecated")))
    return out


def read_obo(path: str | Path) -> dict[str, Term]:
    """UBERON classes of an OBO file, with synonym scopes/types, relations and xrefs."""
    out: dict[str, Term] = {}
    term: Term | None = None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            term = None
            continue
        if line.startswith("id: UBERON:") and term is None:
            term = out.setdefault(line[4:].strip(), Term(line[4:].strip()))
            continue
        if term is None:
            continue
        key, _, value = line.partition(": ")
        if key == "name":
            term.label = value.strip()
        elif key == "def":
            term.definition = clean_definition(value.split('" [')[0].strip('"'))
        elif key == "synonym":
            m = _SYNONYM.match(line)
            if m:
                text, scope, kind = m.group(1).replace('\\"', '"'), m.group(2), m.group(3)
                bucket = {"LATIN": term.latin, "ABBREVIATION": term.abbreviations}.get(kind)
                if kind == "LATIN" and scope != "EXACT":  # related Latin names are often another structure's
                    continue
                if kind in ("NON_MAMMAL", "NON_AMNIOTE", "HOMOLOGY", "DUBIOUS", "INCONSISTENT",
                            "DEVELOPMENTAL", "BRAIN_NAME_ABV", "MISSPELLING", "SENSU"):
                    continue
                if bucket is None:
                    bucket = term.exact if scope == "EXACT" else term.related if scope == "RELATED" else None
                if bucket is not None:
                    bucket.append(text)
        elif key == "xref":
            if value.startswith("SCTID:"):
                term.snomed = term.snomed or value[6:].split()[0]
            elif value.startswith("FMA:"):
                term.human = True
        elif key == "is_a" and value.startswith("UBERON:"):
            term.is_a.append(value.split()[0])
        elif key == "relationship":
            rel, _, target = value.partition(" ")
            if rel == "part_of" and target.startswith("UBERON:"):
                term.part_of.append(target.split()[0])
        elif key == "is_obsolete" and value.strip() == "true":
            term.deprecated = True
    return out


def merge(base: dict[str, Term], *extra: dict[str, Term]) -> dict[str, Term]:
    """``base`` (JSON) with the OBO facts of ``extra`` added: synonym types, relations, xrefs."""
    for source in extra:
        for tid, t in source.items():
            b = base.setdefault(tid, Term(tid, label=t.label, definition=t.definition))
            b.definition = b.definition or t.definition
            for attr in ("exact", "related", "latin", "abbreviations", "is_a", "part_of"):
                have = getattr(b, attr)
                have += [x for x in getattr(t, attr) if x not in have]
            b.snomed = b.snomed or t.snomed
            b.human = b.human or t.human
            b.deprecated = b.deprecated or t.deprecated
    return base


def read_snomed_table(path: str | Path) -> dict[str, tuple[str, str, str | None]]:
    """TotalSegmentator's DICOM code table: structure name -> (SNOMED CT code, meaning, side).

    ``side`` is ``left`` / ``right`` from the laterality modifier, or ``None``.
    """
    out = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            side = (row.get("SegmentedPropertyTypeModifierCodeSequence.CodeMeaning") or "").lower() or None
            out[row["Structure"]] = (row["SegmentedPropertyTypeCodeSequence.CodeValue"],
                                     row["SegmentedPropertyTypeCodeSequence.CodeMeaning"],
                                     side if side in ("left", "right") else None)
    return out
