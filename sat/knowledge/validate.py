"""Consistency checks of a knowledge tree (``sat concepts validate``)."""
from __future__ import annotations

import re

from sat.knowledge.normalize import normalize
from sat.knowledge.tree import KINDS, LATERALITIES, MODALITIES, REGIONS, KnowledgeTree

_ID = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
_UBERON = re.compile(r"^UBERON:\d{7}$")
_SNOMED = re.compile(r"^\d{6,18}$")


def validate_tree(tree: KnowledgeTree) -> list[str]:
    """Return one message per problem; an empty list means the tree is consistent.

    Checks: duplicate ids, id syntax, enumerated fields, empty definitions, UBERON / SNOMED CT
    code syntax, unknown ``is_a`` /
    ``part_of`` / ``mirror`` references, cycles, broken laterality pairs, and one normalised term
    (name, synonym or id) shared by two concepts.
    """
    errors = [f"duplicate id {cid!r}" for cid in tree.duplicate_ids]
    owner: dict[str, str] = {}
    for c in tree.concepts.values():
        where = f"concept {c.id!r}"
        if not _ID.match(c.id):
            errors.append(f"{where}: id must be snake_case [a-z0-9_]")
        for attr, allowed in (("kind", KINDS), ("region", REGIONS), ("laterality", LATERALITIES)):
            if getattr(c, attr) not in allowed:
                errors.append(f"{where}: {attr} {getattr(c, attr)!r} not in {allowed}")
        bad_mod = [m for m in c.modalities if m not in MODALITIES]
        if bad_mod:
            errors.append(f"{where}: modalities {bad_mod} not in {MODALITIES}")
        if not c.definition.strip():
            errors.append(f"{where}: empty definition")
        if c.uberon is not None and not _UBERON.match(c.uberon):
            errors.append(f"{where}: uberon {c.uberon!r} is not UBERON:NNNNNNN")
        if c.snomed is not None and not _SNOMED.match(c.snomed):
            errors.append(f"{where}: snomed {c.snomed!r} is not a SNOMED CT concept id (digits)")
        for rel in ("is_a", "part_of"):
            for ref in getattr(c, rel):
                if ref not in tree.concepts:
                    errors.append(f"{where}: {rel} references unknown id {ref!r}")
                elif ref == c.id:
                    errors.append(f"{where}: {rel} references itself")
        errors += _laterality_errors(tree, c.id)
        for term in {normalize(t) for t in (c.id, *c.terms)}:
            if not term:
                errors.append(f"{where}: a term normalises to the empty string")
            elif owner.setdefault(term, c.id) != c.id:
                errors.append(f"term {term!r} used by both {owner[term]!r} and {c.id!r}")
    errors += _cycle_errors(tree)
    return errors


def _laterality_errors(tree: KnowledgeTree, cid: str) -> list[str]:
    c = tree.concepts[cid]
    where = f"concept {cid!r}"
    if c.laterality == "none":
        return [f"{where}: has mirror {c.mirror!r} but laterality none"] if c.mirror else []
    if not c.mirror:
        return [f"{where}: laterality {c.laterality} needs a mirror concept"]
    m = tree.concepts.get(c.mirror)
    if m is None:
        return [f"{where}: mirror references unknown id {c.mirror!r}"]
    opposite = {"left": "right", "right": "left"}[c.laterality]
    errs = []
    if m.mirror != cid:
        errs.append(f"{where}: mirror {m.id!r} does not point back (it points to {m.mirror!r})")
    if m.laterality != opposite:
        errs.append(f"{where}: mirror {m.id!r} has laterality {m.laterality}, expected {opposite}")
    return errs


def _cycle_errors(tree: KnowledgeTree) -> list[str]:
    """Depth-first search for cycles over is_a + part_of edges."""
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    errors: list[str] = []
    for root in tree.concepts:
        if state.get(root):
            continue
        stack = [(root, iter(tree.parents(root)))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                errors.append(f"cycle through {nxt!r} (reached from {node!r})")
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(tree.parents(nxt))))
    return errors
