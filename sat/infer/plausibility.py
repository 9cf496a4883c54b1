"""Plausibility checks on every mask: is this answer like anything the model was trained on?

A model asked for "liver" on a scan unlike its training data (a phantom-trained model on a real CT,
an abdominal model on a head-and-neck scan) still returns a confident mask. Four checks flag such
answers without ground truth:

* ``volume``: the mask's volume (ml, input grid) is below half or above twice the range the
  training data showed for that concept (``meta["extra"]["concept_stats"]``, see
  :mod:`sat.data.concept_stats`);
* ``intensity``: the mean *normalised* intensity inside the mask (model grid, the network's input
  units) lies more than :data:`INTENSITY_MARGIN` outside the training range for that modality;
* ``outside_body``: more than half of the mask lies outside the body (the image's foreground,
  filled slice by slice so lungs and bowel gas count as inside);
* ``wrong_side``: a left or right structure whose centre lies on the other side of the body's
  centre (RAS world x: +x is the patient's right) by more than :data:`SIDE_MARGIN_MM`;
* ``hounsfield`` (CT only): the mask's mean Hounsfield units on the original image, and its air
  fraction, against what the concept's tissue can be (:mod:`sat.infer.hounsfield`).

Checks whose reference is missing (an older checkpoint without ``concept_stats``) are skipped.
Flags go to ``statistics.json`` (``plausibility``), the preview legend and one warning line each;
``sat segment --strict`` turns them into exit code 3.
"""
from __future__ import annotations

import json

import numpy as np

from sat.infer.hounsfield import check_hu

VOLUME_FACTOR = 2.0  # flagged below lo / factor or above hi * factor
INTENSITY_MARGIN = 0.5  # normalised units (image standard deviations) beyond the training range
OUTSIDE_BODY_FRACTION = 0.5
SIDE_MARGIN_MM = 5.0


def read_concept_stats(extra: dict) -> dict:
    """The training ranges in a checkpoint's ``extra`` figures (``{}`` for a checkpoint without them)."""
    stats = (extra or {}).get("concept_stats")
    if isinstance(stats, str):
        try:
            stats = json.loads(stats)
        except ValueError:
            return {}
    return stats if isinstance(stats, dict) else {}


def _between(fg: np.ndarray, axis: int) -> np.ndarray:
    """Voxels with foreground on both sides along ``axis`` (or foreground themselves)."""
    before = np.maximum.accumulate(fg, axis=axis)
    after = np.flip(np.maximum.accumulate(np.flip(fg, axis), axis=axis), axis)
    return before & after


def body_mask(image: np.ndarray) -> np.ndarray:
    """(X, Y, Z) bool body of a normalised RAS-grid image (X, Y, Z): voxels above a low threshold,
    plus, in every axial slice, voxels enclosed by them along both the X and Y lines through them
    (lungs and bowel gas count as inside; air beside the body does not)."""
    lo, hi = np.percentile(image[::2, ::2, ::2], [0.5, 99.0])
    fg = image > lo + 0.1 * (hi - lo)
    return fg | (_between(fg, 0) & _between(fg, 1))


def training_range(stats: dict, concept: str, modality: str) -> tuple[dict | None, list | None]:
    """``(the concept's stats for this modality or None, volume range over all modalities or None)``."""
    per = stats.get(concept) or {}
    own = per.get(modality)
    vols = [v["volume_ml"] for v in per.values() if isinstance(v, dict) and v.get("volume_ml")]
    vol = [min(v[0] for v in vols), max(v[1] for v in vols)] if vols else None
    return own, vol


def check_mask(concept: str, laterality: str, volume_ml: float, mask: np.ndarray, image: np.ndarray,
               body: np.ndarray, affine: np.ndarray, modality: str, stats: dict, *,
               hu: np.ndarray | None = None, tissue: frozenset[str] | None = None) -> dict:
    """Run every check on one structure.

    Args:
        concept: concept id. laterality: the concept's side (``left``, ``right``, ...).
        volume_ml: the mask's volume on the input grid.
        mask: (X, Y, Z) bool on the model grid. image: (X, Y, Z) normalised image, same grid.
        body: :func:`body_mask` of ``image``. affine: (4, 4) of the model grid (RAS mm).
        modality: the modality the image was normalised as. stats: the checkpoint's concept_stats.
        hu: (N,) the original image's values on the mask (input grid), checked when ``modality`` is CT.
        tissue: the concept's tissue classes (:func:`sat.infer.hounsfield.tissue_classes`).

    Returns:
        ``{"ok", "flags": [{"check", "message"}], "intensity_norm_mean", "inside_body_fraction",
        "hu_mean", "air_fraction"}`` (the last two ``None`` unless CT).
    """
    flags: list[dict] = []
    n = int(mask.sum())
    out = {"ok": True, "flags": flags, "intensity_norm_mean": None, "inside_body_fraction": None,
           "hu_mean": None, "air_fraction": None}
    if n == 0 or volume_ml <= 0:
        return out
    own, vol = training_range(stats, concept, modality)
    if vol is not None and not vol[0] / VOLUME_FACTOR <= volume_ml <= vol[1] * VOLUME_FACTOR:
        flags.append({"check": "volume", "message": f"volume {volume_ml:.1f} ml is far outside the "
                      f"{vol[0]:.1f}-{vol[1]:.1f} ml the training data showed"})
    mean = float(image[mask].mean())
    out["intensity_norm_mean"] = round(mean, 4)
    if own and own.get("intensity_norm"):
        lo, hi = own["intensity_norm"]
        if not lo - INTENSITY_MARGIN <= mean <= hi + INTENSITY_MARGIN:
            flags.append({"check": "intensity", "message": f"mean normalised intensity {mean:.2f} is far "
                          f"outside the {lo:.2f} to {hi:.2f} of {concept} in training {modality} scans"})
    if hu is not None and modality == "CT":
        absolute = check_hu(concept, hu, own, tissue)
        out.update(hu_mean=absolute["hu_mean"], air_fraction=absolute["air_fraction"])
        flags += absolute["flags"]
    inside = float((mask & body).sum()) / n
    out["inside_body_fraction"] = round(inside, 4)
    if inside < OUTSIDE_BODY_FRACTION:
        flags.append({"check": "outside_body", "message": f"{1 - inside:.0%} of the mask lies outside the body"})
    if laterality in ("left", "right") and body.any():
        x_of = lambda m: float(affine[0, :3] @ np.argwhere(m).mean(0) + affine[0, 3])  # noqa: E731
        offset = x_of(mask) - x_of(body)  # RAS: +x is the patient's right
        if (offset < -SIDE_MARGIN_MM) if laterality == "right" else (offset > SIDE_MARGIN_MM):
            side = "left" if offset < 0 else "right"
            flags.append({"check": "wrong_side", "message": f"a {laterality} structure whose centre lies "
                          f"{abs(offset):.0f} mm to the patient's {side} of the body's centre"})
    out["ok"] = not flags
    return out


def domain_note(extra: dict) -> str | None:
    """A one-line warning for a model that only ever saw phantoms, from a checkpoint's ``extra``
    figures (``None`` otherwise)."""
    trained_on = (extra or {}).get("trained_on") or {}
    if not trained_on.get("phantom_only"):
        return None
    names = ", ".join(trained_on.get("datasets") or []) or "phantoms"
    return (f"this model was trained only on synthetic phantoms ({names}); on a real scan its masks "
            f"are not meaningful, whatever their confidence")
