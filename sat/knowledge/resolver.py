"""Resolve free text to a knowledge-tree concept, or refuse it with suggestions.

Order:

0. **Parse** (:func:`sat.knowledge.prompt_parse.parse_prompt`): modality, sequence, contrast, phase,
   scan references, task words ("segmentation of", "identified via ..."), report phrasing
   ("CT showing X structures", "region characterized by X") and a trailing region setting
   ("in the whole body region") are cut out as qualifiers; what is left is the anatomy.
1. **Lexical stages** (:attr:`Resolver.LEXICAL_STAGES`, in order; the first that names one
   concept decides):
   ``terms``: the whole prompt, then its anatomy, against every id, name and synonym (exact,
   abbreviation, Latin and related fields), exactly, in any word order with side abbreviations,
   roman numerals and ordinals normalised ("Lt kidney", "Couinaud segment VII"), or with spaces
   dropped ("ribcage"); ``english``: the anatomy read in plain English (Latin and structure-name
   abbreviations, :mod:`sat.knowledge.glossary`: "glandula parotidea", "Glnd_Submand_R");
   ``organ``: organ adjectives as nouns ("hepatic segment IVb" = "liver segment 4b");
   ``core``: a trailing generic noun dropped ("splenic tissue" = spleen, "osseous structures" =
   bones); ``initials``: abbreviations whose initials point to one concept ("GDA":
   gastroduodenal artery); ``sided``: a side word with a term of the bilateral concept ("left
   peroneal bone" = the left fibula); ``thesaurus``: rewrites through
   :mod:`sat.knowledge.thesaurus` (WordNet synonyms, direction words) that match a term.
2. **Embedding**: nearest term embedding of the anatomy, its English reading and its core (the
   best counts), accepted at or above a calibrated threshold; among the candidates above it,
   the best one whose terms name every code, number and direction word of the prompt comes
   first ("C6 segment", "3rd toe middle phalanx", "pectoralis minor muscle"); an abbreviation with several expansions, or thesaurus rewrites
   matching several concepts, competes only among those.
3. **Refusal** with up to five suggestions.

Laterality written in the text always wins over similarity: "left kidney" can never resolve to
the right kidney.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from sat.knowledge.glossary import english, english_reading, organ_reading
from sat.knowledge.lexicon import LexicalIndex, abbreviation_key, canonical_token
from sat.knowledge.normalize import tokens
from sat.knowledge.prompt_parse import ParsedPrompt, parse_prompt
from sat.knowledge.thesaurus import Thesaurus, load_thesaurus
from sat.knowledge.tree import KnowledgeTree

MAX_PROMPT_CHARS = 512
MAX_SUGGESTIONS = 5
# Code / number / direction agreement applies to names, not to sentences describing a structure.
MAX_AGREEMENT_WORDS = 8
# Raw MiniLM threshold as calibrated on the calibration split, seed 0 (`sat concepts calibrate`);
# a knowledge-pretrained encoder carries its own in its sidecar JSON.
DEFAULT_THRESHOLD = 0.605
_UNLOADED = object()


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


def agreement_keys(words: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """``(strict, loose)`` words a candidate must share with a prompt: codes ("c6"), numbers,
    direction, side, hand/foot and spine-level words ("lateralis" = "lateral", "upper" = "superior",
    "pedal" = "foot") strictly; numbers alone loosely."""
    numbers = numbers_of(words)
    codes = {w for w in words if _CODE.fullmatch(w)}
    directions = {_DIRECTIONS[w] for w in words if w in _DIRECTIONS}
    return frozenset(numbers | codes | directions), numbers


_NO_KEYS: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())


@dataclass(frozen=True)
class _Query:
    """What the embedding stage gets for one prompt: the readings of its anatomy (the best one
    counts) and, for an abbreviation with several expansions or thesaurus rewrites matching
    several concepts, the concept indices allowed and the method that found them."""

    readings: tuple[str, ...]
    candidates: tuple[int, ...] = ()
    method: str = "lexical"
    keys: tuple[frozenset[str], frozenset[str]] = _NO_KEYS  # agreement_keys of the anatomy


@dataclass
class _Lookup:
    """What the lexical stages share about one prompt."""

    raw: str
    p: ParsedPrompt
    words: list[str]
    plain: str | None  # English reading of the anatomy, if it differs
    key: str | None  # abbreviation key, if the anatomy is written as one
    candidates: tuple[str, ...] = ()  # concepts whose initials are the key
    rewrites: tuple[str, ...] = ()  # concepts named by thesaurus rewrites


@dataclass
class Resolution:
    """The answer for one prompt (``concept`` is ``None`` when refused)."""

    text: str
    concept: str | None
    name: str | None
    score: float
    modality: str | None = None
    laterality: str | None = None
    method: str = "refused"  # exact | lexical | thesaurus | embedding | refused
    reason: str = ""
    suggestions: list[dict] = field(default_factory=list)
    anatomy: str = ""  # what the parse took as anatomy
    qualifiers: list[dict] = field(default_factory=list)  # {"stage", "text"} cut from the prompt
    stage: str = ""  # the lexical stage that decided, or "" (embedding / refused)

    def to_dict(self) -> dict:
        return asdict(self)


class Resolver:
    """Text -> concept.

    Args:
        tree: the knowledge tree.
        term_ids: concept id of each row of ``term_emb`` (``None`` with ``load_terms``).
        term_emb: (N, dim) L2-normalised embeddings of concept terms.
        encode: maps a list of strings to (n, dim) L2-normalised embeddings.
        threshold: minimum cosine similarity to accept an embedding match.
        load_terms: called once, on the first prompt that needs embeddings, to get
            ``(term_ids, term_emb)``; lets purely lexical use skip the encoder entirely.
        cache_size: prompt embeddings kept in memory (LRU).
        thesaurus: external synonyms tried after the tree's own lexical keys: a
            :class:`~sat.knowledge.thesaurus.Thesaurus`, a zero-argument loader called on the
            first prompt that reaches that stage, or ``None`` for none.
    """

    def __init__(self, tree: KnowledgeTree, term_ids: list[str] | None, term_emb: torch.Tensor | None,
                 encode: Callable[[list[str]], torch.Tensor], threshold: float = DEFAULT_THRESHOLD,
                 *, load_terms: Callable[[], tuple[list[str], torch.Tensor]] | None = None,
                 cache_size: int = 100_000,
                 thesaurus: Thesaurus | Callable[[], Thesaurus | None] | None = None) -> None:
        if term_emb is None and load_terms is None:
            raise ValueError("Resolver needs term_ids/term_emb or load_terms")
        self.tree, self.encode, self.threshold = tree, encode, float(threshold)
        self._concepts = list(tree.concepts)
        self._index = {cid: i for i, cid in enumerate(self._concepts)}
        self._load_terms, self._terms = load_terms, None
        if term_emb is not None:
            self._set_terms(list(term_ids or []), term_emb)
        self.lexicon = LexicalIndex.for_tree(tree)
        self._keys: dict[str, frozenset[str]] | None = None  # agreement keys of each concept's terms
        self.thesaurus = thesaurus
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size

    @property
    def thesaurus(self) -> Thesaurus | None:
        """The thesaurus in use (loaded on first access), restricted to this tree's words."""
        if self._thesaurus is _UNLOADED:
            source = self._thesaurus_source
            found = source() if callable(source) else source
            # rewrites into words no term uses can never match: drop them once
            self._thesaurus = found.restricted(self.lexicon.words) if found is not None else None
        return self._thesaurus

    @thesaurus.setter
    def thesaurus(self, value: Thesaurus | Callable[[], Thesaurus | None] | None) -> None:
        self._thesaurus_source, self._thesaurus = value, _UNLOADED

    # ------------------------------------------------------------------ embeddings
    def _set_terms(self, ids: list[str], emb: torch.Tensor) -> None:
        """Store the term table with its rows grouped by concept, for segment-wise maxima."""
        rows = torch.tensor([self._index[c] for c in ids], dtype=torch.long)
        order = torch.argsort(rows, stable=True)
        rows = rows[order]
        self._terms = (rows, emb.float()[order])
        present, counts = torch.unique_consecutive(rows, return_counts=True)
        self._segments = (present, (torch.cumsum(counts, 0) - counts).numpy())  # concept, first row

    def terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(row -> concept index (N,), term embeddings (N, dim))``, rows grouped by concept,
        loaded on first use."""
        if self._terms is None:
            self._set_terms(*self._load_terms())
        return self._terms

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Embeddings (n, dim) of ``texts``, encoding only those not in the LRU cache.

        New texts go to the encoder in one call (it batches them by length itself).
        """
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            for t, e in zip(todo, self.encode(todo)):
                self._cache[t] = e
        out = torch.stack([self._cache[t] for t in texts]) if texts else torch.zeros(0)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def clear_cache(self) -> None:
        """Forget cached prompt embeddings (term embeddings stay)."""
        self._cache.clear()

    def concept_scores(self, emb: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """Best term similarity per concept: (P, dim) -> (P, C); -1 for a concept with no term."""
        _, table = self.terms()
        present, starts = self._segments
        out = torch.full((len(emb), len(self._concepts)), -1.0)
        for i, q in zip(range(0, len(emb), chunk), emb.float().split(chunk) if len(starts) else ()):
            sims = (q @ table.T).numpy()  # (p, N), rows grouped by concept
            out[i:i + len(q), present] = torch.from_numpy(np.maximum.reduceat(sims, starts, axis=1))
        return out

    # ------------------------------------------------------------------ resolution
    def resolve(self, text: str) -> Resolution:
        return self.resolve_many([text])[0]

    def resolve_many(self, texts: list[str]) -> list[Resolution]:
        """Resolve a batch: lexical matches skip the encoder, the rest are encoded together."""
        out: list[Resolution] = []
        pending: list[tuple[int, _Query]] = []
        for raw in texts:
            res, query = self._lexical(raw if isinstance(raw, str) else str(raw))
            out.append(res)
            if query is not None:
                pending.append((len(out) - 1, query))
        if pending:
            variants = [t for _, q in pending for t in q.readings]
            per_text = self.concept_scores(self.embed(variants))  # (V, C)
            starts = np.cumsum([0] + [len(q.readings) for _, q in pending[:-1]])
            scores = torch.from_numpy(np.maximum.reduceat(per_text.numpy(), starts, axis=0))  # (P, C)
            k = min(16, scores.shape[1])  # agreement may pick a lower-ranked candidate
            vals, idx = scores.topk(k, dim=1)  # (P, k); scores: best reading of each prompt
            for n, ((i, q), v, j) in enumerate(zip(pending, vals.tolist(), idx.tolist())):
                if not q.candidates:
                    self._nearest(out[i], self._agreeing_first([(self._concepts[c], x) for x, c in zip(v, j)],
                                                               q.keys))
                    continue
                # initials or rewrites already name these concepts: similarity only ranks them
                allowed = torch.tensor(q.candidates)
                best = int(scores[n, allowed].argmax())
                self._accept(out[i], self._concepts[int(allowed[best])], float(scores[n, allowed[best]]),
                             q.method)
        return out

    def _lexical(self, raw: str) -> tuple[Resolution, _Query | None]:
        """Lexical lookup through :attr:`LEXICAL_STAGES` in order; returns (resolution, what to
        embed or ``None`` when decided)."""
        p: ParsedPrompt = parse_prompt(raw[:MAX_PROMPT_CHARS])
        res = Resolution(text=raw, concept=None, name=None, score=0.0, modality=p.modality,
                         laterality=p.laterality, anatomy=p.anatomy,
                         qualifiers=[{"stage": k, "text": t} for k, t in p.qualifiers])
        words = tokens(p.anatomy)
        if not raw.strip():
            res.reason = "empty prompt"
        elif len(raw) > MAX_PROMPT_CHARS:
            res.reason = f"prompt longer than {MAX_PROMPT_CHARS} characters ({len(raw)})"
        elif not words:
            res.reason = "prompt names no anatomy (no letters or digits)"
        else:
            q = _Lookup(raw, p, words, english_reading(p.anatomy), abbreviation_key(raw, p.anatomy))
            q.candidates = self.lexicon.initials_candidates(q.key) if q.key else ()
            for name in self.LEXICAL_STAGES:
                found = getattr(self, f"_stage_{name}")(q)
                if found is not None:
                    res.stage = name
                    return self._accept(res, found[0], 1.0, found[1]), None
            readings = tuple(dict.fromkeys(r for r in (p.anatomy, q.plain, p.core) if r))
            method, candidates = "lexical", q.candidates
            if not candidates and q.rewrites:
                candidates, method = q.rewrites, "thesaurus"
            return res, _Query(readings, tuple(self._index[c] for c in candidates), method,
                               agreement_keys([canonical_token(w) for w in tokens(english(p.anatomy))])
                               if len(words) <= MAX_AGREEMENT_WORDS else _NO_KEYS)
        return res, None

    # The lexical stages, in order; each returns ``(concept id, method)`` or ``None``.
    LEXICAL_STAGES = ("terms", "english", "organ", "core", "initials", "sided", "thesaurus")

    def _stage_terms(self, q: _Lookup):
        """A term of the tree: the whole prompt, then its anatomy (exact, order-free, compact)."""
        cid, method = self.lexicon.match(q.raw, q.p.anatomy)
        return (cid, method) if cid else None

    def _stage_english(self, q: _Lookup):
        """The anatomy read in plain English (Latin, structure-name abbreviations)."""
        cid = self.lexicon.match_bag(q.plain) if q.plain else None
        return (cid, "lexical") if cid else None

    def _stage_organ(self, q: _Lookup):
        """Organ adjectives as nouns ("hepatic segment IVb" = "liver segment 4b")."""
        organ = organ_reading(q.p.anatomy)
        cid = self.lexicon.match_bag(organ) if organ else None
        return (cid, "lexical") if cid else None

    def _stage_core(self, q: _Lookup):
        """The anatomy without a trailing generic noun ("splenic tissue" = spleen), read as is,
        in English and with organ adjectives as nouns."""
        core = q.p.core
        if not core:
            return None
        for text in (core, english_reading(core), organ_reading(core)):
            cid = self.lexicon.match_bag(text) if text else None
            if cid:
                return cid, "lexical"
        return None

    def _stage_initials(self, q: _Lookup):
        """An abbreviation whose initials point to exactly one concept ("GDA")."""
        return (q.candidates[0], "lexical") if len(q.candidates) == 1 else None

    def _stage_sided(self, q: _Lookup):
        cid = self._sided(q.words, q.p.laterality)
        return (cid, "lexical") if cid else None

    def _stage_thesaurus(self, q: _Lookup):
        """Rewrites through the thesaurus that name exactly one concept; several narrow the
        embedding stage."""
        if q.candidates or self.thesaurus is None:
            return None
        q.rewrites = self._rewritten(q.p.anatomy)
        return (q.rewrites[0], "thesaurus") if len(q.rewrites) == 1 else None

    def _sided(self, words: list[str], side: str | None) -> str | None:
        """The ``side`` concept named by a term of its bilateral or mirror concept plus the side
        word ("left calf bone" = left of "calf bone"), or ``None``; ``words``: the anatomy's
        tokens. Only a concept that really has that side counts: "left colon" is not "colon"
        on the left."""
        if side not in ("left", "right"):
            return None
        words = [w for w in words if canonical_token(w) not in ("left", "right")]
        cid = self.lexicon.match_words(words) if words else None
        if cid is None:
            return None
        sided = self._enforce_laterality(cid, side)
        return sided if self.tree.get(sided).laterality == side else None

    def _rewritten(self, anatomy: str) -> tuple[str, ...]:
        """Concepts that a thesaurus rewrite of ``anatomy`` names exactly, sorted."""
        found = set()
        for variant in self.thesaurus.rewrites(anatomy):  # already normalised
            cid = self.lexicon.match_words(variant.split())
            if cid is not None:
                found.add(cid)
        return tuple(sorted(found))

    def _agreeing_first(self, ranked: list[tuple[str, float]], keys: tuple[frozenset[str], frozenset[str]]
                        ) -> list[tuple[str, float]]:
        """``ranked`` with the best candidate above the threshold whose terms name every code,
        number and direction word of the prompt moved first ("C6 segment" is not the T6 segment,
        "pectoralis minor muscle" not the chest wall muscles); failing that, every number."""
        if not keys[0]:
            return ranked
        if self._keys is None:
            self._keys = {c.id: frozenset().union(*(agreement_keys(tokens(t))[0] for t in (c.id, *c.terms)))
                          for c in self.tree.concepts.values()}
        # never trade the side the similarity found for an agreeing word ("RML lateral segment"
        # stays right: a side the text names is enforced later anyway)
        opposite = {"left": "right", "right": "left"}.get(self.tree.get(ranked[0][0]).laterality)
        for need in dict.fromkeys(k for k in keys if k):
            for k, (cid, score) in enumerate(ranked):
                if score < self.threshold:
                    break
                if need <= self._keys[cid] and self.tree.get(cid).laterality != opposite:
                    return [ranked[k], *ranked[:k], *ranked[k + 1:]]
        return ranked

    def _nearest(self, res: Resolution, ranked: list[tuple[str, float]]) -> None:
        best_id, best = ranked[0]
        if best >= self.threshold:
            self._accept(res, best_id, best, "embedding")
            return
        res.score = round(best, 4)
        res.reason = f"no concept is close enough (best {best:.2f} < threshold {self.threshold:.2f})"
        res.suggestions = [{"concept": cid, "name": self.tree.get(cid).name, "score": round(s, 3)}
                           for cid, s in ranked[:MAX_SUGGESTIONS]]

    def _accept(self, res: Resolution, cid: str, score: float, method: str) -> Resolution:
        cid = self._enforce_laterality(cid, res.laterality)
        res.concept, res.name = cid, self.tree.get(cid).name
        res.score, res.method = round(score, 4), method
        return res

    def _enforce_laterality(self, cid: str, side: str | None) -> str:
        """Swap to the mirror (or the lateral child, or the bilateral parent) the text names."""
        c = self.tree.get(cid)
        if side is None or c.laterality == side:
            return cid
        if side == "both":
            if c.laterality == "none" or not c.mirror:
                return cid
            for parent in self.tree.parents(cid):
                if c.mirror in self.tree.descendants(parent):
                    return parent
            return cid
        if c.laterality != "none" and c.mirror:
            return c.mirror
        for child in self.tree.children(cid):
            if self.tree.get(child).laterality == side:
                return child
        return cid
