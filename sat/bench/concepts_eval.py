"""``sat concepts eval``: held-out retrieval, laterality and refusal figures for text encoders.

For each encoder (raw MiniLM, and the knowledge-pretrained one when given) the resolver is built
over the tree's *training view* (held-out synonyms removed from its index), its threshold is
calibrated on the ``calib`` split, and the ``eval`` split is measured two ways: the embedding path
alone (nearest concept of the whole query text) and the full resolver (parsing, lexical match,
embedding, threshold, laterality). Non-anatomical refusal uses :data:`EVAL_NEGATIVES`.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch

from sat.knowledge.consistency import measure
from sat.knowledge.tree import KnowledgeTree
from sat.text.calibrate import accepted, calibrate
from sat.text.negatives import EVAL_NEGATIVES
from sat.text.queries import CATEGORIES, held_out_queries
from sat.text.resolver_factory import build_resolver
from sat.text.sidecar import read_sidecar
from sat.text.splits import SplitConfig, split_tree, train_view

_OPPOSITE = {"left": "right", "right": "left"}


def _mean(xs) -> float:
    xs = list(xs)
    return round(sum(xs) / len(xs), 4) if xs else float("nan")


def evaluate_encoder(tree: KnowledgeTree, spec, label: str, split: SplitConfig | None = None,
                     phrasing_file: str | Path | None = None, part: str = "eval") -> dict:
    """All figures for one encoder.

    Args:
        tree: the full knowledge tree.
        spec: :class:`sat.text.encoder.TextEncoderSpec` of the encoder.
        label: row name in the report.
        split: the held-out split (must match the one pretraining used).
        phrasing_file: a phrasing set (:mod:`sat.knowledge.consistency`) to measure with the
            full tree's resolver, or ``None``.
        part: the held-out part scored: ``"eval"``, or ``"calib"`` (the threshold's own part: a
            second check of top-1 for rules written while reading the eval part's misses).

    Returns:
        ``{"label", "spec", "threshold", "calibration", "metrics", "per_category", "misses",
        "phrasings", "seconds"}``.
    """
    if part not in ("eval", "calib"):
        raise ValueError(f"part must be 'eval' or 'calib', got {part!r}")
    start = time.perf_counter()
    split = split or SplitConfig()
    parts = split_tree(tree, split)
    resolver = build_resolver(train_view(tree, parts, split.seed), spec, threshold=-1.0)
    cal = calibrate(tree, spec, split, resolver)
    t = cal["threshold"]
    resolver.threshold = t  # scored as deployed: agreement and the unsided stage read it
    queries = held_out_queries(tree, parts, part, split)
    texts = [q.text for q in queries]
    index = {cid: i for i, cid in enumerate(tree.concepts)}
    gold = torch.tensor([index[q.gold] for q in queries])
    top = resolver.concept_scores(resolver.embed(texts)).topk(5, dim=1).indices  # (Q, 5)
    concepts = list(tree.concepts)
    emb_top1 = (top[:, 0] == gold).tolist()
    emb_top5 = (top == gold[:, None]).any(1).tolist()
    emb_pred = [concepts[i] for i in top[:, 0].tolist()]
    res = resolver.resolve_many(texts)
    ok = [accepted(r, t) for r in res]
    full_pred = [r.concept if a else None for r, a in zip(res, ok)]
    thesaurus, resolver.thesaurus = resolver.thesaurus, None  # the same resolver without it
    plain_pred = [r.concept if accepted(r, t) else None for r in resolver.resolve_many(texts)]
    resolver.thesaurus = thesaurus
    neg_ok = [accepted(r, t) for r in resolver.resolve_many(list(EVAL_NEGATIVES))]

    def side(cid):
        return tree.get(cid).laterality if cid else None

    lateral = [i for i, q in enumerate(queries) if side(q.gold) in _OPPOSITE]
    metrics = {
        "n_queries": len(queries), "n_lateral": len(lateral), "n_negatives": len(EVAL_NEGATIVES),
        "emb_top1": _mean(emb_top1), "emb_top5": _mean(emb_top5),
        "resolver_top1": _mean(p == q.gold for p, q in zip(full_pred, queries)),
        "resolver_top1_no_thesaurus": _mean(p == q.gold for p, q in zip(plain_pred, queries)),
        "emb_lr_confusion": _mean(side(emb_pred[i]) == _OPPOSITE[side(queries[i].gold)] for i in lateral),
        "resolver_lr_confusion": _mean(side(full_pred[i]) == _OPPOSITE[side(queries[i].gold)]
                                       for i in lateral),
        "anatomy_acceptance": _mean(ok), "non_anatomy_refusal": _mean(not a for a in neg_ok),
    }
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(queries):
        by_cat[q.category].append(i)
    per_category = {c: {"n": len(ix), "emb_top1": _mean(emb_top1[i] for i in ix),
                        "resolver_top1": _mean(full_pred[i] == queries[i].gold for i in ix),
                        "acceptance": _mean(ok[i] for i in ix)}
                    for c in CATEGORIES if (ix := by_cat.get(c))}
    misses = [{"text": q.text, "gold": q.gold, "got": full_pred[i]} for i, q in enumerate(queries)
              if full_pred[i] != q.gold][:12]
    phrasings = None
    if phrasing_file:  # the product's resolver: the full tree's index at the calibrated threshold
        phrasings = measure(build_resolver(tree, spec, threshold=t), phrasing_file)
        metrics["phrasing_consistency"] = phrasings["consistency"]
    return {"label": label, "part": part, "spec": asdict(spec), "threshold": t, "calibration": cal,
            "metrics": metrics, "per_category": per_category, "misses": misses, "phrasings": phrasings,
            "seconds": round(time.perf_counter() - start, 1)}


def render_markdown(reports: list[dict], tree: KnowledgeTree, split: SplitConfig, command: str) -> str:
    """The Markdown report: headline table, per-category table, a few misses per encoder."""
    m0 = reports[0]["metrics"]
    lines = [
        "# Concept resolution: held-out evaluation", "",
        f"Tree: {len(tree)} concepts (hash `{tree.hash}`). Split seed {split.seed}, "
        f"{reports[0].get('part', 'eval')} part: "
        f"{m0['n_queries']} held-out anatomical queries ({m0['n_lateral']} lateral), "
        f"{m0['n_negatives']} non-anatomical texts. Pretraining never sees the eval or calib split; "
        "the resolver index excludes held-out synonyms. Thresholds are calibrated on the calib split.",
        "", "The full resolver parses the prompt (modality, sequence, contrast, phase, scan references, task "
        "words, report phrasing and region settings become qualifiers), then runs its lexical stages in order "
        "(terms: exact, order-free and compact matches of the prompt and its anatomy against every synonym field; "
        "english: Latin, structure-name abbreviations, spinal level codes and finger and toe names in "
        "English; organ: organ adjectives as nouns; core: a "
        "trailing generic noun dropped; kind: a kind word (muscle, bone, gland) dropped when the rest names a "
        "structure of that kind; noun: a one-word name completed by the one head noun that makes it a term; "
        "locator: the one 'of ...' phrase a single concept's term adds; initials, also beside a side word; "
        "sided: a side word with a term of the bilateral concept; "
        "thesaurus: WordNet 3.0 body and condition synonyms and direction words that match a term; latin: "
        "Latin endings read into words of the tree's terms; spelling: one-letter slips corrected into the "
        "tree's words, never an English word), then the "
        "nearest term embedding of the anatomy, its English reading and its core (and of a sentence as a "
        "whole), accepted at the threshold; a prompt that names no side gets the concept holding both "
        "sides when that concept reaches the threshold; laterality in the text is enforced. Scored at the "
        "calibrated threshold, as deployed. The embedding columns score the whole "
        "query text against the index with no lexical stage. The thesaurus is outside knowledge "
        "(WordNet) and is not filtered against the held-out split, so the column without it is the "
        "resolver on the tree and the encoder alone.",
        "", f"Reproduce: `{command}`", "",
        "| encoder | top-1 (emb) | top-5 (emb) | top-1 (resolver) | top-1 (resolver, no thesaurus) "
        "| L/R confusion (emb) | L/R confusion (resolver) | non-anatomy refused | anatomy accepted "
        "| threshold |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        m = r["metrics"]
        lines.append(f"| {r['label']} | {m['emb_top1']:.3f} | {m['emb_top5']:.3f} | "
                     f"{m['resolver_top1']:.3f} | {m['resolver_top1_no_thesaurus']:.3f} | "
                     f"{m['emb_lr_confusion']:.2%} | "
                     f"{m['resolver_lr_confusion']:.2%} | {m['non_anatomy_refusal']:.3f} | "
                     f"{m['anatomy_acceptance']:.3f} | {r['threshold']:.3f} |")
    if reports[0].get("phrasings"):
        ph = reports[0]["phrasings"]
        lines += ["", f"Phrasing consistency (`sat concepts consistency`; `{Path(ph['file']).name}`: "
                  f"{ph['phrasings']} challenge-style phrasings of {ph['classes']} classes, written before tuning; "
                  "full tree index, calibrated threshold). Consistency: share of phrasings resolving to their "
                  "class's most frequent concept (a refusal never agrees); accuracy: share resolving to the "
                  "class's own concept.", "",
                  "| encoder | consistency | classes all consistent | accuracy | refused |", "|---|---|---|---|---|"]
        for r in reports:
            x = r["phrasings"]
            lines.append(f"| {r['label']} | {x['consistency']:.4f} | {x['classes_consistent']:.4f} | "
                         f"{x['accuracy']:.4f} | {x['refused']:.4f} |")
    lines += ["", _size_table(tree), "", "Encoders:", ""]
    for r in reports:
        weights = r["spec"].get("finetuned")
        meta = read_sidecar(weights)
        layers = f", top {meta['train_layers']} transformer layers trained" if meta.get("train_layers") else ""
        lines.append(f"- {r['label']}: " + (f"`{weights}`{layers}" if weights else "MiniLM-L6 as shipped"))
    lines += ["", "Top-1 by query kind (embedding path / full resolver; acceptance):", "",
              "| encoder | " + " | ".join(f"{c} (n={reports[0]['per_category'][c]['n']})"
                                          for c in reports[0]["per_category"]) + " |",
              "|---|" + "---|" * len(reports[0]["per_category"])]
    for r in reports:
        cells = [f"{v['emb_top1']:.3f} / {v['resolver_top1']:.3f}; {v['acceptance']:.2f}"
                 for v in r["per_category"].values()]
        lines.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    for r in reports:
        lines += ["", f"Some misses of the full resolver, {r['label']}:", ""]
        lines += [f"- `{x['text'][:80]}` -> {x['got'] or 'refused'} (gold {x['gold']})" for x in r["misses"]]
    return "\n".join(lines) + "\n"


def _size_table(tree: KnowledgeTree) -> str:
    """Concepts by region (rows) and kind (columns), with UBERON / SNOMED CT coverage."""
    from collections import Counter

    from sat.knowledge.tree import KINDS, REGIONS

    cells = Counter((c.region, c.kind) for c in tree.concepts.values())
    kinds = [k for k in KINDS if any(cells[(r, k)] for r in REGIONS)]
    rows = ["Tree size by region and kind "
            f"({sum(bool(c.uberon) for c in tree.concepts.values())} concepts with a UBERON id, "
            f"{sum(bool(c.snomed) for c in tree.concepts.values())} with a SNOMED CT code, "
            f"{sum(len(c.terms) for c in tree.concepts.values())} terms):", "",
            "| region | " + " | ".join(kinds) + " | all |", "|---|" + "---|" * (len(kinds) + 1)]
    for r in REGIONS:
        rows.append(f"| {r} | " + " | ".join(str(cells[(r, k)]) for k in kinds)
                    + f" | {sum(cells[(r, k)] for k in kinds)} |")
    rows.append("| all | " + " | ".join(str(sum(cells[(r, k)] for r in REGIONS)) for k in kinds)
                + f" | {len(tree)} |")
    return "\n".join(rows)


def run_eval(tree: KnowledgeTree, specs: list[tuple[str, object]], out: str | Path | None,
             split: SplitConfig | None = None, command: str = "sat concepts eval",
             phrasing_file: str | Path | None = None, part: str = "eval") -> list[dict]:
    """Evaluate each ``(label, spec)`` on the held-out ``part`` and write the Markdown report to
    ``out`` (if given)."""
    split = split or SplitConfig()
    reports = [evaluate_encoder(tree, spec, label, split, phrasing_file, part) for label, spec in specs]
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(render_markdown(reports, tree, split, command), encoding="utf-8")
    return reports
