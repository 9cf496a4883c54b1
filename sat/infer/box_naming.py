"""A box drawn without text names a structure the model knows: the one whose answer fits the box.

A user who draws a box around the mandible and types nothing means the mandible. The prompt
encoder's text-less box answer has to guess the structure from the box alone, and it fails on large
hollow ones: the mandible's box holds 13-15 times the bone's volume, and its box-only Dice on the
OpenKBP validation patients was 0.03, against 0.86 for the text "mandible". The text path already
knows every trained structure, so a text-less box is first matched against the answers of all of
them (and of the unions the checkpoint answers, such as "hippocampus" = head + body and tail),
decoded once around the box. The fit of a candidate mask M to a box B is

    fit = IoU(bbox(M ∩ B), B) * |M ∩ B+| / |M|

where B+ is the box grown by :data:`MARGIN` of its extent on each side (at least one voxel) and M is
the mask within the decoded region (the box grown by :data:`CONTEXT` of its extent): 1 for a mask
that spans the box and stays inside it, low for a structure that only crosses the box (a spinal
cord through a larynx box) or fills only part of it. The context matters: decoded over B+ alone,
every mask seemed to stay inside the box, and the union of all structures won larynx boxes. A 2D
box (flat along one axis) is fitted on its slice; only concepts trained on the image's modality
compete, and a tie goes to the candidate with fewer members. The best candidate at or
above :data:`MIN_FIT` is answered as its name and the box together would be (the text + box path of
the prompt encoder, which also takes the clicks that follow); otherwise the box keeps its text-less
answer (a structure this model was not trained on). On all OpenKBP validation patients
(`sat benchmark interactive`), box-only Dice went from 0.622 to 0.742 and the mandible's from 0.026
to 0.871.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sat.infer.answering import answerable
from sat.model.prompts import BOX_2D, Prompts

MARGIN = 0.1  # B+: the box grown by this fraction of its extent on each side
MIN_FIT = 0.5  # below this fit, the box is not taken as naming any known structure
CONTEXT = 1.0  # candidates are decoded over the box grown by this fraction of its extent on each side


@dataclass(frozen=True)
class NamedBox:
    """The structure a box names: ``concept`` (a tree id), answered by the union of ``members``."""

    concept: str
    members: tuple[str, ...]
    fit: float


def grid_box(prompts: Prompts) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(lo, hi) int inclusive model-grid corners of the first query's box, and its flat axis (2D)."""
    lo, hi = (np.rint(c).astype(int) for c in prompts.boxes[0, 0].cpu().numpy())
    flat = None
    if int(prompts.box_kind[0, 0]) == BOX_2D:
        flat = int(np.argmin(hi - lo))
    return lo, hi, flat


def grown(lo: np.ndarray, hi: np.ndarray, shape, flat: int | None, by: float = MARGIN) -> tuple[slice, ...]:
    """The box grown by ``by`` times its extent on each side (at least one voxel; B+ by default), as
    slices of a grid of ``shape``; the whole axis across a 2D box's slice, which bounds nothing along it."""
    pad = np.maximum(1, np.rint(by * (hi - lo + 1))).astype(int)
    out = [slice(max(0, int(a - p)), min(int(n), int(b + p + 1))) for a, b, p, n in zip(lo, hi, pad, shape)]
    if flat is not None:
        out[flat] = slice(0, int(shape[flat]))
    return tuple(out)


def box_fit(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray, flat: int | None = None) -> float:
    """The fit of a (X, Y, Z) bool mask to the inclusive box ``lo..hi`` (see the module docstring)."""
    if flat is not None:  # a 2D box: the mask on its slice
        keep = np.zeros(mask.shape, dtype=bool)
        index = [slice(None)] * 3
        index[flat] = slice(int(lo[flat]), int(lo[flat]) + 1)
        keep[tuple(index)] = True
        mask = mask & keep
    total = int(mask.sum())
    if total == 0:
        return 0.0
    inside = mask[tuple(slice(int(a), int(b) + 1) for a, b in zip(lo, hi))]
    idx = np.argwhere(inside)
    if len(idx) == 0:
        return 0.0
    a, b = idx.min(0) + lo, idx.max(0) + lo  # bbox(M ∩ B), inside B
    iou = float(np.prod(b - a + 1) / np.prod(hi - lo + 1))  # bbox(M ∩ B) lies within B
    near = int(mask[grown(lo, hi, mask.shape, flat)].sum())
    return iou * near / total


def candidates(tree, trained: set[str]) -> dict[tuple[str, ...], str]:
    """Each distinct union of trained concepts the model answers -> the most specific concept it
    answers (a trained concept itself; else the tree concept with the fewest descendants)."""
    out: dict[tuple[str, ...], str] = {}
    for cid, via in answerable(tree, trained).items():
        key = tuple(sorted(via))
        best = out.get(key)
        if cid in trained or best is None or (best not in trained and
                                              len(tree.descendants(cid)) < len(tree.descendants(best))):
            out[key] = cid
    return out


@torch.no_grad()
def name_box(seg, cache, prompts: Prompts, modality: str) -> NamedBox | None:
    """The known structure the first query's box names on the cached image, or None.

    Args:
        seg: the :class:`~sat.infer.segmenter.Segmenter` (its network, tree, trained concepts,
            per-concept thresholds and per-modality concept statistics).
        cache: the image's :class:`~sat.model.sliding_window.FeatureCache`.
        prompts: model-grid prompts holding the box.
        modality: the image's; only concepts trained on it are candidates.
    """
    from sat.model.sliding_window import decode_region

    lo, hi, flat = grid_box(prompts)
    region = grown(lo, hi, cache.shape, flat, CONTEXT)  # wide enough to see a mask leave B+
    trained = sorted(c for c in seg.trained if c in seg.net.concept_ids and _seen_in(seg, c, modality))
    if not trained:
        return None
    probs, covered = decode_region(seg.net, cache, trained, region, device=seg.device)  # (K, X, Y, Z)
    masks = {c: (probs[k] > seg.thresholds.get(c, 0.5)).numpy() & covered.numpy() for k, c in enumerate(trained)}
    fits = []
    for members, cid in candidates(seg.tree, set(trained)).items():
        fit = box_fit(np.logical_or.reduce([masks[m] for m in members]), lo, hi, flat)
        fits.append((round(fit, 4), -len(members), cid, members))  # a tie goes to the fewest members
    fit, _, cid, members = max(fits)
    return NamedBox(cid, members, fit) if fit >= MIN_FIT else None


def _seen_in(seg, concept: str, modality: str) -> bool:
    """Whether ``concept`` was trained on ``modality`` (the checkpoint's per-modality concept
    statistics; every concept when the checkpoint has none)."""
    stats = getattr(seg, "concept_stats", None) or {}
    return concept not in stats or modality in stats[concept]
