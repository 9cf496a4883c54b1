"""A model's vocabulary: the concepts it was trained on, as the knowledge tree defined them then.

A checkpoint stores a snapshot of its trained concepts (with their mirrors and the groups above
them) as plain records (:func:`snapshot`). At inference :func:`overlay` lays that snapshot over the
current tree: the snapshot's records replace the current ones and own their terms, so every term
the model was trained with resolves to the same concept after the tree grows, while terms that only
the new tree knows still resolve (and are refused later if they name a concept the model never
learned).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields, replace

from sat.knowledge.normalize import normalize
from sat.knowledge.tree import SYNONYM_FIELDS, Concept, KnowledgeTree

_FIELDS = {f.name: f for f in fields(Concept)}
_REQUIRED = ("id", "name", "definition", "region", "kind")
_TUPLES = (*SYNONYM_FIELDS, "is_a", "part_of", "modalities")


def snapshot_ids(tree: KnowledgeTree, trained: Iterable[str]) -> list[str]:
    """The trained concepts known to ``tree``, their mirrors and every group above them, sorted."""
    keep: set[str] = set()
    for cid in trained:
        if cid not in tree:
            continue
        keep.update((cid, *tree.ancestors(cid)))
        mirror = tree.mirror(cid)
        if mirror is not None:
            keep.update((mirror.id, *tree.ancestors(mirror.id)))
    return sorted(keep)


def snapshot(tree: KnowledgeTree, trained: Iterable[str]) -> list[dict]:
    """JSON-ready records of :func:`snapshot_ids` (every :class:`Concept` field)."""
    return [concept_record(tree.get(cid)) for cid in snapshot_ids(tree, trained)]


def concept_record(concept: Concept) -> dict:
    """A concept as a JSON-ready mapping (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(concept).items()}


def concept_from_record(raw, where: str) -> Concept:
    """A concept from :func:`concept_record`'s mapping.

    Raises:
        ValueError: not a mapping, unknown or missing fields, or fields of the wrong type (names ``where``).
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a vocabulary entry must be a mapping, got {type(raw).__name__}")
    cid = raw.get("id")
    unknown = sorted(set(raw) - set(_FIELDS))
    missing = [k for k in _REQUIRED if not isinstance(raw.get(k), str)]
    if unknown or missing:
        raise ValueError(f"{where}: vocabulary entry {cid!r} has unknown fields {unknown} or lacks {missing}")
    values = dict(raw)
    for key in _TUPLES:
        if key in values:
            items = values[key]
            if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
                raise ValueError(f"{where}: vocabulary entry {cid!r} field {key!r} must be a list of strings")
            values[key] = tuple(items)
    for key in ("laterality", "mirror", "uberon", "snomed"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise ValueError(f"{where}: vocabulary entry {cid!r} field {key!r} must be a string")
    return Concept(**values)


def digest(vocabulary: Sequence[Concept]) -> str:
    """A short hash of the records (names the overlay tree, so caches of it stay apart)."""
    text = json.dumps([concept_record(c) for c in vocabulary], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def overlay(tree: KnowledgeTree, vocabulary: Sequence[Concept]) -> KnowledgeTree:
    """``tree`` with ``vocabulary``'s records in place of its own, and their terms theirs alone.

    The snapshot's concepts come first (an exact term resolves to them) with their trained names,
    sides, mirrors and parents, plus any further terms the current tree gives them; concepts the
    current tree lacks are added back; its other concepts lose synonyms that the snapshot uses.
    Returns ``tree`` itself when the snapshot already agrees with it.
    """
    if all(tree.concepts.get(c.id) == c for c in vocabulary):
        return tree
    owned = {normalize(t) for c in vocabulary for t in (c.id, *c.terms)}
    ids = {c.id for c in vocabulary}
    old = []
    for c in vocabulary:  # the new tree's further terms for a trained concept are its too
        now = tree.concepts.get(c.id)
        if now is None:
            old.append(c)
            continue
        new = {k: tuple(t for t in getattr(now, k) if normalize(t) not in owned) for k in SYNONYM_FIELDS}
        new["synonyms"] = (*((now.name,) if normalize(now.name) not in owned else ()), *new["synonyms"])
        old.append(replace(c, **{k: (*getattr(c, k), *v) for k, v in new.items()}))
    rest = []
    for c in tree.concepts.values():
        if c.id in ids:
            continue
        kept = {k: tuple(t for t in getattr(c, k) if normalize(t) not in owned) for k in SYNONYM_FIELDS}
        rest.append(replace(c, **kept))
    return KnowledgeTree([*old, *rest], f"{tree.hash}+{digest(vocabulary)}")
