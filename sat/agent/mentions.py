"""Find anatomical mentions in report text, with laterality, sizes, lesion words and negation.

"3 cm cyst in the left kidney" gives one :class:`~sat.agent.models.Mention`: anatomy "left kidney"
(concept ``kidney_left``), lesion "cyst", size 30 mm, and the phrase concept ``kidney_cyst_left``.
Offsets always index the original string, so ``text[m.start:m.end]`` is the phrase.

Method: split into sentences and clauses; match the longest word n-grams against every name,
synonym and id of the knowledge tree (exact, normalised); within each clause attach generic lesion
words ("cyst", "mass"), sizes, descriptors and negation cues to the nearest anatomy; combine
lesion + anatomy into the most general tree concept that is both (``cyst`` + ``left kidney`` ->
``left kidney cyst``). No model is involved, so extraction is deterministic and fast.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sat.agent.models import Mention
from sat.knowledge.tree import Concept, KnowledgeTree

MAX_NGRAM = 6
# Concepts too generic to ground when they appear alone (report headers, "body of the pancreas").
_SKIP_IDS = frozenset({"body", "head", "neck", "thorax", "abdomen", "pelvic_region", "adipose_tissue",
                       "whole_body", "body_trunk"})
_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")  # a period inside "2.1 cm" does not end a sentence
_CLAUSE_BREAK = re.compile(r"[,;:()]|\b(?:and|but|while|whereas|however)\b", re.I)
_SIZE = re.compile(r"(\d+(?:\.\d+)?)(?:\s*(?:x|×|by)\s*(\d+(?:\.\d+)?))?(?:\s*(?:x|×|by)\s*(\d+(?:\.\d+)?))?"
                   r"\s*(mm|cm|millimet(?:er|re)s?|centimet(?:er|re)s?)\b", re.I)
_NEGATION = re.compile(r"\b(no|not|without|negative for|absence of|absent|free of|resolved|"
                       r"no evidence of|ruled out)\b", re.I)
_SIDE = re.compile(r"\b(left|right|bilateral|both)\b", re.I)
DESCRIPTORS = ("enlarged", "small", "large", "tiny", "multiple", "solitary", "single", "simple", "complex",
               "hypodense", "hyperdense", "isodense", "hypoattenuating", "hyperattenuating", "hypoechoic",
               "hyperechoic", "enhancing", "non-enhancing", "calcified", "cystic", "solid", "necrotic",
               "heterogeneous", "homogeneous", "new", "increased", "decreased", "stable", "unchanged",
               "unremarkable", "normal", "mild", "moderate", "severe", "focal", "diffuse", "exophytic",
               "lobulated", "spiculated", "well-defined", "ill-defined", "atrophic", "dilated")
_DESCRIPTOR = re.compile(r"\b(" + "|".join(re.escape(d) for d in DESCRIPTORS) + r")\b", re.I)


@dataclass
class _Match:
    concept: Concept
    start: int
    end: int
    generic_lesion: bool


def is_lesion(tree: KnowledgeTree, c: Concept) -> bool:
    """Whether ``c`` is a lesion (kind ``lesion``, or under the ``lesion`` group)."""
    return c.kind == "lesion" or c.id == "lesion" or "lesion" in tree.ancestors(c.id)


def is_generic_lesion(tree: KnowledgeTree, c: Concept) -> bool:
    """A lesion word with no anatomy of its own ("cyst", "mass"), unlike "renal cyst"."""
    return is_lesion(tree, c) and all(is_lesion(tree, tree.get(a)) for a in tree.ancestors(c.id))


def _spans(pattern: re.Pattern, text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start() + start, m.end() + start) for m in pattern.finditer(text[start:end])]


def _match_ngrams(tree: KnowledgeTree, text: str, start: int, end: int) -> list[_Match]:
    """Greedy longest n-gram matches of tree terms inside ``text[start:end]``."""
    words = [(m.start() + start, m.end() + start) for m in _WORD.finditer(text[start:end])]
    out, i = [], 0
    while i < len(words):
        for n in range(min(MAX_NGRAM, len(words) - i), 0, -1):
            s, e = words[i][0], words[i + n - 1][1]
            if n == 1 and len(text[s:e]) < 3:
                continue
            c = tree.lookup(text[s:e])
            if c is not None and c.id not in _SKIP_IDS:
                out.append(_Match(c, s, e, is_generic_lesion(tree, c)))
                i += n
                break
        else:
            i += 1
    return out


def lateralize(tree: KnowledgeTree, c: Concept, side: str | None) -> Concept:
    """The ``side`` ("left"/"right") version of ``c``: itself, its mirror or a lateral child."""
    if side not in ("left", "right") or c.laterality == side:
        return c
    if c.laterality != "none" and c.mirror in tree:
        return tree.get(c.mirror)
    return next((tree.get(k) for k in tree.children(c.id) if tree.get(k).laterality == side), c)


def combine(tree: KnowledgeTree, lesion: Concept, anatomy: Concept, lesion_text: str = "") -> Concept | None:
    """The most general concept that is both a kind of ``lesion`` and located in ``anatomy``.

    Tries the phrase itself ("left kidney cyst"), then the tree (descendants of the lesion located
    in the anatomy, or in its nearest parents), keeping the anatomy's side.
    """
    for phrase in (f"{anatomy.name} {lesion_text or lesion.name}", f"{lesion_text or lesion.name} of {anatomy.name}"):
        c = tree.lookup(phrase)
        if c is not None and c.id != anatomy.id:
            return c
    below = tree.descendants(lesion.id)
    for host in [anatomy.id, *tree.parents(anatomy.id)]:
        found = [d for d in below if host in tree.ancestors(d)]
        top = [d for d in found if not any(a in found for a in tree.ancestors(d))]
        if top:
            top.sort(key=lambda d: (-len(tree.descendants(d)), d))
            return lateralize(tree, tree.get(top[0]), anatomy.laterality)
    return None


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    cuts = [start] + [s for pair in _spans(_CLAUSE_BREAK, text, start, end) for s in pair] + [end]
    return [(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if text[a:b].strip()]


def _nearest(anchors: list[_Match], s: int, e: int) -> int:
    return min(range(len(anchors)), key=lambda k: min(abs(anchors[k].start - e), abs(s - anchors[k].end)))


def _sizes_mm(m: re.Match) -> list[float]:
    scale = 10.0 if m.group(4).lower().startswith("c") else 1.0
    return [float(g) * scale for g in m.groups()[:3] if g is not None]


def extract_mentions(text: str, tree: KnowledgeTree, sentence_offset: int = 0) -> list[Mention]:
    """All anatomical mentions in ``text``, in reading order.

    Args:
        text: report or findings text (any length the caller accepts).
        tree: the knowledge tree whose terms are matched.
        sentence_offset: added to each mention's sentence index.

    Returns:
        Mentions whose ``start``/``end`` and ``anatomy_start``/``anatomy_end`` index ``text``.
    """
    mentions: list[Mention] = []
    cuts = [0] + [p for m in _SENTENCE_END.finditer(text) for p in m.span()] + [len(text)]
    sentences = [(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if text[a:b].strip()]
    for si, (ss, se) in enumerate(sentences):
        for cs, ce in _clauses(text, ss, se):
            matches = _match_ngrams(tree, text, cs, ce)
            anchors = [m for m in matches if not m.generic_lesion] or matches
            if not anchors:
                continue
            lesions: dict[int, _Match] = {}
            for m in matches:
                if m.generic_lesion and m not in anchors:
                    lesions.setdefault(_nearest(anchors, m.start, m.end), m)
            sizes: dict[int, list[tuple[int, int, list[float]]]] = {}
            for m in _SIZE.finditer(text, cs, ce):
                sizes.setdefault(_nearest(anchors, m.start(), m.end()), []).append(
                    (m.start(), m.end(), _sizes_mm(m)))
            descriptors = [text[s:e].lower() for s, e in _spans(_DESCRIPTOR, text, cs, ce)]
            negations = _spans(_NEGATION, text, cs, ce)
            for k, a in enumerate(anchors):
                les = lesions.get(k)
                parts = [(a.start, a.end)] + ([(les.start, les.end)] if les else []) + \
                        [(s, e) for s, e, _ in sizes.get(k, [])]
                s0, e0 = min(p[0] for p in parts), max(p[1] for p in parts)
                concept = a.concept
                if les is not None:
                    concept = combine(tree, les.concept, a.concept, text[les.start:les.end]) or a.concept
                side = a.concept.laterality if a.concept.laterality in ("left", "right") else None
                if side is None:  # side words in the phrase, or anywhere in a one-anatomy clause
                    words = {w.lower() for w in _SIDE.findall(text[s0:e0] if len(anchors) > 1 else text[cs:ce])}
                    side = "bilateral" if {"bilateral", "both"} & words or {"left", "right"} <= words \
                        else next(iter(words), None)
                    concept = lateralize(tree, concept, side)
                mentions.append(Mention(
                    text=text[s0:e0], start=s0, end=e0, anatomy=text[a.start:a.end],
                    anatomy_start=a.start, anatomy_end=a.end, sentence=si + sentence_offset,
                    laterality=side, lesion=text[les.start:les.end] if les else None,
                    sizes_mm=[v for _, _, vs in sizes.get(k, []) for v in vs], modifiers=descriptors,
                    negated=any(ns < s0 for ns, _ in negations), concept=concept.id))
    return mentions
