"""Scoring of ``sat benchmark real`` on the validation patients.

* ``label`` rows: every annotated structure of every validation case, for the universal model
  (prompted by the concept's canonical name) and for its dataset's specialist;
* ``synonym`` / ``paraphrase`` rows: the universal model prompted by each of the tree's synonyms
  of the concept and by the profile's paraphrases;
* laterality: the mask asked for one side scored against the *other* side's reference.

Prompts come from the knowledge tree and the profile, never from the masks.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sat.bench.real_cases import score3, validation_cases
from sat.eval.metrics import dice


def _plain(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text).strip().lower()


def prompt_styles(concept, paraphrases: dict[str, tuple[str, ...]], max_synonyms: int = 4) -> dict[str, list[str]]:
    """Style -> prompts for one concept: its name, synonyms that differ from it by more than case,
    spacing or underscores (dataset label spellings such as ``Parotid_L`` are kept: users type them),
    and the profile's paraphrases (``{name}`` is the canonical name; ``*`` applies to every concept).
    """
    seen = {_plain(concept.name), _plain(concept.id)}
    synonyms = []
    for s in concept.synonyms:
        if _plain(s) not in seen:
            seen.add(_plain(s))
            synonyms.append(s)
    para = [p.format(name=concept.name) for p in (*paraphrases.get(concept.id, ()), *paraphrases.get("*", ()))]
    return {"canonical": [concept.name], "synonym": synonyms[:max_synonyms], "paraphrase": list(dict.fromkeys(para))}


def _universal_rows(seg, case, paraphrases) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Rows of one case for every prompt style; also the canonical masks by concept id."""
    concepts = [seg.tree.get(c) for c in case.concepts]
    styles = {c.id: prompt_styles(c, paraphrases) for c in concepts}
    prompts = list(dict.fromkeys(p for st in styles.values() for ps in st.values() for p in ps))
    result = seg.segment(case.volume, prompts, modality=case.modality, largest_component=False)
    by_prompt = {s.prompt: s for s in result.structures}
    names = [c.name for c in concepts]  # the same cached image features, largest component kept
    largest = {s.prompt: s.mask for s in seg.segment(case.volume, names, modality=case.modality,
                                                     largest_component=True).structures}
    rows, masks = [], {}
    for k, c in enumerate(concepts):
        for style, ps in styles[c.id].items():
            for p in ps:
                s = by_prompt.get(p)
                mask = s.mask if s is not None else None
                metrics = score3(mask, case.masks[k], case.volume) if style == "canonical" else \
                    {"dice": dice(mask if mask is not None else np.zeros_like(case.masks[k]), case.masks[k])}
                if style == "canonical":
                    metrics["largest"] = score3(largest.get(p), case.masks[k], case.volume)
                rows.append({"model": "universal", "dataset": case.dataset, "case": case.case_id, "concept": c.id,
                             "style": "label" if style == "canonical" else style, "prompt": p,
                             "resolved": s.concept if s is not None else None,
                             "answered": list(s.used_concepts) if s is not None else [], **metrics})
                if style == "canonical" and mask is not None:
                    masks[c.id] = mask
    seg.clear_cache()
    return rows, masks


def laterality_rows(tree, case, masks: dict[str, np.ndarray]) -> list[dict]:
    """The canonical mask of each lateral concept against its mirror's reference (both annotated)."""
    rows = []
    for k, cid in enumerate(case.concepts):
        mirror = tree.get(cid).mirror
        if not mirror or mirror not in case.concepts or cid not in masks:
            continue
        other = case.masks[case.concepts.index(mirror)]
        rows.append({"dataset": case.dataset, "case": case.case_id, "concept": cid, "against": mirror,
                     "dice_own": dice(masks[cid], case.masks[k]), "dice_mirror": dice(masks[cid], other)})
    return rows


def evaluate_all(profile, checkpoint: Path, specialists: dict, work: Path) -> tuple[list[dict], dict]:
    """Every row of the benchmark, plus the laterality rows and the per-case means used for figures."""
    from sat.bench.real_specialist import predict
    from sat.infer.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(checkpoint, device="cpu", threads=profile.threads)
    # the specialists get the universal model's test-time mirroring whenever it has it
    mirrors = {c.id: c.mirror for c in seg.tree.concepts.values() if c.mirror}
    rows, lateral = [], []
    for name, ds in profile.datasets.items():
        for case in validation_cases(ds.recipe, _root(ds.root), profile.max_cases):
            urows, masks = _universal_rows(seg, case, profile.paraphrases)
            rows += urows
            lateral += laterality_rows(seg.tree, case, masks)
            spec = specialists.get(name)
            if spec is not None:
                pred = predict(spec, case.volume, case.modality, case.concepts, mirrors=mirrors if seg.tta else None)
                rows += [{"model": "specialist", "dataset": case.dataset, "case": case.case_id, "concept": cid,
                          "style": "label", "prompt": None, "resolved": cid if cid in pred["raw"] else None,
                          **score3(pred["raw"].get(cid), case.masks[k], case.volume),
                          "largest": score3(pred["largest"].get(cid), case.masks[k], case.volume)}
                         for k, cid in enumerate(case.concepts)]
    return rows, {"laterality": lateral}


def _root(root: str) -> Path:
    from sat.bench.config import resolve_path

    return resolve_path(root)


def choose_largest_component(rows: list[dict]) -> dict[str, list[str]]:
    """Per model, the concepts whose mean validation Dice rises when only the largest connected
    component is kept (nnU-Net's way of choosing post-processing, on the validation split only)."""
    sums: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r["style"] == "label" and "largest" in r:
            acc = sums.setdefault((r["model"], r["concept"]), [0.0, 0.0])
            acc[0] += r["dice"]
            acc[1] += r["largest"]["dice"]
    chosen: dict[str, list[str]] = {}
    for (model, concept), (raw, largest) in sorted(sums.items()):
        if largest > raw:
            chosen.setdefault(model, []).append(concept)
    return chosen


def apply_largest_component(rows: list[dict], chosen: dict[str, list[str]]) -> list[dict]:
    """Label rows scored as deployed: the largest-component metrics where chosen (the plain ones
    stay as ``raw``); prompt-robustness rows compare plain masks and are left alone."""
    out = []
    for r in rows:
        variant = r.get("largest")
        r = {k: v for k, v in r.items() if k != "largest"}
        if variant is not None:
            raw = {k: r[k] for k in variant}
            if r["concept"] in chosen.get(r["model"], ()):
                r.update(variant)
            r["raw"] = raw
        out.append(r)
    return out
