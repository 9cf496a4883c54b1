"""The held-out phantom cases, and Dice / NSD of a predicted mask against one of them.

Every model in the phantom benchmark is scored here (or, for the universal model's canonical and
synonym prompts, by :func:`sat.bench.demo.evaluate`, which uses the same metrics and tolerance), on the
input image's own grid. A prompt that is refused, or a structure a model does not predict, scores
as an empty mask (Dice 0), never skipped.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sat.data.phantoms.layouts import SOURCES
from sat.eval.metrics import dice, nsd
from sat.io.volume import Volume

# NSD tolerance in voxels of the case's finest axis: the rule of sat.bench.demo.evaluate, whose rows the
# benchmark reuses, so every model in a table is scored with the same tolerance
NSD_TOLERANCE_VOXELS = 2.0


@dataclass
class HeldOutCase:
    """One test-split phantom case with its reference masks."""

    dataset: str
    case_id: str
    modality: str
    volume: Volume  # the image as a user would load it
    concepts: list[str]  # annotated concept ids (the recipe's order)
    masks: np.ndarray  # (K, X, Y, Z) bool, row k = concepts[k]


def held_out_cases(phantoms: Path, sources: tuple[str, ...] = SOURCES) -> Iterator[HeldOutCase]:
    """Yield the test split of every phantom source, one case at a time (bounded memory)."""
    from sat.data.adapters import list_cases, load_case
    from sat.data.recipes import load_recipe
    from sat.io.volume import load_volume

    for name in sources:
        recipe = load_recipe(name)
        for ref in list_cases(recipe, Path(phantoms) / name, split="test"):
            case = load_case(ref, recipe)
            yield HeldOutCase(name, ref.case_id, recipe.modality, load_volume(ref.images[0]),
                              list(case["concepts"]), case["masks"])


def score(pred: np.ndarray | None, gt: np.ndarray, volume: Volume) -> dict[str, float]:
    """``{"dice", "nsd"}`` of ``pred`` (``None`` = nothing predicted) against ``gt``, both (X, Y, Z)."""
    pred = np.zeros_like(gt) if pred is None else pred
    tolerance = NSD_TOLERANCE_VOXELS * float(min(volume.spacing))
    return {"dice": dice(pred, gt), "nsd": nsd(pred, gt, volume.spacing, tolerance)}


# (concept, modality) -> [(prompt sent to the model, prompt shown in tables)]
StyleFn = Callable[[object, str], list[tuple[str, str]]]


def evaluate_prompts(segmenter, cases: Iterator[HeldOutCase], styles: Mapping[str, StyleFn], *,
                     qualifier_sets_modality: tuple[str, ...] = ()) -> list[dict]:
    """Segment every case once per prompt style with a :class:`~sat.infer.segmenter.Segmenter`.

    The image features are computed once per case and reused by every style (the segmenter's
    cache). Styles named in ``qualifier_sets_modality`` are segmented without a modality argument,
    so the prompt's own qualifier ("liver on CT") decides it.

    Returns:
        One row per (case, concept, prompt): ``dataset, case, concept, style, prompt, resolved,
        dice, nsd``.
    """
    rows = []
    for case in cases:
        concepts = [segmenter.tree.get(c) for c in case.concepts]
        for style, fn in styles.items():
            pairs = [(c, k, sent, shown) for k, c in enumerate(concepts) for sent, shown in fn(c, case.modality)]
            modality = None if style in qualifier_sets_modality else case.modality
            result = segmenter.segment(case.volume, [p[2] for p in pairs], modality=modality)
            by_prompt = {s.prompt: s for s in result.structures}
            for c, k, sent, shown in pairs:
                s = by_prompt.get(sent)
                rows.append({"dataset": case.dataset, "case": case.case_id, "concept": c.id, "style": style,
                             "prompt": shown, "resolved": s.concept if s else None,
                             **score(s.mask if s else None, case.masks[k], case.volume)})
        segmenter.clear_cache()
    return rows
