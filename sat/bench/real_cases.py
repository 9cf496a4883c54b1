"""The real validation patients, read from their original files, and the scores of one mask.

Every model is scored here, on the input image's own grid (the original file's shape and affine,
e.g. OpenKBP's P, L, I storage), against the structures that case annotates: an uncontoured organ
is not scored, a refused prompt or an unpredicted structure scores as an empty mask.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sat.bench.phantom_cases import NSD_TOLERANCE_VOXELS, HeldOutCase
from sat.eval.metrics import dice, hd95, nsd
from sat.io.volume import Volume


def validation_cases(recipe_name: str, root: str | Path, max_cases: int = 0) -> Iterator[HeldOutCase]:
    """Yield the ``val`` split of a dataset, one case at a time (bounded memory)."""
    from sat.data.adapters import list_cases, read_case
    from sat.data.recipes import load_recipe
    from sat.io.volume import load_volume

    recipe = load_recipe(recipe_name)
    refs = list_cases(recipe, root, split="val")
    for ref in refs[:max_cases] if max_cases > 0 else refs:
        case = read_case(ref, recipe)
        yield HeldOutCase(recipe.name, ref.case_id, recipe.modality, load_volume(ref.images[0]),
                          list(case.concepts), case.masks())


def reference_ml(gt: np.ndarray, volume: Volume) -> float:
    """The reference mask's physical volume in millilitres."""
    return float(np.count_nonzero(gt)) * float(np.prod(volume.spacing)) / 1000.0


def score3(pred: np.ndarray | None, gt: np.ndarray, volume: Volume) -> dict[str, float]:
    """``{"dice", "nsd", "hd95"}`` of ``pred`` (``None`` = nothing predicted) against ``gt``.

    NSD uses the project's tolerance of two voxels of the finest axis; HD95 of a one-sided empty
    pair is the image diagonal (:func:`sat.eval.metrics.hd95`).
    """
    pred = np.zeros_like(gt) if pred is None else pred
    spacing = volume.spacing
    tolerance = NSD_TOLERANCE_VOXELS * float(min(spacing))
    return {"dice": dice(pred, gt), "nsd": nsd(pred, gt, spacing, tolerance), "hd95": hd95(pred, gt, spacing)}
