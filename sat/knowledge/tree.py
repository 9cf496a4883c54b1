"""The anatomy knowledge tree: concepts loaded from ``knowledge_tree/*.yaml``.

Each YAML file holds ``concepts:``, a list of mappings with the fields of :class:`Concept`. An
optional top-level ``defaults:`` mapping gives field values shared by the file (e.g. ``region``).
An optional ``extends:`` list adds facts to concepts defined in another file (``id`` plus any of
:data:`EXTENSION_FIELDS`): term lists are appended, ``uberon`` / ``snomed`` are set only where the
concept has none, so the curated files stay authoritative (``knowledge_tree/uberon_*.yaml``,
written by :mod:`sat.knowledge.extract_uberon`).
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import yaml

from sat.knowledge.modality import MODALITIES
from sat.knowledge.normalize import normalize
from sat.resources import knowledge_tree_dir
from sat.yaml_io import ConfigError, check_keys

KINDS = ("organ", "vessel", "bone", "muscle", "gland", "airway", "cavity", "substructure",
         "tissue", "lesion", "group")
REGIONS = ("brain", "head_neck", "thorax", "abdomen", "pelvis", "spine", "upper_limb",
           "lower_limb", "whole_body")
LATERALITIES = ("left", "right", "none")


@dataclass(frozen=True)
class Concept:
    """One anatomical concept.

    Attributes:
        id: stable snake_case identifier, e.g. ``kidney_left``.
        name: canonical English name, e.g. ``left kidney``.
        synonyms: exact synonyms: eponyms, lay and plural forms, dataset spellings.
        definition: 1-3 sentences in the project's own words.
        is_a: ids of the concepts this one is a kind of.
        part_of: ids of the concepts this one is a part of.
        laterality: ``left``, ``right`` or ``none``.
        mirror: id of the opposite-side concept when lateral, else ``None``.
        region: body region, one of :data:`REGIONS`.
        kind: one of :data:`KINDS`; ``group`` marks grouping concepts with no direct label.
        modalities: modalities it is usually segmented in, subset of :data:`MODALITIES`.
        abbreviations: abbreviations and acronyms ("IVC", "SMV").
        latin: Latin or historical names ("vena cava inferior", "jecur").
        related: related, broader or less exact names; weighed below exact synonyms.
        uberon: UBERON id ("UBERON:0002113"), ``None`` when UBERON has no such class.
        snomed: SNOMED CT concept id, ``None`` when unknown.
    """

    id: str
    name: str
    definition: str
    region: str
    kind: str
    synonyms: tuple[str, ...] = ()
    is_a: tuple[str, ...] = ()
    part_of: tuple[str, ...] = ()
    laterality: str = "none"
    mirror: str | None = None
    modalities: tuple[str, ...] = ("CT", "MR")
    abbreviations: tuple[str, ...] = ()
    latin: tuple[str, ...] = ()
    related: tuple[str, ...] = ()
    uberon: str | None = None
    snomed: str | None = None

    @property
    def all_synonyms(self) -> tuple[str, ...]:
        """Every synonym field in :data:`SYNONYM_FIELDS` order (exact first, related last)."""
        return (*self.synonyms, *self.abbreviations, *self.latin, *self.related)

    @property
    def terms(self) -> tuple[str, ...]:
        """The canonical name followed by every synonym of every field."""
        return (self.name, *self.all_synonyms)


_FIELDS = frozenset(f.name for f in fields(Concept))
_REQUIRED = ("id", "name", "definition", "region", "kind")
SYNONYM_FIELDS = ("synonyms", "abbreviations", "latin", "related")
_TUPLE_FIELDS = (*SYNONYM_FIELDS, "is_a", "part_of", "modalities")
EXTENSION_FIELDS = (*SYNONYM_FIELDS, "is_a", "part_of", "uberon", "snomed")


def default_tree_dir() -> Path:
    """``$SAT_KNOWLEDGE_TREE`` if set, else the packaged tree, else the checkout's (:mod:`sat.resources`)."""
    return knowledge_tree_dir()


def _concept_from_mapping(raw: dict, defaults: dict, source: str) -> Concept:
    where = f"concept {raw.get('id')!r}" if isinstance(raw, dict) else "concepts"
    merged = {**defaults, **check_keys(raw, _FIELDS, source, where)}
    for key in _TUPLE_FIELDS:
        value = merged.get(key)
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = tuple(str(v) for v in ([value] if isinstance(value, str) else value))
    check_keys(merged, _FIELDS, source, where, required=_REQUIRED)
    return Concept(**merged)


def _as_tuple(value) -> tuple[str, ...]:
    return tuple(str(v) for v in ([value] if isinstance(value, str) else value or ()))


def _extend(concepts: dict[str, Concept], raw: dict, source: str) -> None:
    """Apply one ``extends:`` entry to the concept it names (in place in ``concepts``)."""
    cid = raw.get("id") if isinstance(raw, dict) else None
    check_keys(raw, ("id", *EXTENSION_FIELDS), source, f"extension of {cid!r}")
    if cid not in concepts:
        raise ConfigError(source, "", f"extends unknown concept id {cid!r}")
    c, changes = concepts[cid], {}
    for key in EXTENSION_FIELDS:
        if key not in raw:
            continue
        if key in ("uberon", "snomed"):
            if getattr(c, key) is None and raw[key] is not None:
                changes[key] = str(raw[key])
        else:
            changes[key] = tuple(dict.fromkeys((*getattr(c, key), *_as_tuple(raw[key]))))
    concepts[cid] = replace(c, **changes)


