"""Keep a click's correction where the click is: changes connected to a click are accepted, the rest
of the mask stays as it was before the clicks.

A click is local evidence ("this voxel is the structure", "this one is not"), but the network
answers it with a whole new mask, and part of that answer can move far from the click: a positive
click in a missed parotid lobe that also thins the gland's opposite border, a negative click on a
leak that shifts the larynx elsewhere. Measured with the simulated user on the real validation
patients, one of five clicks lowered the mean Dice in three of four protocol rows. Focus-region
refinement in 2D interactive segmentation (e.g. FocalClick, Chen et al., CVPR 2022) answers this by
letting a click change only the neighbourhood of the click; here the neighbourhood is found from the
answer itself: the voxels whose label changed form connected components, and only components
that touch a click (its voxel or the 26 around it) take the new probabilities. A missed lobe that
a positive click fills is one component through the click and is kept whole, however large.
Given the clicks' signs, a positive click takes only foreground the answer added and a negative
one only foreground it removed (:mod:`sat.infer.refine` takes clicks one at a time this way).

A click is also honoured where it was made (:func:`honour_click`): when the answer, read at the
click's own position as the restore to the input grid reads it (trilinear), still says the
opposite of the click, the voxels around the click that the answer rates about as likely are given
the click's label. Without it a click the network did not act on changed nothing, and the simulated
user clicked the same place again (three clicks at one voxel of a thin spinal cord, none changing
its mask).

Near the click, the foreground cut then moves towards the click's label (:func:`extend_click`): the
voxels connected to the click whose probability is within a margin of the cut take its label, a
seeded hysteresis (measured on the real validation patients in ``docs/guide.md``).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from sat.model.prompts import PAD, POSITIVE, Prompts

# honour_click: how much less likely than the click's position a voxel may be to take the click's
# label, how far (voxels) from the click, and never below this floor (above 1 - it for negatives)
HONOUR_DELTA = 0.1
HONOUR_RADIUS = 2
HONOUR_FLOOR = 0.02
# extend_click: how far below (above, for a negative click) the foreground cut a voxel near a click
# may be and still take the click's label, and how far (voxels) from the click
EXTEND_MARGIN = 0.2
EXTEND_RADIUS = 4


def click_points(prompts: Prompts | None) -> tuple[np.ndarray, np.ndarray]:
    """The clicks of the first query, padding left out: (N, 3) float voxel positions and (N,) bool
    signs (True: positive)."""
    if prompts is None or prompts.n_clicks == 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=bool)
    labels = prompts.labels[0, 0].cpu().numpy()
    keep = labels != PAD
    return prompts.points[0, 0].cpu().numpy()[keep].reshape(-1, 3), labels[keep] == POSITIVE


def click_voxels(prompts: Prompts | None) -> np.ndarray:
    """(N, 3) int voxel indices of the clicks of the first query (padding left out)."""
    return np.rint(click_points(prompts)[0]).astype(int)


def _touched(labels: np.ndarray, clicks: np.ndarray) -> set[int]:
    """Labels (not 0) of ``labels`` at or next to (26-neighbourhood) any click voxel of ``clicks``."""
    hit: set[int] = set()
    shape = np.asarray(labels.shape)
    for v in np.asarray(clicks).reshape(-1, 3):
        lo, hi = np.clip(v - 1, 0, shape), np.clip(v + 2, 0, shape)
        if np.all(hi > lo):
            hit.update(int(x) for x in np.unique(labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]))
    hit.discard(0)
    return hit


def accept_near_clicks(before: torch.Tensor, after: torch.Tensor, clicks: np.ndarray,
                       threshold: float = 0.5, positive: np.ndarray | None = None) -> torch.Tensor:
    """Probabilities that follow ``after`` only in changed regions connected to a click.

    Args:
        before: (X, Y, Z) probabilities without clicks (text and / or box only; zeros when neither).
        after: (X, Y, Z) probabilities with the clicks, same grid.
        clicks: (N, 3) click voxels on that grid; with none, ``after`` is returned as is.
        threshold: the foreground cut that defines "changed".
        positive: (N,) bool signs of the clicks. Given, a positive click takes only the voxels the
            answer added (foreground it gained) and a negative click only those it removed: "this
            voxel is the structure" is no evidence that others are not, and a positive click whose
            answer also dropped most of a parotid gland took its Dice from 0.78 to 0.21.

    Returns:
        (X, Y, Z) probabilities, ``after``'s dtype: ``after`` inside every component of
        ``(before > t) xor (after > t)`` (26-connected; with ``positive``, of the added voxels for
        positive clicks and of the removed ones for negative clicks) that holds a click or a voxel
        next to one, ``before`` elsewhere.
    """
    if before.shape != after.shape:
        raise ValueError(f"probability grids differ: {tuple(before.shape)} and {tuple(after.shape)}")
    if len(clicks) == 0:
        return after
    was, now = (before > threshold).cpu().numpy(), (after > threshold).cpu().numpy()
    changed = was ^ now
    box = ndimage.find_objects(changed.astype(np.uint8))
    if not box:
        return after
    box = box[0]  # label only the changed voxels' bounding box: a click costs milliseconds here
    clicks = np.asarray(clicks).reshape(-1, 3) - np.array([s.start for s in box])
    full = np.ones((3, 3, 3), bool)
    if positive is None:
        groups = [(changed[box], clicks)]
    else:
        sign = np.asarray(positive, dtype=bool)
        groups = [(now[box] & ~was[box], clicks[sign]), (was[box] & ~now[box], clicks[~sign])]
    accept = np.zeros(changed[box].shape, dtype=bool)
    for region, at in groups:
        if len(at) and region.any():
            labels, _ = ndimage.label(region, structure=full)
            hit = _touched(labels, at)
            if hit:
                accept |= np.isin(labels, sorted(hit))
    out = before.to(after.dtype).clone()
    out[box] = torch.where(torch.from_numpy(accept), after[box], out[box])
    return out


def _trilinear(probs: torch.Tensor, point: np.ndarray) -> tuple[float, np.ndarray]:
    """The trilinear value of (X, Y, Z) ``probs`` at a float voxel position, and the (K, 3) corner
    voxels that weigh in it (up to 8; one when the position is a voxel centre)."""
    shape = np.asarray(probs.shape)
    p = np.clip(np.asarray(point, dtype=float), 0, shape - 1)
    lo = np.minimum(np.floor(p).astype(int), shape - 1)
    hi = np.minimum(lo + 1, shape - 1)
    w = p - lo
    value, corners = 0.0, []
    for bits in np.ndindex(2, 2, 2):
        c, weight = np.where(bits, hi, lo), float(np.prod(np.where(bits, w, 1 - w)))
        if weight > 0:
            corners.append(c)
            value += float(probs[tuple(c)]) * weight
    return value, np.unique(np.array(corners), axis=0)


def honour_click(probs: torch.Tensor, point, positive: bool, threshold: float,
                 delta: float = HONOUR_DELTA, radius: int = HONOUR_RADIUS) -> torch.Tensor:
    """``probs`` labelled as the click says at the click, and at the like voxels around it.

    Args:
        probs: (X, Y, Z) probabilities after the click.
        point: the click's (3,) float voxel position on that grid.
        positive: the click's sign.
        threshold: the foreground cut.
        delta: a voxel on the wrong side of ``threshold`` takes the click's label when its
            probability is within ``delta`` of the value at the click (at least that minus ``delta``
            for a positive click, at most that plus ``delta`` for a negative one, never past
            :data:`HONOUR_FLOOR`) and it is 26-connected to the click through such voxels.
        radius: only voxels within this many voxels of the click (a box).

    Returns:
        (X, Y, Z) probabilities, ``probs``'s dtype: unchanged when the trilinear value at the click
        already agrees; else the voxels the value is read from and the like voxels connected to
        them moved to the middle of the click's side (``(1 + threshold) / 2`` or ``threshold / 2``).
    """
    value, corners = _trilinear(probs, point)
    if (value > threshold) == bool(positive):
        return probs
    if positive:
        like = lambda local: (local >= max(value - delta, HONOUR_FLOOR)) & (local <= threshold)
    else:
        like = lambda local: (local <= min(value + delta, 1.0 - HONOUR_FLOOR)) & (local > threshold)
    return _label_near(probs, corners, radius, like, positive, threshold, seeded=True)


def _label_near(probs: torch.Tensor, corners: np.ndarray, radius: int, like, positive: bool, threshold: float,
                seeded: bool) -> torch.Tensor:
    """Give the click's label to the voxels of ``like(local probabilities)`` 26-connected to the
    click's ``corners`` (K, 3), within ``radius`` voxels: raised to at least ``(1 + threshold) / 2``
    (positive) or lowered to at most ``threshold / 2``. ``seeded``: the corners count as like
    voxels themselves; else nothing changes unless one of them is."""
    centre = corners.min(0)
    box = tuple(slice(max(0, a - radius), min(n, a + radius + 2)) for a, n in zip(centre, probs.shape))
    mask = like(probs[box].float().cpu().numpy())
    seeds = tuple((corners - np.array([s.start for s in box])).T)
    if seeded:
        mask[seeds] = True
    elif not mask[seeds].any():
        return probs
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    ids = np.unique(labels[seeds])
    region = torch.from_numpy(np.isin(labels, ids[ids > 0])).to(probs.device)
    target = torch.tensor((1.0 + threshold) / 2 if positive else threshold / 2, dtype=probs.dtype)
    out = probs.clone()
    sub = out[box]
    out[box] = torch.where(region, torch.maximum(sub, target) if positive else torch.minimum(sub, target), sub)
    return out


def extend_click(probs: torch.Tensor, point, positive: bool, threshold: float,
                 margin: float = EXTEND_MARGIN, radius: int = EXTEND_RADIUS) -> torch.Tensor:
    """``probs`` with the foreground cut moved by ``margin`` near a click, towards the click's label.

    A click says more than "this voxel": the robot user of ``sat benchmark interactive``, like a
    person, clicks in the middle of an error, and the voxels around a positive click that the
    network rated just below the cut are mostly the structure it missed there (seeded hysteresis,
    the region growing of classic interactive tools, on the network's probabilities).

    Args:
        probs: (X, Y, Z) probabilities after the click (and after :func:`honour_click`).
        point: the click's (3,) float voxel position on that grid.
        positive: the click's sign.
        threshold: the foreground cut.
        margin: a voxel takes the click's label when its probability is at least
            ``threshold - margin`` (positive click; at most ``threshold + margin`` for a negative
            one) and it is 26-connected to the click through such voxels.
        radius: only voxels within this many voxels of the click (a box).

    Returns:
        (X, Y, Z) probabilities, ``probs``'s dtype: the region raised to at least
        ``(1 + threshold) / 2`` (lowered to at most ``threshold / 2``); unchanged when the click's
        own position is outside the band.
    """
    _, corners = _trilinear(probs, point)
    if positive:
        like = lambda local: local >= threshold - margin
    else:
        like = lambda local: local <= threshold + margin
    return _label_near(probs, corners, radius, like, positive, threshold, seeded=False)
