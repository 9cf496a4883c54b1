"""The foreground cut after clicks: the clicks' signs vote on where this image's cut lies.

A network's probabilities are calibrated on average, not per image: on the real validation patients
the cut that suits one patient's spinal cord lies anywhere between 0.1 and 0.9 (the per-patient
best cut gains 0.04 Dice over the fixed one on the structures text alone segments below 0.80).
Clicks are evidence about it. The simulated user, like a person, corrects the largest error first;
when that is missed structure, the mask is more likely too small everywhere, and when it is a leak,
too large. So each positive click lowers the cut of the whole mask by a step and each negative click
raises it, within a bound, and never so far that a click's own voxel changes side: a positive
click's voxel stays above the cut, a negative one's below.

Only the read-out moves: the click-by-click answer (:mod:`sat.infer.click_locality`) is computed at
the checkpoint's cut, and the restore to the input grid applies the moved one.
"""
from __future__ import annotations

import numpy as np
import torch

# how far one click moves the cut, and how far all clicks together may move it
CUT_STEP = 0.03
CUT_BOUND = 0.15
# a clicked voxel keeps its side of the cut by at least this much
CLICK_KEEP = 0.01


def click_cut(cut: float, probs: torch.Tensor, points: np.ndarray, positive: np.ndarray,
              step: float = CUT_STEP, bound: float = CUT_BOUND) -> float:
    """The cut for the mask after clicks.

    Args:
        cut: the foreground cut without clicks (the checkpoint's, in (0, 1)).
        probs: (X, Y, Z) probabilities after the clicks, on the model grid.
        points: (N, 3) click voxel positions on that grid (floats are rounded).
        positive: (N,) bool signs of the clicks.
        step: the cut moves down by this for each positive click and up for each negative one.
        bound: the total move is at most this, and at most half the way to the value that
            :func:`~sat.infer.click_locality.honour_click` gives clicked voxels (``cut / 2`` and
            ``(1 + cut) / 2``), so a region a click labelled keeps its label.

    Returns:
        The moved cut: ``cut`` itself without clicks, with ``step`` 0, or when the clicks' votes
        cancel; never past a clicked voxel's probability (``CLICK_KEEP`` inside its side).
    """
    if not 0.0 < cut < 1.0:
        raise ValueError(f"cut must lie in (0, 1), got {cut}")
    if step < 0 or bound < 0:
        raise ValueError(f"step and bound must be >= 0, got {step} and {bound}")
    positive = np.asarray(positive, dtype=bool).reshape(-1)
    votes = int(positive.sum()) - int((~positive).sum())
    if step == 0 or votes == 0:
        return cut
    move = float(np.clip(-votes * step, -min(bound, cut / 4), min(bound, (1 - cut) / 4)))
    new = cut + move
    shape = np.asarray(probs.shape)
    voxels = np.clip(np.rint(np.asarray(points, dtype=float).reshape(-1, 3)).astype(int), 0, shape - 1)
    values = probs[tuple(torch.from_numpy(voxels.T))].float().cpu().numpy() if len(voxels) else np.zeros(0)
    if move < 0 and (~positive).any():  # lowered: negative clicks' voxels stay below
        new = max(new, min(cut, float(values[~positive].max()) + CLICK_KEEP))
    if move > 0 and positive.any():  # raised: positive clicks' voxels stay above
        new = min(new, max(cut, float(values[positive].min()) - CLICK_KEEP))
    return float(new)
