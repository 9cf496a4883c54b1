"""Resolve free text to a knowledge-tree concept, or refuse it with suggestions.

Order: (1) exact match of the normalised prompt, then of its anatomy part, against every id,
name and synonym; (2) nearest term embedding, accepted above a calibrated threshold; (3) refusal
with up to five suggestions. Laterality written in the text always wins over similarity: "left
kidney" can never resolve to the right kidney.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from sat.knowledge.normalize import normalize
from sat.knowledge.prompt import parse_prompt
from sat.knowledge.tree import KnowledgeTree

MAX_PROMPT_CHARS = 512


@dataclass
class Resolution:
    """The answer for one prompt (``concept`` is ``None`` when refused)."""

    text: str
    concept: str | None
    name: str | None
    score: float
    modality: str | None = None
    laterality: str | None = None
    method: str = "refused"
    reason: str = ""
    suggestions: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Resolver:
    """Text -> concept.

    Args:
        tree: the knowledge tree.
        term_ids: concept id of each row of ``term_emb``.
        term_emb: (N, dim) L2-normalised embeddings of concept terms.
        encode: function mapping a list of strings to (n, dim) normalised embeddings.
        threshold: minimum cosine similarity to accept an embedding match.
    """

    def __init__(self, tree: KnowledgeTree, term_ids: list[str], term_emb: torch.Tensor,
                 encode, threshold: float = 0.62) -> None:
        self.tree, self.term_ids, self.term_emb = tree, term_ids, term_emb.float()
        self.encode, self.threshold = encode, threshold
        self._row_concept = torch.tensor([list(tree.concepts).index(c) for c in term_ids])
        self._concepts = list(tree.concepts)

    @classmethod
    def from_spec(cls, tree: KnowledgeTree, spec=None, threshold: float | None = None) -> Resolver:
        """Build with a text encoder spec (default MiniLM); term embeddings come from the cache."""
        from sat.text.cache import term_table
        from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts

        spec = spec or TextEncoderSpec()
        encoder = None

        def encode(texts: list[str]) -> torch.Tensor:
            nonlocal encoder
            encoder = encoder or build_text_encoder(spec)
            return encode_texts(encoder, texts)

        ids, _, emb = term_table(tree, spec, None)
        return cls(tree, ids, emb, encode, **({"threshold": threshold} if threshold else {}))

    def resolve(self, text: str) -> Resolution:
        return self.resolve_many([text])[0]

    def resolve_many(self, texts: list[str]) -> list[Resolution]:
        """Resolve a batch; exact matches skip the encoder, the rest are encoded together."""
        out: list[Resolution | None] = []
        pending: list[tuple[int, str]] = []
        for i, raw in enumerate(texts):
            res, query = self._exact(raw)
            out.append(res)
            if res is None and query is not None:
                pending.append((i, query))
        if pending:
            sims = self.encode([q for _, q in pending]) @ self.term_emb.T  # (P, N)
            for (i, _), row in zip(pending, sims):
                out[i] = self._nearest(texts[i], row)
        return out  # type: ignore[return-value]

    def _exact(self, raw) -> tuple[Resolution | None, str | None]:
        """Exact lookup; returns (resolution or None, text to embed or None if refused)."""
        if not isinstance(raw, str):
            raw = str(raw)
        p = parse_prompt(raw[:MAX_PROMPT_CHARS])
        base = Resolution(text=raw, concept=None, name=None, score=0.0, modality=p.modality,
                          laterality=p.laterality if p.laterality in ("left", "right") else None)
        if not normalize(p.anatomy):
            base.reason = "empty prompt" if not raw.strip() else "prompt names no anatomy"
            return base, None
        if len(raw) > MAX_PROMPT_CHARS:
            base.reason = f"prompt longer than {MAX_PROMPT_CHARS} characters"
            return base, None
        for candidate in (raw, p.anatomy):
            c = self.tree.lookup(candidate)
            if c is not None:
                return self._accept(base, c.id, 1.0, "exact"), None
        return None, p.anatomy

    def _nearest(self, raw: str, sims: torch.Tensor) -> Resolution:
        p = parse_prompt(raw)
        base = Resolution(text=raw, concept=None, name=None, score=0.0, modality=p.modality,
                          laterality=p.laterality if p.laterality in ("left", "right") else None)
        per_concept = torch.full((len(self._concepts),), -1.0).scatter_reduce(
            0, self._row_concept, sims.float(), reduce="amax")
        top = torch.topk(per_concept, k=min(8, len(per_concept)))
        ranked = [(self._concepts[int(i)], float(s)) for s, i in zip(top.values, top.indices)]
        best_id, best = ranked[0]
        if best >= self.threshold:
            return self._accept(base, best_id, best, "embedding")
        base.score = best
        base.reason = f"no concept is close enough (best {best:.2f} < {self.threshold:.2f})"
        base.suggestions = [{"concept": cid, "name": self.tree.get(cid).name, "score": round(s, 3)}
                            for cid, s in ranked[:5]]
        return base

    def _accept(self, base: Resolution, cid: str, score: float, method: str) -> Resolution:
        cid = self._enforce_laterality(cid, base.laterality)
        c = self.tree.get(cid)
        base.concept, base.name, base.score, base.method = cid, c.name, round(score, 4), method
        return base

    def _enforce_laterality(self, cid: str, side: str | None) -> str:
        """Swap to the mirror (or the lateral child) when the text names the other side."""
        c = self.tree.get(cid)
        if side is None or c.laterality == side:
            return cid
        if c.laterality != "none" and c.mirror:
            return c.mirror
        for child in self.tree.children(cid):
            if self.tree.get(child).laterality == side:
                return child
        return cid
