"""Post-processing of predicted structures: per-concept foreground thresholds and keeping the
largest connected component (or every component of a sizeable share of it).

A structure that is one connected body (a brainstem, a mandible, a parotid gland) predicted as
several islands has false positives far from it; they cost little Dice but dominate HD95.
Which concepts get the rule is not guessed: ``sat benchmark real`` compares each trained
concept's validation Dice with and without it (as nnU-Net chooses its post-processing) and
records the winners in the checkpoint (``meta["extra"]["inference"]["largest_component"]``, and
``["major_components"]`` for the concepts that keep every component of at least
:data:`MAJOR_FRACTION` of the largest one's size).
The same comparison picks each concept's foreground threshold from a small grid
(``meta["extra"]["inference"]["thresholds"]``; 0.5 where none is recorded): a thin or
under-trained structure whose probabilities stay below 0.5 at its borders gains from a lower one.

The midline rule (:mod:`sat.infer.midline`) first drops the pieces of a median structure that lie
away from the body's mid-sagittal plane; the concepts chosen for it are listed in
``meta["extra"]["inference"]["midline_components"]``.

MONAI's ``get_largest_connected_component_mask`` needs scikit-image, which this project does not
install; :func:`scipy.ndimage.label` gives the same answer with full (26-) connectivity.
"""
from __future__ import annotations

import numpy as np
import torch

from sat.infer.midline import Midline, reaching
from sat.volume.geometry import crop_affine
from sat.volume.preprocess import foreground_box

_FULL = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity, like MONAI's default


MAJOR_FRACTION = 0.3  # "major components": every component at least this share of the largest one


def major_components(mask: np.ndarray, fraction: float = 1.0, keep: np.ndarray | None = None, *,
                     midline: Midline | None = None, affine: np.ndarray | None = None) -> np.ndarray:
    """(x, y, z) bool -> the same mask with only its 26-connected components of at least ``fraction``
    times the largest one's size: 1 keeps the largest alone (ties: lowest label), 0 keeps every one.
    ``keep``: (N, 3) voxel indices whose components stay whatever their size (positive clicks;
    indices outside the mask are ignored). ``midline`` (with ``affine``, the mask's (4, 4)
    voxel-to-RAS matrix): first drop the components that do not reach the body's mid-sagittal
    plane (:func:`sat.infer.midline.reaching`); the sizes are compared among the others.

    A tube the network predicts with a gap (a spinal cord interrupted at one level) falls into two
    large pieces; keeping the largest alone drops the other, while islands of a few voxels far
    away are below any sizeable fraction of the largest piece.
    """
    from scipy import ndimage  # only when a concept asks for it: plain segmentation stays light to start

    check_fraction(fraction)
    if midline is not None and affine is None:
        raise ValueError("major_components: a midline needs the mask's affine")
    mask = mask.astype(bool, copy=False)
    if fraction <= 0.0 and midline is None:
        return mask
    start, stop = foreground_box(mask, 0, (0, 0, 0))  # the whole volume when empty
    box = tuple(slice(a, b) for a, b in zip(start, stop))
    labels, n = ndimage.label(mask[box], structure=_FULL)  # components lie inside the foreground's box
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    if midline is not None:  # pieces away from the mid-sagittal plane count as absent
        sizes[~reaching(labels, n, crop_affine(affine, tuple(int(v) for v in start)), midline)] = 0
    if fraction >= 1.0:
        ids = [int(sizes.argmax())]
    else:  # fraction 0 with a midline keeps every component that reaches it
        ids = list(np.nonzero((sizes > 0) & (sizes >= fraction * sizes.max()))[0])
    if keep is not None and len(keep):
        at = np.asarray(keep, dtype=int).reshape(-1, 3) - np.asarray(start)
        at = at[np.all((at >= 0) & (at < np.asarray(labels.shape)), axis=1)]
        ids += [int(i) for i in labels[tuple(at.T)] if i]
    out = np.zeros_like(mask)
    out[box] = np.isin(labels, ids)
    return out


def check_fraction(value: float, name: str = "component fraction") -> float:
    """``value`` as a float in [0, 1]; ``ValueError`` naming it otherwise."""
    f = float(value)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return f


def advised_fractions(advice: dict) -> dict[str, float]:
    """Checkpoint inference advice -> concept id -> component fraction (``largest_component``: 1,
    ``major_components``: :data:`MAJOR_FRACTION`); concepts in neither keep every component."""
    return {**{str(c): MAJOR_FRACTION for c in advice.get("major_components") or ()},
            **{str(c): 1.0 for c in advice.get("largest_component") or ()}}


def advised_midline(advice: dict) -> frozenset[str]:
    """Checkpoint inference advice -> the concept ids whose pieces must reach the body's midline."""
    return frozenset(str(c) for c in advice.get("midline_components") or ())


def fraction_of(rule: dict[str, float] | float, concept: str) -> float:
    """A concept's component fraction under a rule: one fraction for every concept, or concept id
    -> fraction (0, every component, for concepts it does not list)."""
    return rule if isinstance(rule, float) else rule.get(concept, 0.0)


THRESHOLDS = (0.3, 0.4, 0.5)  # the grid a benchmark chooses each concept's threshold from


def check_threshold(value: float, name: str = "threshold") -> float:
    """``value`` as a float in (0, 1); ``ValueError`` naming it otherwise."""
    t = float(value)
    if not 0.0 < t < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return t


def keep_components(probs: torch.Tensor, rows: dict[int, float], threshold: float | list[float] = 0.5, *,
                    midline: Midline | None = None, affine: np.ndarray | None = None,
                    midline_rows: frozenset[int] | set[int] = frozenset()) -> torch.Tensor:
    """Zero the probabilities of each row outside its kept components of ``probs[row] > threshold``.

    Args:
        probs: (K, x, y, z) probabilities on the model grid (any float dtype); changed in place
            and returned.
        rows: channel -> component fraction (:func:`major_components`: 1 the largest alone).
        threshold: one foreground threshold, or one per channel of ``probs`` (K,).
        midline, affine: the body's plane and the model grid's (4, 4) affine, for the channels of
            ``midline_rows`` (also in ``rows``), which first drop the components away from it.
    """
    per = [threshold] * probs.shape[0] if isinstance(threshold, (int, float)) else list(threshold)
    for r, fraction in rows.items():
        plane = midline if r in midline_rows else None
        if fraction <= 0.0 and plane is None:  # every component kept: nothing to label
            continue
        fg = (probs[r] > per[r]).cpu().numpy()
        if fg.any():
            keep = torch.from_numpy(major_components(fg, fraction, midline=plane, affine=affine)).to(probs.device)
            probs[r] = torch.where(keep, probs[r], torch.zeros((), dtype=probs.dtype, device=probs.device))
    return probs
