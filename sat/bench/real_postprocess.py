"""Post-processing of ``sat benchmark real``, chosen on the validation patients (nnU-Net's way).

Each model family gets, per concept, the foreground threshold (from
:data:`sat.infer.postprocess.THRESHOLDS`) and the component rule (every component, the largest
alone, or every component of at least :data:`~sat.infer.postprocess.MAJOR_FRACTION` of the
largest's size; for a concept without a side, each of them also after dropping the pieces away from
the body's mid-sagittal plane, :mod:`sat.infer.midline`) with the highest mean validation Dice; the plain setting (0.5, every component)
is kept unless another beats it by more than :data:`MIN_GAIN`. The universal model's choice is written into its
checkpoint, so ``sat segment`` and ``Segmenter`` deploy exactly what was scored.
"""
from __future__ import annotations

import numpy as np

from sat.eval.metrics import dice
from sat.infer.midline import Midline
from sat.infer.postprocess import MAJOR_FRACTION, THRESHOLDS, major_components

# (threshold, component fraction: 0 every component, 1 the largest alone, midline rule first)
Setting = tuple[float, float, bool]
PLAIN: Setting = (0.5, 0.0, False)
RULES = {0.0: "", 1.0: "+largest", MAJOR_FRACTION: "+major"}  # component fraction -> name suffix
MIN_GAIN = 1e-3  # mean Dice a non-plain setting must add to be chosen


def variants(midline: bool = True) -> list[Setting]:
    """Every setting compared (``midline``: with those that apply the midline rule)."""
    return [(t, f, m) for m in ((False, True) if midline else (False,)) for t in THRESHOLDS for f in RULES]


def key(setting: Setting) -> str:
    """``"0.4"``, ``"0.4+largest"``, ``"0.4+major"``, and those with ``+midline``: a setting's name in rows.json."""
    return f"{setting[0]:g}" + RULES[setting[1]] + ("+midline" if setting[2] else "")


def apply(prob: np.ndarray, setting: Setting, midline: Midline | None = None,
          affine: np.ndarray | None = None) -> np.ndarray:
    """(X, Y, Z) probabilities -> the (X, Y, Z) bool mask of ``setting`` (``midline`` and the
    grid's ``affine`` for a setting with the midline rule)."""
    mask = np.asarray(prob) > setting[0]
    if setting[2] and midline is None:
        raise ValueError(f"setting {key(setting)!r} needs the body's midline")
    if not mask.any() or not (setting[1] or setting[2]):
        return mask
    return major_components(mask, setting[1], midline=midline if setting[2] else None, affine=affine)


def grid_dice(prob: np.ndarray | None, gt: np.ndarray, midline: Midline | None = None,
              affine: np.ndarray | None = None) -> dict[str, float]:
    """Dice of every setting of :func:`variants` for one structure (``None``: nothing predicted);
    the midline settings only when ``midline`` (with the grid's ``affine``) is given."""
    settings = variants(midline is not None)
    if prob is None:
        return {key(s): dice(np.zeros_like(gt), gt) for s in settings}
    return {key(s): dice(apply(prob, s, midline, affine), gt) for s in settings}


def choose(rows: list[dict]) -> dict[str, dict[str, Setting]]:
    """Per model and concept, the setting with the best mean ``grid`` Dice over the label rows
    (among the settings every row of that concept was scored with)."""
    sums: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in rows:
        if r["style"] == "label" and "grid" in r:
            acc = sums.setdefault((r["model"], r["concept"]), {})
            for k, d in r["grid"].items():
                acc.setdefault(k, []).append(d)
    chosen: dict[str, dict[str, Setting]] = {}
    for (model, concept), acc in sorted(sums.items()):
        n = max(len(v) for v in acc.values())
        scored = [s for s in variants() if len(acc.get(key(s), ())) == n]
        means = {s: float(np.mean(acc[key(s)])) for s in scored}
        best = max(scored, key=lambda s: (means[s], s == PLAIN))
        chosen.setdefault(model, {})[concept] = best if means[best] > means[PLAIN] + MIN_GAIN else PLAIN
    return chosen


def advice(chosen: dict[str, Setting]) -> dict:
    """One model's choice as checkpoint inference advice: ``thresholds`` (only those not 0.5),
    ``largest_component``, ``major_components`` and ``midline_components`` (concept ids)."""
    return {"thresholds": {c: t for c, (t, _, _) in sorted(chosen.items()) if t != 0.5},
            "largest_component": sorted(c for c, (_, f, _) in chosen.items() if f == 1.0),
            "major_components": sorted(c for c, (_, f, _) in chosen.items() if f == MAJOR_FRACTION),
            "midline_components": sorted(c for c, (_, _, m) in chosen.items() if m)}

