"""Resolve free text to a knowledge-tree concept, or refuse it with suggestions.

The stages, in order (named functions in :mod:`sat.knowledge.resolver_stages`,
:mod:`~sat.knowledge.lexical_stages` and :mod:`~sat.knowledge.sides`; the order is written once,
in :meth:`Resolver.resolve_many`):

1. **Parse** (:func:`sat.knowledge.prompt_parse.parse_prompt`): modality, sequence, contrast, phase,
   scan references, task words ("segmentation of", "identified via ..."), report phrasing
   ("CT showing X structures", "region characterized by X") and a trailing region setting
   ("in the whole body region") are cut out as qualifiers; what is left is the anatomy.
2. **Screen**: empty, over-long and letterless prompts are refused.
3. **Lexical stages** (:data:`~sat.knowledge.lexical_stages.LEXICAL_STAGES`, in order; the
   first that names one concept decides):
   ``terms``: the whole prompt, then its anatomy, against every id, name and synonym (exact,
   abbreviation, Latin and related fields), exactly, in any word order with side abbreviations,
   roman numerals and ordinals normalised ("Lt kidney", "Couinaud segment VII"), or with spaces
   dropped ("ribcage"); ``english``: the anatomy read in plain English (Latin and structure-name
   abbreviations, :mod:`sat.knowledge.glossary`: "glandula parotidea", "Glnd_Submand_R");
   ``organ``: organ adjectives as nouns, in the prompt and in the terms ("hepatic segment IVb" =
   "liver segment 4b", "medulla of kidney" = renal medulla); ``core``: a trailing generic noun
   dropped ("splenic tissue" = spleen, "osseous structures" = bones); ``kind``: a kind word dropped
   when the rest names a structure of that kind ("gracilis muscle", "musculus obturator internus");
   ``initials``: abbreviations whose initials point to one concept ("GDA": gastroduodenal artery);
   ``sided``: a side word with a term of the bilateral concept ("left peroneal bone" = the left
   fibula); ``thesaurus``: rewrites through :mod:`sat.knowledge.thesaurus` (WordNet synonyms,
   direction and size words, anatomy phrases) that match a term; ``latin``: Latin endings read into
   words of the tree's terms ("valva mitralis"); ``spelling``: one-letter slips corrected into the
   tree's words, never in an English word (:mod:`sat.knowledge.spelling`: "pancrease",
   "oesophogus").
4. **Embedding**: nearest term embedding of the anatomy, its English reading and its core (the
   best counts), accepted at or above a calibrated threshold; among the candidates above it,
   the best one whose terms name every code, number and direction word of the prompt comes
   first ("C6 segment", "3rd toe middle phalanx", "pectoralis minor muscle",
   :mod:`sat.knowledge.agreement`); an abbreviation with several expansions, or thesaurus
   rewrites matching several concepts, competes only among those.
5. **Refusal** with up to five suggestions.
6. **Laterality** written in the text always wins over similarity: "left kidney" can never
   resolve to the right kidney.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from sat.knowledge.agreement import agreeing_first, agreement_keys, concept_keys, numbers_of
from sat.knowledge.lexicon import LexicalIndex
from sat.knowledge.prompt_parse import parse_prompt
from sat.knowledge.lexical_stages import first_lexical, lookup
from sat.knowledge.resolver_stages import (MAX_PROMPT_CHARS, MAX_SUGGESTIONS, EmbeddingQuery,
                                           embedding_query, narrowed, refusal, screen)
from sat.knowledge.sides import enforce_laterality, unsided
from sat.knowledge.thesaurus import Thesaurus
from sat.knowledge.tree import KnowledgeTree

__all__ = ["DEFAULT_THRESHOLD", "MAX_PROMPT_CHARS", "MAX_SUGGESTIONS", "Resolution", "Resolver",
           "agreement_keys", "numbers_of"]

# Raw MiniLM threshold as calibrated on the calibration split, seed 0 (`sat concepts calibrate`);
# a knowledge-pretrained encoder carries its own in its sidecar JSON.
DEFAULT_THRESHOLD = 0.605
_UNLOADED = object()


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
        """Resolve a batch, running the stages of :mod:`sat.knowledge.resolver_stages` in order:
        lexical matches skip the encoder, the rest are encoded together."""
        out: list[Resolution] = []
        pending: list[tuple[Resolution, EmbeddingQuery]] = []
        for raw in texts:
            raw = raw if isinstance(raw, str) else str(raw)
            p = parse_prompt(raw[:MAX_PROMPT_CHARS])  # 1. parse
            res = Resolution(text=raw, concept=None, name=None, score=0.0, modality=p.modality,
                             laterality=p.laterality, anatomy=p.anatomy,
                             qualifiers=[{"stage": k, "text": t} for k, t in p.qualifiers])
            out.append(res)
            res.reason = screen(raw, p)  # 2. screen
            if res.reason:
                continue
            q = lookup(raw, p, self.lexicon)  # 3. lookup keys
            found = first_lexical(q, self)  # 4. lexical stages, the first hit decides
            if found is not None:
                res.stage, (cid, method) = found
                self._accept(res, cid, 1.0, method)
            else:
                pending.append((res, embedding_query(q)))  # 5. readings
        if not pending:
            return out
        scores = self._scores([q for _, q in pending])  # 6. embedding: (P, C)
        k = min(16, scores.shape[1])  # agreement may pick a lower-ranked candidate
        vals, idx = scores.topk(k, dim=1)  # (P, k)
        for (res, q), row, v, j in zip(pending, scores, vals.tolist(), idx.tolist()):
            if q.candidates:  # 7. narrow: initials or rewrites already name these concepts
                cid, score = narrowed({c: float(row[self._index[c]]) for c in q.candidates},
                                      q.candidates)
                self._accept(res, cid, score, q.method)
                continue
            if self._keys is None:
                self._keys = concept_keys(self.tree)
            ranked = agreeing_first([(self._concepts[c], x) for x, c in zip(v, j)], q.keys,
                                    self._keys, self.tree, self.threshold)  # 8. agreement
            best_id, best = ranked[0]
            if res.laterality is None:  # 9. unsided: a prompt with no side names both sides
                both = unsided(self.tree, best_id, res.text, lambda c: float(row[self._index[c]]),
                               self.threshold)
                if both != best_id:
                    best_id, best = both, float(row[self._index[both]])
            if best >= self.threshold:  # 10. threshold
                self._accept(res, best_id, best, "embedding")
            else:
                res.score = round(best, 4)
                res.reason, res.suggestions = refusal(ranked, self.threshold, self.tree)
        return out

    def _scores(self, queries: list[EmbeddingQuery]) -> torch.Tensor:
        """(P, C): for each query, the best of its readings' concept scores."""
        variants = [t for q in queries for t in q.readings]
        per_text = self.concept_scores(self.embed(variants))  # (V, C)
        starts = np.cumsum([0] + [len(q.readings) for q in queries[:-1]])
        return torch.from_numpy(np.maximum.reduceat(per_text.numpy(), starts, axis=0))

    def _accept(self, res: Resolution, cid: str, score: float, method: str) -> Resolution:
        cid = enforce_laterality(self.tree, cid, res.laterality)  # 11. laterality
        res.concept, res.name = cid, self.tree.get(cid).name
        res.score, res.method = round(score, 4), method
        return res
