"""Grow the knowledge tree from UBERON: ``python -m sat.knowledge.extract_uberon [--target N]``.

A development tool, not a runtime dependency: it needs ``cellxgene-ontology-guide`` and
``zstandard`` (``pip install cellxgene-ontology-guide zstandard``) for the full UBERON release in
JSON, and reads the OBO files and TotalSegmentator's SNOMED CT table in ``../shared/ontologies/``.

It writes, with attribution, into the tree folder:

* ``uberon_<region>.yaml``: new concepts, one per selected UBERON class (human, macroscopic,
  non-embryonic; :mod:`sat.knowledge.ontology_rules`), with exact, related, Latin and abbreviation
  synonyms in separate fields, the UBERON id, the SNOMED CT code where one is known, ``is_a`` /
  ``part_of`` to the nearest classes present in the tree, and paired left/right classes as mirrors;
* ``uberon_xrefs.yaml``: ``extends:`` entries giving curated concepts their UBERON id, SNOMED CT
  code and the ontology's synonyms.

The curated files stay authoritative: a term that a curated concept already uses is never given
to another concept, and curated concepts are never renamed, moved or removed.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

import yaml

from sat.knowledge.normalize import normalize
from sat.knowledge.ontology import Term, merge, read_json, read_obo, read_snomed_table
from sat.knowledge.ontology_rules import Rules, label_ids, usable_synonym
from sat.knowledge.tree import KnowledgeTree, default_tree_dir, read_concepts
from sat.resources import shared_dir

PREFIX = "uberon_"
MAX_TERMS = {"synonyms": 5, "abbreviations": 3, "latin": 2, "related": 3}
_SIDE = re.compile(r"^(left|right) (.+)$")
HEADER = """# Extracted from UBERON (Uberon multi-species anatomy ontology, CC BY 3.0,
# http://purl.obolibrary.org/obo/uberon; release {release}) and, for SNOMED CT codes, UBERON's SCTID
# cross-references and TotalSegmentator's DICOM code table (Apache-2.0). Labels, synonyms and
# definitions are UBERON's; generated definitions say so. Do not edit by hand: regenerate with
#   python -m sat.knowledge.extract_uberon
# The curated files of this folder are authoritative; this file only adds to them.
"""


def find_uberon_json() -> Path:
    """The newest UBERON JSON inside the installed ``cellxgene-ontology-guide`` package."""
    try:
        import cellxgene_ontology_guide
    except ImportError:
        raise SystemExit("pip install cellxgene-ontology-guide zstandard (dev tool only)") from None
    found = sorted((Path(cellxgene_ontology_guide.__file__).parent / "data").glob("UBERON-ontology-*.json.zst"))
    if not found:
        raise SystemExit("no UBERON-ontology-*.json.zst in cellxgene_ontology_guide/data")
    return found[-1]


def curated_tree(folder: Path) -> KnowledgeTree:
    """The tree without earlier extractor output (files named ``uberon_*.yaml``)."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in folder.glob("*.yaml"):
            if not path.name.startswith(PREFIX):
                (Path(tmp) / path.name).write_bytes(path.read_bytes())
        concepts, digest = read_concepts(tmp)
    return KnowledgeTree(concepts, digest)


def snake_id(label: str) -> str:
    """A stable snake_case id from a label ("Teres major muscle" -> "teres_major_muscle")."""
    folded = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", folded.lower()).strip("_")


def _overlaps(text: str, words: set[str]) -> bool:
    """A related name is kept when it is short or shares a word with the class's own names:
    UBERON's related names include neighbouring structures ("brainstem": "accessory medullary
    lamina of pallidum")."""
    own = {w for w in normalize(text).split() if len(w) >= 4}
    return len(normalize(text).split()) <= 2 or bool(own & words)