def read_concepts(folder: str | Path) -> tuple[list[Concept], str]:
    """Read every ``*.yaml`` file in ``folder``.

    Returns:
        The concepts in file order, and a sha256 hash of the files' names and bytes.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    concepts: list[Concept] = []
    extensions: list[tuple[dict, str]] = []
    for path in sorted(folder.glob("*.yaml")):
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data)
        doc = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}  # libyaml: ~10x faster
        defaults = doc.get("defaults") or {}
        for raw in doc.get("concepts") or []:
            concepts.append(_concept_from_mapping(raw, defaults, path.name))
        extensions += [(raw, path.name) for raw in doc.get("extends") or []]
    if extensions:
        by_id = {c.id: c for c in concepts}
        for raw, source in extensions:
            _extend(by_id, raw, source)
        concepts = [by_id.get(c.id, c) for c in concepts]
    return concepts, digest.hexdigest()[:16]


class KnowledgeTree:
    """Concepts plus their ``is_a``/``part_of`` graph, with lookup and traversal queries."""

    def __init__(self, concepts: Iterable[Concept], tree_hash: str = "") -> None:
        self.concepts: dict[str, Concept] = {}
        self.duplicate_ids: list[str] = []
        for c in concepts:
            if c.id in self.concepts:
                self.duplicate_ids.append(c.id)
            self.concepts[c.id] = c
        self.hash = tree_hash
        self._children: dict[str, list[str]] = {cid: [] for cid in self.concepts}
        for c in self.concepts.values():
            for parent in (*c.is_a, *c.part_of):
                if parent in self._children and c.id not in self._children[parent]:
                    self._children[parent].append(c.id)
        self.term_index: dict[str, str] = {}
        for c in self.concepts.values():
            for term in (c.id, *c.terms):
                self.term_index.setdefault(normalize(term), c.id)

    @classmethod
    def load(cls, folder: str | Path | None = None) -> KnowledgeTree:
        concepts, digest = read_concepts(folder or default_tree_dir())
        return cls(concepts, digest)

    def __len__(self) -> int:
        return len(self.concepts)

    def __contains__(self, cid: object) -> bool:
        return cid in self.concepts

    def get(self, cid: str) -> Concept:
        """Return the concept with id ``cid``; ``KeyError`` naming it if unknown."""
        try:
            return self.concepts[cid]
        except KeyError:
            raise KeyError(f"unknown concept id {cid!r}") from None

    def lookup(self, term: str) -> Concept | None:
        """Exact match of a normalised name, synonym or id; ``None`` if nothing matches."""
        cid = self.term_index.get(normalize(term))
        return self.concepts[cid] if cid else None

    def search(self, text: str, limit: int = 10, region: str | None = None) -> list[Concept]:
        """Concepts whose terms contain every token of ``text`` (substring search), best first."""
        key = normalize(text)
        hits: list[tuple[int, str]] = []
        for c in self.concepts.values():
            if region and c.region != region:
                continue
            terms = [normalize(t) for t in (c.id, *c.terms)]
            if any(key == t for t in terms):
                hits.append((0, c.id))
            elif any(key in t for t in terms):
                hits.append((1, c.id))
        hits.sort()
        return [self.concepts[cid] for _, cid in hits[:limit]]

    def parents(self, cid: str) -> list[str]:
        c = self.get(cid)
        return [p for p in (*c.is_a, *c.part_of) if p in self.concepts]

    def children(self, cid: str) -> list[str]:
        self.get(cid)
        return list(self._children[cid])

    def ancestors(self, cid: str) -> list[str]:
        """All transitive ``is_a``/``part_of`` parents, nearest first."""
        return self._walk(cid, self.parents)

    def descendants(self, cid: str) -> list[str]:
        """All transitive children, nearest first."""
        return self._walk(cid, self.children)

    def siblings(self, cid: str) -> list[str]:
        """Concepts sharing a direct parent with ``cid`` (excluding itself)."""
        out: list[str] = []
        for p in self.parents(cid):
            out += [s for s in self._children[p] if s != cid and s not in out]
        return out

    def mirror(self, cid: str) -> Concept | None:
        """The opposite-side concept, or ``None`` for unpaired concepts."""
        m = self.get(cid).mirror
        return self.concepts.get(m) if m else None

    def _walk(self, cid: str, step) -> list[str]:
        seen: list[str] = []
        frontier = [cid]
        while frontier:
            nxt = []
            for node in frontier:
                for other in step(node):
                    if other != cid and other not in seen:
                        seen.append(other)
                        nxt.append(other)
            frontier = nxt
        return seen


@functools.lru_cache(maxsize=4)
def _load_cached(folder: str) -> KnowledgeTree:
    return KnowledgeTree.load(folder)


def load_tree(folder: str | Path | None = None) -> KnowledgeTree:
    """Load a tree once per folder and process (cached)."""
    return _load_cached(str(Path(folder or default_tree_dir()).resolve()))
