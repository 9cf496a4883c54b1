"""``sat concepts resolve|list|show --checkpoint CKPT``: answers exactly as that checkpoint's ``segment``.

Without ``--checkpoint`` the concepts commands describe the knowledge tree with the raw text
encoder. With it they load the checkpoint's :class:`~sat.infer.segmenter.Segmenter` (its own text
encoder, threshold and trained concepts) and go through the very path ``sat segment`` takes
(:meth:`Segmenter.plan`, :func:`sat.infer.answering.answering`): the concept a prompt resolves to, the
trained concepts whose union is its mask, or the refusal ``sat segment`` would print.
"""
from __future__ import annotations

import json
from dataclasses import asdict

from sat.errors import InputError


def _segmenter(path: str):
    from pathlib import Path

    from sat.infer.segmenter import Segmenter

    if not Path(path).expanduser().is_file():
        raise InputError(f"checkpoint not found: {path}")
    return Segmenter.from_checkpoint(Path(path).expanduser(), device="cpu", threads=None)


def plan_row(plan) -> dict:
    """One prompt's answer as ``sat segment`` would give it (JSON-serialisable)."""
    r = plan.resolution
    return {"text": plan.prompt, "concept": r.concept, "name": r.name, "score": float(r.score),
            "method": r.method, "modality": r.modality, "laterality": r.laterality,
            "answerable": bool(plan.concepts), "used_concepts": list(plan.concepts),
            "reason": plan.refused, "suggestions": plan.suggestions}


def resolve(args, items: list[tuple[str, str | None]]) -> int:
    """Print each prompt's plan; ``items``: ``(text, error)`` as read by the concepts CLI."""
    seg = _segmenter(args.checkpoint)
    good = [t for t, err in items if err is None]
    plans = iter(seg.plan(good)) if good else iter(())
    for text, err in items:
        row = plan_row(next(plans)) if err is None else {
            "text": text, "concept": None, "name": None, "score": 0.0, "method": "refused", "modality": None,
            "laterality": None, "answerable": False, "used_concepts": [], "reason": err, "suggestions": []}
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        elif row["answerable"]:
            via = "" if row["used_concepts"] == [row["concept"]] else f" = union of {', '.join(row['used_concepts'])}"
            print(f"{text!r} -> {row['concept']} ({row['name']}){via} score {row['score']:.3f} via {row['method']}")
        else:
            sug = ", ".join(s["name"] for s in row["suggestions"]) or "none"
            print(f"refused: {row['reason']}; suggestions: {sug}")
    return 0


def list_concepts(args) -> int:
    """Every concept the checkpoint can segment, with the trained concepts that answer it."""
    from sat.infer.answering import answerable

    seg = _segmenter(args.checkpoint)
    for cid, via in answerable(seg.tree, seg.trained).items():
        c = seg.tree.get(cid)
        if (args.region and c.region != args.region) or (args.kind and c.kind != args.kind):
            continue
        row = {"id": c.id, "name": c.name, "region": c.region, "kind": c.kind, "trained": cid in seg.trained,
               "via": via}
        print(json.dumps(row) if args.json else
              f"{c.id:<40} {c.name}" + ("" if row["trained"] else f"  (union of {', '.join(via)})"))
    return 0


def show(args, tree) -> int:
    """The concept with its relations, and whether (and how) the checkpoint segments it."""
    from sat.infer.answering import answering

    seg = _segmenter(args.checkpoint)
    c = tree.get(args.id)
    via = answering(seg.tree, seg.trained, c.id)
    info = {**asdict(c), "parents": tree.parents(c.id), "children": tree.children(c.id),
            "ancestors": tree.ancestors(c.id), "segmentable": bool(via), "trained": c.id in seg.trained,
            "via": via}
    from sat.infer.concepts_cli import print_info

    print_info(info, args.json)
    return 0