class Extraction:
    """One run: maps UBERON classes to curated concepts and selects new ones."""

    def __init__(self, terms: dict[str, Term], curated: KnowledgeTree, snomed_table: dict) -> None:
        self.terms, self.curated, self.rules = terms, curated, Rules(terms)
        self.owner = {normalize(t): c.id for c in curated.concepts.values() for t in (c.id, *c.terms)}
        self.ids = set(curated.concepts)
        self.by_label = label_ids(terms)
        self.cid_of: dict[str, str] = {}  # UBERON id -> concept id
        self.uberon_of: dict[str, str] = {}  # concept id -> UBERON id
        self.snomed_table = snomed_table

    def map_curated(self) -> None:
        """Give curated concepts the UBERON class whose label (then exact synonym) they use."""
        for pass_ in ("label", "exact"):
            for t in self.terms.values():
                if t.deprecated or t.id in self.cid_of:
                    continue
                names = [t.label] if pass_ == "label" else t.exact
                for name in names:
                    cid = self.owner.get(normalize(name))
                    if cid and cid not in self.uberon_of and (pass_ == "label" or self.rules.eligible(t)):
                        self.cid_of[t.id], self.uberon_of[cid] = cid, t.id
                        break
        for c in self.curated.concepts.values():  # a sided concept shares its structure's class
            if c.id not in self.uberon_of and c.laterality != "none":
                bare = re.sub(r"\b(left|right)\b", " ", c.name).strip()
                tid = self.by_label.get(" ".join(bare.split()))
                if tid:
                    self.uberon_of[c.id] = tid

    def select(self, target: int) -> list[Term]:
        """Up to ``target`` new classes, best first: human, coded, defined, typed, placed."""
        def score(t: Term) -> tuple:
            return (-(4 * t.human + 2 * bool(t.snomed) + bool(t.definition)
                      + (self.rules.kind_of(t) != "substructure") + (self.rules.region_of(t) != "whole_body")
                      + 0.3 * min(len(t.exact), 3)), t.id)
        pool = [t for t in self.terms.values() if t.id not in self.cid_of and self.rules.eligible(t)
                and normalize(t.label) not in self.owner]
        labels = {t.label: t for t in pool}
        keep = []
        for t in pool:
            side = _SIDE.match(t.label)
            if side:  # a sided class only with its mirror
                other = ("right " if side.group(1) == "left" else "left ") + side.group(2)
                if other not in labels:
                    continue
            keep.append(t)
        keep.sort(key=score)
        chosen, seen = [], set()
        for t in keep:
            cid, key = snake_id(t.label), normalize(t.label)
            if not cid or cid in self.ids or key in seen:
                continue
            side = _SIDE.match(t.label)
            if side and len(chosen) >= target:
                continue
            chosen.append(t)
            seen.add(key)
            self.ids.add(cid)
            self.cid_of[t.id] = cid
            if len(chosen) >= target and not side:
                break
        # drop a sided class whose mirror was not chosen
        chosen_labels = {t.label for t in chosen}
        out = []
        for t in chosen:
            side = _SIDE.match(t.label)
            other = side and ("right " if side.group(1) == "left" else "left ") + side.group(2)
            if side and other not in chosen_labels:
                self.ids.discard(self.cid_of.pop(t.id))
                continue
            out.append(t)
        for t in out:
            self.owner[normalize(t.label)] = self.cid_of[t.id]
        return out

    def synonyms(self, t: Term, cid: str) -> dict[str, list[str]]:
        """The class's synonyms by field, each term not yet used by another concept."""
        out: dict[str, list[str]] = {}
        words = {w for x in (t.label, *t.exact) for w in normalize(x).split()}
        for fld, texts in (("synonyms", t.exact), ("abbreviations", t.abbreviations),
                           ("latin", t.latin), ("related", t.related)):
            kept = []
            for text in texts:
                key = normalize(text)
                if len(kept) >= MAX_TERMS[fld] or not usable_synonym(text, fld == "abbreviations"):
                    continue
                if fld == "related" and not _overlaps(text, words):
                    continue
                if key and self.owner.setdefault(key, cid) == cid and key != normalize(t.label):
                    kept.append(text)
            if kept:
                out[fld] = kept
        return out

    def parents(self, t: Term, cid: str) -> dict[str, list[str]]:
        """``is_a`` / ``part_of`` to the nearest classes present in the tree (at most two)."""
        rel: dict[str, list[str]] = {"is_a": [], "part_of": []}
        direct = [(p, "is_a") for p in t.is_a] + [(p, "part_of") for p in t.part_of]
        if not direct:
            direct = [(p, "") for p, d in t.ancestors.items() if d == 1]
        found = [(self.cid_of[p], r, p) for p, r in direct if p in self.cid_of]
        if not found:
            for dist in sorted(set(t.ancestors.values())):
                found = [(self.cid_of[p], "", p) for p, d in t.ancestors.items()
                         if d == dist and p in self.cid_of]
                if found:
                    break
        for pid, r, ptid in found[:2]:
            if pid == cid:
                continue
            if not r:
                head = self.terms[ptid].label.split()[-1:] if ptid in self.terms else []
                r = "is_a" if head and t.label.split()[-1:] == head else "part_of"
            if pid not in rel[r]:
                rel[r].append(pid)
        return {k: v for k, v in rel.items() if v}

    def concept(self, t: Term) -> dict:
        cid = self.cid_of[t.id]
        kind, region = self.rules.kind_of(t), self.rules.region_of(t)
        out: dict = {"id": cid, "name": t.label, "uberon": t.id}
        if t.snomed:
            out["snomed"] = t.snomed
        out.update(self.synonyms(t, cid))
        out["definition"] = t.definition if len(t.definition.split()) >= 4 else (
            f"The {t.label}, a {kind.replace('substructure', 'structure')} of the "
            f"{region.replace('_', ' ')} (definition generated from its UBERON placement).")
        out["kind"] = kind
        out.update(self.parents(t, cid))
        side = _SIDE.match(t.label)
        if side:
            out["laterality"] = side.group(1)
            other = ("right " if side.group(1) == "left" else "left ") + side.group(2)
            out["mirror"] = snake_id(other)
        out["region"] = region
        return out

    def extension(self, cid: str) -> dict | None:
        tid = self.uberon_of.get(cid)
        c = self.curated.get(cid)
        out: dict = {"id": cid}
        if tid:
            out["uberon"] = tid
        code = self.curated_snomed(cid) or (self.terms[tid].snomed if tid in self.terms else None)
        if code:
            out["snomed"] = code
        if tid in self.terms and self.cid_of.get(tid) == cid:
            out.update(self.synonyms(self.terms[tid], cid))
        return out if len(out) > 1 and c else None

    def curated_snomed(self, cid: str) -> str | None:
        for name, (code, _, _) in self.snomed_table.items():
            if self.owner.get(normalize(name)) == cid:
                return code
        return None


