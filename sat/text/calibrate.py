"""Calibrate the resolver's acceptance threshold on the calibration split.

Positives are the ``calib`` held-out anatomical queries, negatives :data:`CALIB_NEGATIVES`;
neither the evaluation split nor the evaluation negatives are touched. The threshold maximises
``min(acceptance of anatomy, refusal of non-anatomy)``.
"""
from __future__ import annotations

from sat.knowledge.resolver import Resolution, Resolver
from sat.text.resolver_factory import build_resolver
from sat.knowledge.tree import KnowledgeTree
from sat.text.negatives import CALIB_NEGATIVES
from sat.text.queries import held_out_queries
from sat.text.splits import SplitConfig, split_tree, train_view


def accepted(res: Resolution, threshold: float) -> bool:
    """Whether a resolution made with threshold -1 would be accepted at ``threshold``."""
    if res.method in ("exact", "lexical", "thesaurus"):
        return True
    return res.method == "embedding" and res.score >= threshold


def pick_threshold(pos: list[float], neg: list[float]) -> tuple[float, float, float]:
    """The threshold maximising ``min(share of pos >= t, share of neg < t)``.

    Args:
        pos: scores of texts that should be accepted.
        neg: scores of texts that should be refused.

    Returns:
        ``(threshold, acceptance, refusal)``; ties go to the middle of the widest gap.

    Raises:
        ValueError: either list is empty.
    """
    if not pos or not neg:
        raise ValueError(f"need scores of both kinds, got {len(pos)} positive and {len(neg)} negative")
    cands = sorted(set(pos) | set(neg) | {1.0001})
    best = None
    for lo, hi in zip([-1.0, *cands], cands):
        t = (lo + hi) / 2 if lo > -1.0 else hi - 1e-4
        acc = sum(s >= t for s in pos) / len(pos)
        ref = sum(s < t for s in neg) / len(neg)
        key = (min(acc, ref), acc + ref, hi - lo)
        if best is None or key > best[0]:
            best = (key, t, acc, ref)
    return round(best[1], 4), best[2], best[3]


def calibrate(tree: KnowledgeTree, spec, split: SplitConfig | None = None,
              resolver: Resolver | None = None) -> dict:
    """Calibrate a threshold for the encoder ``spec`` describes.

    Args:
        tree: the full tree; the calibration resolver sees only its training view.
        spec: :class:`sat.text.encoder.TextEncoderSpec`.
        split: split config (must match the one pretraining used).
        resolver: reuse an existing training-view resolver (its threshold is left unchanged).

    Returns:
        ``{"threshold", "calib_acceptance", "calib_refusal", "n_pos", "n_neg"}``.
    """
    split = split or SplitConfig()
    parts = split_tree(tree, split)
    resolver = resolver or build_resolver(train_view(tree, parts, split.seed), spec, threshold=-1.0)
    old, resolver.threshold = resolver.threshold, -1.0
    try:
        pos = [r.score if r.method == "embedding" else (1.0 if r.concept else -1.0)
               for r in resolver.resolve_many([q.text for q in held_out_queries(tree, parts, "calib", split)])]
        neg = [r.score if r.method == "embedding" else (1.0 if r.concept else -1.0)
               for r in resolver.resolve_many(list(CALIB_NEGATIVES))]
    finally:
        resolver.threshold = old
    t, acc, ref = pick_threshold(pos, neg)
    return {"threshold": t, "calib_acceptance": round(acc, 4), "calib_refusal": round(ref, 4),
            "n_pos": len(pos), "n_neg": len(neg)}
