"""Lexical keys for matching prompts to concept terms without embeddings.

``bag_key`` makes word order, side abbreviations, roman numerals and ordinals irrelevant
("kidney, Lt" = "left kidney", "Couinaud segment VII" = "Couinaud segment 7"); ``acronym`` gives
the initials of multi-word terms ("left atrial appendage" -> "laa"), and ``initials`` also the
initials of the parts of compound words ("gastroduodenal artery" -> "ga" or "gda").
:class:`LexicalIndex` decides only on keys that point to exactly one concept; an ambiguous set of
initials only narrows the candidates (:meth:`LexicalIndex.initials_candidates`).
"""
from __future__ import annotations

import functools
import itertools
import re
import weakref

from sat.knowledge.glossary import organ_reading
from sat.knowledge.normalize import tokens
from sat.knowledge.spelling import SpellingIndex, english_words
from sat.knowledge.tree import KnowledgeTree

SIDE_WORDS = {"lt": "left", "l": "left", "sinister": "left", "sinistra": "left",
              "sinistral": "left", "sinistrum": "left", "sin": "left", "rt": "right", "r": "right",
              "dexter": "right", "dextra": "right", "dextral": "right", "dextrum": "right"}
_STOP = {"the", "of", "a", "an", "and", "side", "sided"}
_ROMAN = {r: str(i) for i, r in enumerate(
    "i ii iii iv v vi vii viii ix x xi xii xiii xiv xv xvi xvii xviii xix xx".split(), start=1)}
_ORDINAL = {w: str(i) for i, w in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(), start=1)}
_NUMBERED = re.compile(r"(\d+)(?:st|nd|rd|th)")
_ACRONYM = re.compile(r"[A-Z]{2,6}")
# An abbreviation as written in a prompt: 2-6 letters, at least two of them capitals ("IVC",
# "LCx", "pNET"), optionally a plural "s" ("HVs").
_ABBREVIATION = re.compile(r"(?=(?:[a-z]?[A-Z]){2})[A-Za-z]{2,6}")
_MAX_VARIANTS = 32
_BY_TREE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=1 << 16)
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


def _canonical(words: list[str]) -> list[str]:
    """The canonical tokens both keys are made of: articles dropped, in order."""
    return [canonical_token(t) for t in words if t not in _STOP]


def bag_key(text: str, words: list[str] | None = None) -> str:
    """Order-free key of a term: canonical tokens, articles dropped, sorted (``words``: its
    tokens when already known)."""
    return " ".join(sorted(_canonical(words or tokens(text))))


def compact_key(text: str, words: list[str] | None = None) -> str:
    """Ordered key with the spaces removed, for spacing and hyphenation variants
    ("rib cage" = "ribcage", "ilio-psoas" = "iliopsoas")."""
    return "".join(_canonical(words or tokens(text)))


def acronym(text: str) -> str:
    """Initials of a multi-word alphabetic term ("left atrial appendage" -> "laa"), else ""."""
    words = [SIDE_WORDS.get(t, t) for t in tokens(text) if t not in _STOP]
    return "".join(w[0] for w in words) if len(words) > 1 and all(w.isalpha() for w in words) else ""


def initials(text: str, vocabulary: frozenset[str] | set[str],
             memo: dict[str, list[str]] | None = None) -> set[str]:
    """All initials of a multi-word term, reading compound words as their parts.

    A word splits where its tail (4+ letters, after a head of 3+ letters) is itself in
    ``vocabulary``: with "duodenal" known, "gastroduodenal artery" gives "ga" and "gda".
    ``memo``: each word's options, shared by calls with the same ``vocabulary``.
    """
    words = [SIDE_WORDS.get(t, t) for t in tokens(text) if t not in _STOP]
    if len(words) < 2 or not all(w.isalpha() for w in words):
        return set()
    memo = {} if memo is None else memo
    options = []
    for w in words:
        if w not in memo:
            memo[w] = sorted({w[0]} | {w[0] + w[i] for i in range(3, len(w) - 3) if w[i:] in vocabulary})
        options.append(memo[w])
    return {"".join(p) for p in itertools.islice(itertools.product(*options), _MAX_VARIANTS)}


def abbreviation_key(raw: str, anatomy: str) -> str | None:
    """The lower-case key of ``anatomy`` when it is one word written as an abbreviation in
    ``raw`` ("contour of the IVC" -> "ivc"; "HVs" -> "hv"), else ``None``."""
    if not anatomy.isalpha():
        return None
    m = re.search(rf"(?<![A-Za-z]){re.escape(anatomy)}(?![A-Za-z])", raw, flags=re.IGNORECASE)
    word = m.group(0) if m else ""
    if not _ABBREVIATION.fullmatch(word):
        return None
    return word[:-1].lower() if len(word) > 2 and word.endswith("s") else word.lower()