def write_yaml(path: Path, header: str, doc: dict) -> None:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=4096, default_flow_style=None)
    path.write_text(header + text, encoding="utf-8")


def run(tree_dir: Path, json_path: Path, obo_paths: list[Path], snomed_csv: Path | None,
        target: int) -> Counter:
    """Extract and write the ``uberon_*.yaml`` files; returns new concepts per region."""
    terms = merge(read_json(json_path), *(read_obo(p) for p in obo_paths))
    table = read_snomed_table(snomed_csv) if snomed_csv and snomed_csv.is_file() else {}
    ex = Extraction(terms, curated_tree(tree_dir), table)
    ex.map_curated()
    chosen = ex.select(target)
    ext = [e for cid in ex.curated.concepts if (e := ex.extension(cid))]  # curated claim terms first
    by_region: dict[str, list[dict]] = {}
    for t in chosen:
        c = ex.concept(t)
        by_region.setdefault(c.pop("region"), []).append(c)
    for old in tree_dir.glob(f"{PREFIX}*.yaml"):
        old.unlink()
    header = HEADER.format(release=json_path.name.split("ontology-")[-1].split(".json")[0])
    for region, concepts in sorted(by_region.items()):
        mods = ["MR", "CT"] if region == "brain" else ["CT", "MR"]
        write_yaml(tree_dir / f"{PREFIX}{region}.yaml", header,
                   {"defaults": {"region": region, "modalities": mods}, "concepts": concepts})
    write_yaml(tree_dir / f"{PREFIX}xrefs.yaml", header, {"extends": ext})
    return Counter({r: len(v) for r, v in by_region.items()})


def main(argv: list[str] | None = None) -> int:
    shared = (shared_dir() or Path("../shared")) / "ontologies"
    ap = argparse.ArgumentParser(prog="python -m sat.knowledge.extract_uberon", description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=None, help="tree folder (default knowledge_tree/)")
    ap.add_argument("--json", type=Path, default=None, help="UBERON .json.zst (default: from cellxgene-ontology-guide)")
    ap.add_argument("--obo", type=Path, nargs="*", default=sorted(shared.glob("uberon-*.obo")))
    ap.add_argument("--snomed", type=Path, default=shared / "totalsegmentator_snomed_mapping.csv")
    ap.add_argument("--target", type=int, default=2000, help="new concepts to add")
    args = ap.parse_args(argv)
    counts = run(args.tree or default_tree_dir(), args.json or find_uberon_json(), args.obo, args.snomed,
                 args.target)
    print(f"{sum(counts.values())} new concepts: {dict(sorted(counts.items()))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
