"""Agreement between a prompt and a concept's terms on codes, numbers and direction words.

The embedding stage of the resolver ranks concepts by similarity, which is blind to "C6" against
"T6" or "minor" against "major". :func:`agreeing_first` moves the best candidate above the
threshold whose terms name every code, number and direction word of the prompt to the front.
"""
from __future__ import annotations

import re

from sat.knowledge.lexicon import canonical_token
from sat.knowledge.normalize import tokens
from sat.knowledge.tree import KnowledgeTree

# ``(strict, loose)`` agreement keys; see :func:`agreement_keys`.
Keys = tuple[frozenset[str], frozenset[str]]
NO_KEYS: Keys = (frozenset(), frozenset())

_DIGITS = re.compile(r"\d+")
_CODE = re.compile(r"[a-z]{1,2}\d+[ab]?")
# Direction and size words, Latin and lay forms folded to one English word.
_DIRECTIONS = {
    "lateral": "lateral", "lateralis": "lateral", "medial": "medial", "medialis": "medial",
    "superior": "superior", "superius": "superior", "upper": "superior", "inferior": "inferior",
    "inferius": "inferior", "lower": "inferior", "anterior": "anterior", "anterius": "anterior",
    "front": "anterior", "ventral": "anterior", "posterior": "posterior", "posterius": "posterior",
    "back": "posterior", "dorsal": "posterior", "proximal": "proximal", "distal": "distal",
    "internal": "internal", "internus": "internal", "interna": "internal", "inner": "internal",
    "external": "external", "externus": "external", "externa": "external", "outer": "external",
    "greater": "greater", "major": "greater", "magnus": "greater", "lesser": "lesser",
    "minor": "lesser", "deep": "deep", "profundus": "deep", "superficial": "superficial",
    "superficialis": "superficial", "ascending": "ascending", "descending": "descending",
    # sides, for concepts whose side is part of a name rather than a laterality ("left atrium" parts)
    "left": "left", "right": "right",
    # hand or foot, spine level
    "hand": "hand", "manus": "hand", "manual": "hand", "finger": "hand", "thumb": "hand",
    "foot": "foot", "pes": "foot", "pedal": "foot", "pedis": "foot", "toe": "foot", "hallux": "foot",
    "cervical": "cervical", "thoracic": "thoracic", "lumbar": "lumbar", "sacral": "sacral",
    "arm": "arm", "forelimb": "arm", "leg": "leg", "hindlimb": "leg",
}


def numbers_of(words: list[str]) -> frozenset[str]:
    """Numbers named by normalised ``words``: digits, also inside codes ("c6", "l4"), roman
    numerals and ordinals ("vi", "third")."""
    return frozenset(n for w in words for n in _DIGITS.findall(canonical_token(w)))


def agreement_keys(words: list[str]) -> Keys:
    """``(strict, loose)`` words a candidate must share with a prompt: codes ("c6"), numbers,
    direction, side, hand/foot and spine-level words ("lateralis" = "lateral", "upper" = "superior",
    "pedal" = "foot") strictly; numbers alone loosely."""
    numbers = numbers_of(words)
    codes = {w for w in words if _CODE.fullmatch(w)}
    directions = {_DIRECTIONS[w] for w in words if w in _DIRECTIONS}
    return frozenset(numbers | codes | directions), numbers


class ConceptKeys(dict):
    """Concept id -> the strict agreement keys of its id and all its terms together, each
    computed on first lookup (a prompt's candidates need a few dozen of the tree's thousands);
    ``KeyError`` for an id the tree does not have."""

    def __init__(self, tree: KnowledgeTree) -> None:
        super().__init__()
        self.tree = tree

    def __missing__(self, cid: str) -> frozenset[str]:
        c = self.tree.get(cid)
        keys = self[cid] = frozenset().union(*(agreement_keys(tokens(t))[0] for t in (c.id, *c.terms)))
        return keys


def concept_keys(tree: KnowledgeTree) -> ConceptKeys:
    """The agreement keys of ``tree``'s concepts (:class:`ConceptKeys`, filled on demand)."""
    return ConceptKeys(tree)


def agreeing_first(ranked: list[tuple[str, float]], keys: Keys, known: dict[str, frozenset[str]],
                   tree: KnowledgeTree, threshold: float) -> list[tuple[str, float]]:
    """``ranked`` with the best candidate at or above ``threshold`` whose terms name every code,
    number and direction word of the prompt moved first ("C6 segment" is not the T6 segment,
    "pectoralis minor muscle" not the chest wall muscles); failing that, every number.

    Args:
        ranked: ``(concept id, similarity)`` best first (non-empty).
        keys: :func:`agreement_keys` of the prompt's anatomy.
        known: :func:`concept_keys` of ``tree``.
        tree: the tree the concepts come from.
        threshold: candidates below it are never promoted.

    Returns:
        The same pairs, at most one of them moved to the front.
    """
    if not keys[0]:
        return ranked
    # never trade the side the similarity found for an agreeing word ("RML lateral segment"
    # stays right: a side the text names is enforced later anyway)
    opposite = {"left": "right", "right": "left"}.get(tree.get(ranked[0][0]).laterality)
    for need in dict.fromkeys(k for k in keys if k):
        for k, (cid, score) in enumerate(ranked):
            if score < threshold:
                break
            if need <= known[cid] and tree.get(cid).laterality != opposite:
                return [ranked[k], *ranked[:k], *ranked[k + 1:]]
    return ranked