class LexicalIndex:
    """Exact, order-free and initials lookup over every id, name and synonym of a tree.

    Each part is built on first use (``functools.cached_property``): an exact term needs none,
    a free-text prompt the words and keys, only an abbreviation the initials (about half the
    build time of the 3,132-concept tree).
    """

    def __init__(self, tree: KnowledgeTree) -> None:
        self.tree = tree

    def _terms(self):
        """``(concept id, term)`` for every id, name and synonym."""
        return ((c.id, t) for c in self.tree.concepts.values() for t in (c.id, *c.terms))

    @functools.cached_property
    def words(self) -> frozenset[str]:
        """Every normalised word of every term."""
        return frozenset(w for _, t in self._terms() for w in tokens(t))

    @functools.cached_property
    def spelling(self) -> SpellingIndex:
        """Corrections of one-letter slips into :attr:`words`; English words are never corrected."""
        return SpellingIndex(self.words, english_words())

    @functools.cached_property
    def _keys(self) -> tuple[dict[str, str], dict[str, str]]:
        """Order-free and compact keys that name exactly one concept."""
        bags: dict[str, set[str]] = {}
        compact: dict[str, set[str]] = {}
        for cid, t in self._terms():
            canon = _canonical(tokens(t))  # bag_key and compact_key of t, canonicalised once
            bags.setdefault(" ".join(sorted(canon)), set()).add(cid)
            compact.setdefault("".join(canon), set()).add(cid)
        return ({k: next(iter(v)) for k, v in bags.items() if k and len(v) == 1},
                {k: next(iter(v)) for k, v in compact.items() if len(k) > 3 and len(v) == 1})

    @property
    def bags(self) -> dict[str, str]:
        return self._keys[0]

    @property
    def compact(self) -> dict[str, str]:
        return self._keys[1]

    @functools.cached_property
    def organ_bags(self) -> dict[str, str]:
        """Order-free keys of the terms read with organ adjectives as nouns ("renal cortex" ->
        "cortex kidney") that name exactly one concept and are no plain key already, so that
        "kidney cortex" and "medulla of kidney" find the renal cortex and the renal medulla."""
        found: dict[str, set[str]] = {}
        for cid, t in self._terms():
            organ = organ_reading(t) if "_" not in t else None
            if organ:
                found.setdefault(bag_key(organ), set()).add(cid)
        return {k: next(iter(v)) for k, v in found.items() if len(v) == 1 and k not in self.bags}

    @functools.cached_property
    def located(self) -> dict[str, str]:
        """What a term "X of Y" names, keyed by the order-free key of X, when only one concept has
        such a term and X is no term itself ("capitulum" -> capitulum of humerus)."""
        found: dict[str, set[str]] = {}
        for cid, t in self._terms():
            ws = tokens(t)
            ws = ws[1:] if ws[:1] == ["entire"] else ws  # SNOMED CT's "Entire body of sphenoid bone"
            if "of" in ws[1:-1] and "_" not in t:
                head = ws[:ws.index("of")]
                found.setdefault(bag_key(" ".join(head), head), set()).add(cid)
        return {k: next(iter(v)) for k, v in found.items() if len(v) == 1 and k not in self.bags}

    @functools.cached_property
    def _abbreviations(self) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
        """Unambiguous acronyms, and every initials key with the concepts it may mean."""
        plain: dict[str, set[str]] = {}
        every: dict[str, set[str]] = {}
        vocabulary = frozenset(w for w in self.words if len(w) >= 4 and w.isalpha())
        memo: dict[str, list[str]] = {}
        for cid, t in self._terms():
            if "_" not in t:  # initials of natural wording only, not of dataset spellings
                plain.setdefault(acronym(t), set()).add(cid)
                for key in initials(t, vocabulary, memo):
                    every.setdefault(key, set()).add(cid)
        return ({k: next(iter(v)) for k, v in plain.items() if k and len(v) == 1},
                {k: tuple(sorted(v)) for k, v in every.items() if k})

    @property
    def acronyms(self) -> dict[str, str]:
        return self._abbreviations[0]

    @property
    def _initials(self) -> dict[str, tuple[str, ...]]:
        return self._abbreviations[1]

    @classmethod
    def for_tree(cls, tree: KnowledgeTree) -> LexicalIndex:
        """The index of ``tree``, built once per tree object."""
        index = _BY_TREE.get(tree)
        if index is None:
            index = _BY_TREE[tree] = cls(tree)
        return index

    def match(self, raw: str, anatomy: str) -> tuple[str | None, str]:
        """``(concept id, "exact" | "lexical")`` for a prompt and its anatomy part, or ``(None, "")``.

        Tried in order: exact term, order-free key, compact key, initials of the whole prompt.

        Initials are tried only when the whole prompt is one upper-case word of 2-6 letters.
        """
        for candidate in (raw, anatomy):
            c = self.tree.lookup(candidate)
            if c is not None:
                return c.id, "exact"
        cid = self.bags.get(bag_key(anatomy)) or self.compact.get(compact_key(anatomy))
        if cid is None and _ACRONYM.fullmatch(raw.strip()):
            cid = self.acronyms.get(raw.strip().lower())
        return (cid, "lexical") if cid else (None, "")

    def match_bag(self, text: str, words: list[str] | None = None) -> str | None:
        """The concept whose order-free or compact key equals that of ``text``, if exactly one
        (``words``: the tokens of ``text`` when already known)."""
        words = words or tokens(text)
        return self.bags.get(bag_key(text, words)) or self.compact.get(compact_key(text, words))

    def match_words(self, words: list[str]) -> str | None:
        """The concept named by already-normalised ``words`` (non-empty): an exact term, else
        the order-free or compact key."""
        text = " ".join(words)
        return self.tree.term_index.get(text) or self.match_bag(text, words)

    def initials_candidates(self, key: str) -> tuple[str, ...]:
        """Concepts with a multi-word term whose initials (compounds split) are ``key``."""
        return self._initials.get(key, ())
