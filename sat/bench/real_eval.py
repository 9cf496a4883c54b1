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

from sat.bench.real_cases import reference_ml, score3, validation_cases
from sat.bench.real_postprocess import PLAIN, advice, apply, choose, grid_dice, key
from sat.infer.midline import Midline
from sat.infer.postprocess import advised_fractions, advised_midline
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


def _plane(tree, cid: str, plane: Midline) -> Midline | None:
    """The body's midline for a concept without a side (the midline rule is compared for it), else None."""
    return plane if tree.get(cid).laterality == "none" else None


def _universal_rows(seg, case, paraphrases, plane: Midline) -> list[dict]:
    """Rows of one case for every prompt style, plain masks (threshold 0.5, every component);
    canonical rows also carry the Dice of every post-processing setting (``grid``)."""
    concepts = [seg.tree.get(c) for c in case.concepts]
    styles = {c.id: prompt_styles(c, paraphrases) for c in concepts}
    prompts = list(dict.fromkeys(p for st in styles.values() for ps in st.values() for p in ps))
    result = seg.segment(case.volume, prompts, modality=case.modality, probabilities=True)
    by_prompt = {s.prompt: s for s in result.structures}
    rows = []
    for k, c in enumerate(concepts):
        for style, ps in styles[c.id].items():
            for p in ps:
                s = by_prompt.get(p)
                mask = s.mask if s is not None else np.zeros_like(case.masks[k])
                if style == "canonical":
                    metrics = {**score3(mask, case.masks[k], case.volume),
                               "grid": grid_dice(s.prob if s is not None else None, case.masks[k],
                                                 _plane(seg.tree, c.id, plane), case.volume.affine),
                               "ref_ml": reference_ml(case.masks[k], case.volume)}
                else:
                    metrics = {"dice": dice(mask, case.masks[k])}
                rows.append({"model": "universal", "dataset": case.dataset, "case": case.case_id, "concept": c.id,
                             "style": "label" if style == "canonical" else style, "prompt": p,
                             "resolved": s.concept if s is not None else None,
                             "answered": list(s.used_concepts) if s is not None else [], **metrics})
    seg.clear_cache()
    return rows


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
    """Every row of the benchmark, as deployed, plus the laterality rows and the chosen post-processing.

    1. Every validation case with plain masks: prompt robustness, and for each canonical structure
       the Dice of every post-processing setting (:mod:`.real_postprocess`).
    2. Per model family and concept, the setting with the best mean validation Dice.
    3. The label rows rescored as deployed: the universal model through a ``Segmenter`` that applies
       the chosen setting (what its checkpoint will recommend), each specialist from its kept
       probabilities; the plain metrics stay as ``raw``. Laterality uses the deployed masks.
    """
    from sat.bench.real_specialist import predict
    from sat.infer.segmenter import Segmenter

    plain = Segmenter.from_checkpoint(checkpoint, device="cpu", threads=profile.threads, thresholds={},
                                      largest_component=False, midline=False, overlap=profile.overlap)
    # the specialists get the universal model's test-time mirroring whenever it has it
    mirrors = {c.id: c.mirror for c in plain.tree.concepts.values() if c.mirror}
    rows, probs = [], {}  # probs: (dataset, case) -> specialist probabilities on the input grid
    planes: dict[tuple[str, str], Midline] = {}  # (dataset, case) -> the body's midline, found once
    for name, ds in profile.datasets.items():
        for case in validation_cases(ds.recipe, _root(ds.root), profile.max_cases):
            plane = planes[(name, case.case_id)] = Segmenter.midline_of(case.volume)  # as deployed finds it
            rows += _universal_rows(plain, case, profile.paraphrases, plane)
            spec = specialists.get(name)
            if spec is not None:
                pred = predict(spec, case.volume, case.modality, case.concepts, mirrors=mirrors if plain.tta else None,
                               overlap=profile.overlap)
                probs[(name, case.case_id)] = pred
                rows += [{"model": "specialist", "dataset": case.dataset, "case": case.case_id, "concept": cid,
                          "style": "label", "prompt": None, "resolved": cid if cid in pred else None,
                          **score3(apply(pred[cid], PLAIN) if cid in pred else None, case.masks[k], case.volume),
                          "grid": grid_dice(pred.get(cid), case.masks[k], _plane(plain.tree, cid, plane),
                                            case.volume.affine),
                          "ref_ml": reference_ml(case.masks[k], case.volume)}
                         for k, cid in enumerate(case.concepts)]
    chosen = choose(rows)
    uni = advice(chosen.get("universal", {}))
    deployed = Segmenter.from_checkpoint(checkpoint, device="cpu", threads=profile.threads,
                                         thresholds=uni["thresholds"], largest_component=advised_fractions(uni),
                                         midline=sorted(advised_midline(uni)), overlap=profile.overlap)
    scored, lateral = {}, []
    for name, ds in profile.datasets.items():
        for case in validation_cases(ds.recipe, _root(ds.root), profile.max_cases):
            plane = planes.pop((name, case.case_id))
            names = [deployed.tree.get(c).name for c in case.concepts]
            result = deployed.segment(case.volume, names, modality=case.modality)
            masks = {s.concept: s.mask for s in result.structures}
            deployed.clear_cache()
            lateral += laterality_rows(deployed.tree, case, masks)
            pred = probs.pop((name, case.case_id), {})
            for k, cid in enumerate(case.concepts):
                scored[("universal", case.case_id, cid)] = score3(masks.get(cid), case.masks[k], case.volume)
                if name in specialists:
                    setting = chosen.get("specialist", {}).get(cid, PLAIN)
                    scored[("specialist", case.case_id, cid)] = score3(
                        apply(pred[cid], setting, plane, case.volume.affine) if cid in pred else None,
                        case.masks[k], case.volume)
    return _as_deployed(rows, scored, chosen), {"laterality": lateral, "chosen": chosen}


def _as_deployed(rows: list[dict], scored: dict, chosen: dict) -> list[dict]:
    """Label rows with their deployed metrics (the plain ones kept as ``raw``) and setting name."""
    out = []
    for r in rows:
        deployed = scored.get((r["model"], r["case"], r["concept"])) if r["style"] == "label" else None
        if deployed is not None:
            r = {**r, "raw": {k: r[k] for k in deployed}, **deployed,
                 "setting": key(chosen.get(r["model"], {}).get(r["concept"], PLAIN))}
        out.append(r)
    return out


def _root(root: str) -> Path:
    from sat.bench.config import resolve_path

    return resolve_path(root)
