"""Post-processing of ``sat benchmark real``, chosen on the validation patients (nnU-Net's way).

Each model family gets, per concept, the foreground threshold (from
:data:`sat.infer.postprocess.THRESHOLDS`) and the component rule (every component, the largest
alone, or every component of at least :data:`~sat.infer.postprocess.MAJOR_FRACTION` of the
largest's size) with the highest mean validation Dice; the plain setting (0.5, every component)
is kept unless another beats it by more than :data:`MIN_GAIN`. The universal model's choice is written into its
checkpoint, so ``sat segment`` and ``Segmenter`` deploy exactly what was scored.
"""
from __future__ import annotations

import numpy as np

from sat.eval.metrics import dice
from sat.infer.postprocess import MAJOR_FRACTION, THRESHOLDS, major_components

PLAIN = (0.5, 0.0)  # (threshold, component fraction: 0 every component, 1 the largest alone)
RULES = {0.0: "", 1.0: "+largest", MAJOR_FRACTION: "+major"}  # component fraction -> name suffix
MIN_GAIN = 1e-3  # mean Dice a non-plain setting must add to be chosen


def variants() -> list[tuple[float, float]]:
    """Every (threshold, component fraction) setting compared."""
    return [(t, f) for t in THRESHOLDS for f in RULES]


def key(setting: tuple[float, float]) -> str:
    """``"0.4"``, ``"0.4+largest"`` or ``"0.4+major"``: a setting's name in rows.json."""
    return f"{setting[0]:g}" + RULES[setting[1]]


def apply(prob: np.ndarray, setting: tuple[float, float]) -> np.ndarray:
    """(X, Y, Z) probabilities -> the (X, Y, Z) bool mask of ``setting``."""
    mask = np.asarray(prob) > setting[0]
    return major_components(mask, setting[1]) if setting[1] and mask.any() else mask


def grid_dice(prob: np.ndarray | None, gt: np.ndarray) -> dict[str, float]:
    """Dice of every setting of :func:`variants` for one structure (``None``: nothing predicted)."""
    if prob is None:
        return {key(s): dice(np.zeros_like(gt), gt) for s in variants()}
    return {key(s): dice(apply(prob, s), gt) for s in variants()}


def choose(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per model and concept, the setting with the best mean ``grid`` Dice over the label rows."""
    sums: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in rows:
        if r["style"] == "label" and "grid" in r:
            acc = sums.setdefault((r["model"], r["concept"]), {})
            for k, d in r["grid"].items():
                acc.setdefault(k, []).append(d)
    chosen: dict[str, dict[str, tuple[float, float]]] = {}
    for (model, concept), acc in sorted(sums.items()):
        means = {s: float(np.mean(acc[key(s)])) for s in variants()}
        best = max(variants(), key=lambda s: (means[s], s == PLAIN))
        chosen.setdefault(model, {})[concept] = best if means[best] > means[PLAIN] + MIN_GAIN else PLAIN
    return chosen


def advice(chosen: dict[str, tuple[float, float]]) -> dict:
    """One model's choice as checkpoint inference advice: ``thresholds`` (only those not 0.5),
    ``largest_component`` and ``major_components`` (concept ids)."""
    return {"thresholds": {c: t for c, (t, _) in sorted(chosen.items()) if t != 0.5},
            "largest_component": sorted(c for c, (_, f) in chosen.items() if f == 1.0),
            "major_components": sorted(c for c, (_, f) in chosen.items() if f == MAJOR_FRACTION)}

