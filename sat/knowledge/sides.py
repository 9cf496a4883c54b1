"""Laterality rules of the resolver: the side written in the text wins, and a prompt that names
no side gets the concept holding both sides.

:func:`enforce_laterality` moves a concept to the side the text names (its mirror, its lateral
child, or the bilateral parent for "both"); :func:`unsided` is the resolver's step after the
embedding for prompts without a side word or side code (:data:`SIDE_CODE`).
"""
from __future__ import annotations

import re
from collections.abc import Callable

from sat.knowledge.tree import KnowledgeTree

# A code that may carry a side: L or R with digits or capitals ("L1 rib", "R8", "RUL", "LMB").
SIDE_CODE = re.compile(r"(?<![A-Za-z])[LR](?:\d{1,2}|[A-Z]{1,3})(?![a-z])")


def unsided(tree: KnowledgeTree, cid: str, raw: str, score_of: Callable[[str], float],
            threshold: float) -> str:
    """The bilateral concept instead of one side of it, for a prompt that names no side.

    "triceps" or "submandibular gland" names the structure on both sides; the nearest term may
    still be one side's ("right triceps"), because the sides carry more terms than the pair.
    ``cid`` (the embedding stage's best concept) moves to the parent holding both sides
    (:func:`enforce_laterality` with ``"both"``) when that parent's own score ``score_of(parent)``
    reaches ``threshold``. A side code in the text (:data:`SIDE_CODE`: "L1 rib", "RUL", "LMB")
    keeps the side.
    """
    c = tree.get(cid)
    if c.laterality not in ("left", "right") or not c.mirror or SIDE_CODE.search(raw):
        return cid
    parent = enforce_laterality(tree, cid, "both")
    return parent if parent != cid and score_of(parent) >= threshold else cid


def enforce_laterality(tree: KnowledgeTree, cid: str, side: str | None) -> str:
    """``cid`` moved to the side the text names: its mirror, its lateral child, or (for "both")
    the bilateral parent holding both sides; unchanged when no such concept exists."""
    c = tree.get(cid)
    if side is None or c.laterality == side:
        return cid
    if side == "both":
        if c.laterality == "none" or not c.mirror:
            return cid
        for parent in tree.parents(cid):
            if c.mirror in tree.descendants(parent):
                return parent
        return cid
    if c.laterality != "none" and c.mirror:
        return c.mirror
    for child in tree.children(cid):
        if tree.get(child).laterality == side:
            return child
    return cid
