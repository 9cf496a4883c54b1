"""Lexical keys for matching prompts to concept terms without embeddings.

``bag_key`` makes word order, side abbreviations, roman numerals and ordinals irrelevant
("kidney, Lt" = "left kidney", "Couinaud segment VII" = "Couinaud segment 7"); ``acronym`` gives
the initials of multi-word terms ("left atrial appendage" -> "laa"). :class:`LexicalIndex` keeps
only keys that point to exactly one concept, so an ambiguous key never decides anything.
"""
from __future__ import annotations

import re
import weakref

from sat.knowledge.normalize import tokens
from sat.knowledge.tree import KnowledgeTree

SIDE_WORDS = {"lt": "left", "l": "left", "sinister": "left", "sinistra": "left",
              "sinistral": "left", "sinistrum": "left", "sin": "left", "rt": "right", "r": "right",
              "dexter": "right", "dextra": "right", "dextral": "right", "dextrum": "right"}
_STOP = {"the", "of", "a", "an", "and"}
_ROMAN = {r: str(i) for i, r in enumerate(
    "i ii iii iv v vi vii viii ix x xi xii xiii xiv xv xvi xvii xviii xix xx".split(), start=1)}
_ORDINAL = {w: str(i) for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), start=1)}
_NUMBERED = re.compile(r"(\d+)(?:st|nd|rd|th)")
_ACRONYM = re.compile(r"[A-Z]{2,6}")
_BY_TREE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def canonical_token(token: str) -> str:
    """Side abbreviations spelled out; roman numerals and ordinals as digits ("ivb" -> "4b")."""
    if token in SIDE_WORDS:
        return SIDE_WORDS[token]
    if token in _ORDINAL or token in _ROMAN:
        return _ORDINAL.get(token) or _ROMAN[token]
    numbered = _NUMBERED.fullmatch(token)
    if numbered:
        return numbered.group(1)
    if token[-1:] in ("a", "b") and token[:-1] in _ROMAN:
        return _ROMAN[token[:-1]] + token[-1]
    return token


def bag_key(text: str) -> str:
    """Order-free key of a term: canonical tokens, articles dropped, sorted."""
    return " ".join(sorted(canonical_token(t) for t in tokens(text) if t not in _STOP))


def acronym(text: str) -> str:
    """Initials of a multi-word alphabetic term ("left atrial appendage" -> "laa"), else ""."""
    words = [SIDE_WORDS.get(t, t) for t in tokens(text) if t not in _STOP]
    return "".join(w[0] for w in words) if len(words) > 1 and all(w.isalpha() for w in words) else ""


class LexicalIndex:
    """Exact, order-free and initials lookup over every id, name and synonym of a tree."""

    def __init__(self, tree: KnowledgeTree) -> None:
        self.tree = tree
        bags: dict[str, set[str]] = {}
        initials: dict[str, set[str]] = {}
        for c in tree.concepts.values():
            for t in (c.id, *c.terms):
                bags.setdefault(bag_key(t), set()).add(c.id)
                if "_" not in t:  # initials of natural wording only, not of dataset spellings
                    initials.setdefault(acronym(t), set()).add(c.id)
        self.bags = {k: next(iter(v)) for k, v in bags.items() if k and len(v) == 1}
        self.acronyms = {k: next(iter(v)) for k, v in initials.items() if k and len(v) == 1}

    @classmethod
    def for_tree(cls, tree: KnowledgeTree) -> LexicalIndex:
        """The index of ``tree``, built once per tree object."""
        index = _BY_TREE.get(tree)
        if index is None:
            index = _BY_TREE[tree] = cls(tree)
        return index

    def match(self, raw: str, anatomy: str) -> tuple[str | None, str]:
        """``(concept id, "exact" | "lexical")`` for a prompt and its anatomy part, or ``(None, "")``.

        Initials are tried only when the whole prompt is one upper-case word of 2-6 letters.
        """
        for candidate in (raw, anatomy):
            c = self.tree.lookup(candidate)
            if c is not None:
                return c.id, "exact"
        cid = self.bags.get(bag_key(anatomy))
        if cid is None and _ACRONYM.fullmatch(raw.strip()):
            cid = self.acronyms.get(raw.strip().lower())
        return (cid, "lexical") if cid else (None, "")
