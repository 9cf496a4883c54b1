"""Tool bodies. Each takes the dispatcher and a validated input model and returns the output data
(optionally with image paths for VLM clients). Paths are checked by the policy before any use;
images are loaded before the model is taken (a slow or refused file never holds the model), and
nothing is written by a call that was abandoned or failed (its output folder is removed)."""
from __future__ import annotations

import contextlib
import shutil

from sat.agent.measure import compare_masks, measure_mask, to_stats
from sat.agent.safety import ensure_live
from sat.agent.models import (CompareInput, ConceptInfo, GroundReportInput, ListConceptsInput, MeasureInput,
                              RefineInput, ResolvePromptInput, SegmentInput, Suggestion)
from sat.errors import InputError

MAX_CONCEPTS = 200
MAX_IMAGES = 6


def _suggestions(raw: list[dict]) -> list[Suggestion]:
    return [Suggestion(concept=s["concept"], name=s["name"], score=s.get("score")) for s in raw]


def _answering(tree, trained: set[str], cid: str) -> list[str]:
    """Trained concepts that answer ``cid``: the same rule as ``segment`` (:func:`sat.infer.answering.answering`)."""
    from sat.infer.answering import answering

    return answering(tree, trained, cid)


def list_concepts(d, a: ListConceptsInput) -> dict:
    seg = d.segmenter
    tree, trained = seg.tree, seg.trained
    if a.query:
        d.policy.check_text(a.query, "query")
        pool = tree.search(a.query, limit=len(tree), region=a.region)
    else:
        pool = [tree.get(c) for c in sorted(trained) if a.region in (None, tree.get(c).region)]
    rows = []
    for c in pool:
        via = _answering(tree, trained, c.id)
        if via:
            rows.append(ConceptInfo(id=c.id, name=c.name, synonyms=list(c.synonyms), region=c.region, kind=c.kind,
                                    laterality=c.laterality, trained=c.id in trained, via=via))
    return {"concepts": rows[:MAX_CONCEPTS], "total": len(rows), "truncated": len(rows) > MAX_CONCEPTS}


def resolve_prompt(d, a: ResolvePromptInput) -> dict:
    with d.model() as seg:
        plan = seg.plan([a.text])[0]
    r = plan.resolution
    return {"text": a.text, "concept": r.concept, "name": r.name, "score": float(r.score), "method": r.method,
            "laterality": r.laterality, "modality": r.modality, "answerable": bool(plan.concepts),
            "used_concepts": plan.concepts, "reason": plan.refused,
            "suggestions": _suggestions(plan.suggestions)}


def _refusal_text(refused: list[dict]) -> str:
    parts = []
    for r in refused:
        names = ", ".join(s["name"] for s in r["suggestions"][:5]) or "none"
        parts.append(f"{r['prompt']!r}: {r['reason']} (suggestions: {names})")
    return "; ".join(parts)


def segment(d, a: SegmentInput) -> tuple[dict, list[str]]:
    if len(a.prompts) > d.policy.max_prompts:
        raise InputError(f"{len(a.prompts)} prompts; at most {d.policy.max_prompts} per call")
    path = d.policy.resolve(a.image_path, what="image_path")
    volume = d.volume(path)  # outside the model lock
    with d.model() as seg:
        result = seg.segment(volume, a.prompts, a.modality)
    if not result.structures:
        raise InputError(f"no prompt could be segmented: {_refusal_text(result.refused)}")
    return _segment_reply(d, "segment", path, result)


def refine(d, a: RefineInput) -> tuple[dict, list[str]]:
    if a.prompt:
        d.policy.check_text(a.prompt, "prompt")
    path = d.policy.resolve(a.image_path, what="image_path")
    volume = d.volume(path)  # the same object as an earlier segment call: its features are reused
    with d.model() as seg:
        result = seg.refine(volume, a.prompt, [(p.x, p.y, p.z, p.positive) for p in a.points],
                            (tuple(a.box[:3]), tuple(a.box[3:])) if a.box else None, modality=a.modality)
    return _segment_reply(d, "refine", path, result)


def _segment_reply(d, tool: str, path, result) -> tuple[dict, list[str]]:
    """Save a result in a fresh call folder and describe it (the segment and refine output)."""
    ensure_live(tool)
    with _output_dir(d, tool) as out:
        summary = result.save(out, preview=True)
    structures = [{"prompt": s.prompt, "concept": s.concept, "name": s.name, "used_concepts": s.used_concepts,
                   "laterality": s.laterality, "mask_path": summary["structures"][s.prompt]["mask"],
                   "stats": to_stats(s.stats)} for s in result.structures]
    preview = out / "preview.png"
    data = {"image_path": str(path), "modality": result.modality, "output_dir": str(out),
            "preview_path": str(preview) if preview.is_file() else None, "structures": structures,
            "refused": [{"prompt": r["prompt"], "reason": r["reason"], "suggestions": _suggestions(r["suggestions"])}
                        for r in result.refused]}
    return data, [str(preview)] if preview.is_file() else []


@contextlib.contextmanager
def _output_dir(d, tool: str):
    """A fresh per-call folder that is removed again if the body fails or the call was abandoned."""
    out = d.policy.call_dir(tool, getattr(d, "call_tag", None))
    try:
        yield out
        ensure_live(tool)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _load(d, raw: str, what: str):
    from sat.io.volume import load_volume

    path = d.policy.resolve(raw, what=what, kind="file")
    vol = load_volume(path, limits=d.policy.limits())  # voxel limit checked on the header, before decoding
    return path, vol


def measure(d, a: MeasureInput) -> dict:
    mask_path, mask = _load(d, a.mask_path, "mask_path")
    image_path, image = _load(d, a.image_path, "image_path") if a.image_path else (None, None)
    return {"mask_path": str(mask_path), "image_path": str(image_path) if image_path else None,
            "spacing_mm": [float(x) for x in mask.spacing], "stats": measure_mask(mask, image)}


def compare(d, a: CompareInput) -> dict:
    pa, va = _load(d, a.mask_a, "mask_a")
    pb, vb = _load(d, a.mask_b, "mask_b")
    return {"mask_a": str(pa), "mask_b": str(pb), **compare_masks(va, vb)}


def ground_report(d, a: GroundReportInput) -> tuple[dict, list[str]]:
    from sat.agent.grounding import ground

    d.policy.check_text(a.report_text, "report_text")
    path = d.policy.resolve(a.image_path, what="image_path")
    volume = d.volume(path)  # outside the model lock, before any folder is made
    with _output_dir(d, "ground_report") as out, d.model() as seg:
        result = ground(a.report_text, volume, segmenter=seg, outdir=out)
    images = [k.png_path for f in result.findings for k in f.key_slices if k.plane == "axial" and k.png_path]
    data = result.model_dump()
    data["image_path"] = str(path)
    return data, list(dict.fromkeys(images))[:MAX_IMAGES]
