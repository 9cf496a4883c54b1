"""Bring per-prompt probabilities from the model grid back onto the input's own voxel grid.

Each prompt is resampled (trilinear, through world coordinates) only inside the input-grid box
that can hold its foreground, slab by slab, and the slabs feed the statistics as they go. The full
input grid is touched only for structures that fill it or when probability maps are requested, so
memory grows with the structures' extent, not with ``prompts x input voxels``: a 512 x 512 x 400
CT with 20 prompts needs the input volume plus 20 lazily-allocated boolean masks, not a float
buffer per prompt.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from sat.volume.geometry import axis_permutation, crop_affine, resample_slabs
from sat.io.volume import Volume
from sat.infer.stats import StatsAccumulator

_SLAB_VOXELS = 2_000_000  # input voxels resampled at once (about 8 MB of float32 per slab)


@dataclass
class Restored:
    """One prompt on the input grid."""

    mask: np.ndarray  # (X, Y, Z) bool
    prob: np.ndarray | None  # (X, Y, Z) float16 when requested, else None
    stats: dict


def _weights(coords: np.ndarray, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Linear-interpolation taps into an axis of ``n`` voxels padded with one zero on each side."""
    lo = np.floor(coords)
    w = torch.from_numpy((coords - lo).astype(np.float32))
    lo = lo.astype(np.int64) + 1  # index in the padded axis
    return (torch.from_numpy(np.clip(lo, 0, n + 1)), torch.from_numpy(np.clip(lo + 1, 0, n + 1)), w)


def _lerp(t: torch.Tensor, axis: int, taps) -> torch.Tensor:
    lo, hi, w = taps
    shape = [1, 1, 1]
    shape[axis] = -1
    w = w.view(shape)
    return t.index_select(axis, lo) * (1 - w) + t.index_select(axis, hi) * w


def _slabs(src: torch.Tensor, src_affine: np.ndarray, dst_affine: np.ndarray, dst_shape, slab: int):
    """Yield ``(x0, x1, (x1 - x0, Y', Z') float32)`` trilinear samples of ``src`` (x, y, z) on a grid.

    Axis-aligned grid pairs (any flips, permutations and spacings) take a separable path, three 1D
    interpolations, several times faster than ``grid_sample`` with identical zero-padded trilinear
    values; oblique pairs use :func:`sat.volume.geometry.resample_slabs`.
    """
    m = np.linalg.inv(src_affine) @ dst_affine  # target voxel index -> source voxel index
    axes = axis_permutation(m)
    if axes is None:
        for x0, x1, part in resample_slabs(src.float()[None], src_affine, dst_affine, dst_shape, slab=slab):
            yield x0, x1, part[0]
        return
    padded = torch.nn.functional.pad(src.float().permute(*axes), (1, 1, 1, 1, 1, 1))  # zero border
    taps = [_weights(m[a, d] * np.arange(dst_shape[d]) + m[a, 3], src.shape[a]) for d, a in enumerate(axes)]
    for x0 in range(0, dst_shape[0], slab):
        x1 = min(x0 + slab, dst_shape[0])
        part = _lerp(padded, 0, tuple(t[x0:x1] for t in taps[0]))  # (s, y + 2, z + 2)
        yield x0, x1, _lerp(_lerp(part, 1, taps[1]), 2, taps[2])


def _box(lo: np.ndarray, hi: np.ndarray, src_affine: np.ndarray, volume: Volume
         ) -> tuple[np.ndarray, np.ndarray] | None:
    """Input-grid index box (inclusive) covering the source-index box ``[lo, hi]``, or None if outside."""
    corners = np.array([[*c, 1.0] for c in itertools.product(*zip(lo, hi))])  # (8, 4)
    idx = corners @ (np.linalg.inv(volume.affine) @ src_affine).T  # (8, 4) input voxel indices
    start = np.maximum(np.floor(idx[:, :3].min(0)).astype(int), 0)
    stop = np.minimum(np.ceil(idx[:, :3].max(0)).astype(int), np.asarray(volume.shape) - 1)
    return None if np.any(stop < start) else (start, stop)


def restore_prompt(prob: torch.Tensor, src_affine: np.ndarray, volume: Volume, *,
                   laterality: str = "none", keep_probabilities: bool = False,
                   threshold: float = 0.5, slab: int | None = None, fraction: float = 0.0,
                   keep_voxels=(), midline=None) -> Restored:
    """Resample one probability map onto ``volume``'s grid, threshold it and measure it.

    Args:
        prob: (x, y, z) probabilities on the model grid whose affine is ``src_affine``.
        volume: the input image; the mask gets exactly its shape and affine.
        laterality: passed to the statistics.
        keep_probabilities: also return the full float16 probability map on the input grid.
        threshold: foreground threshold applied on the input grid.
        slab: input X-planes resampled at once (default: about 2 million voxels per slab).
        fraction: the component rule on the input-grid mask (:func:`~sat.infer.postprocess.major_components`:
            0 every component, 1 the largest alone), applied before the statistics; the kept
            probabilities are zeroed in the components it removes. The mask is the one the user
            gets, so its components are counted there, where ``sat benchmark real`` chose the rule:
            on the 4 x 4 x 3 mm model grid a spinal cord thinner than two voxels breaks where the
            input grid keeps it whole (validation spinal cord of three full runs: 0.694-0.696 applied
            there, 0.701-0.702 here; docs/training.md).
        keep_voxels: (N, 3) voxel indices of the input grid whose components the rule keeps
            whatever their size (positive refinement clicks).
        midline: a :class:`~sat.infer.midline.Midline`: before the component rule, drop the
            components that stay away from the body's mid-sagittal plane.

    Returns:
        A :class:`Restored` with the mask, the optional probabilities and the statistics.
    """
    shape = tuple(volume.shape)
    mask = np.zeros(shape, dtype=bool)  # calloc: pages outside the structure are never touched
    out_prob = np.zeros(shape, dtype=np.float16) if keep_probabilities else None
    acc = StatsAccumulator(volume.affine, laterality)
    fg = prob > threshold  # (x, y, z) on the model grid
    if keep_probabilities:
        src, src_aff = prob, src_affine
        box = (np.zeros(3, int), np.asarray(shape) - 1)
    elif not bool(fg.any()):
        return Restored(mask, None, acc.result())
    else:
        # A trilinear sample can exceed the threshold only strictly within one source voxel of a
        # foreground voxel; keep one more voxel of source so those samples see true neighbours.
        fg = fg.numpy()
        nz = [np.flatnonzero(fg.any(axis=tuple(d for d in range(3) if d != a))) for a in range(3)]
        lo = np.array([int(n[0]) for n in nz])
        hi = np.array([int(n[-1]) for n in nz])
        box = _box(lo - 1.0, hi + 1.0, src_affine, volume)
        if box is None:
            return Restored(mask, None, acc.result())
        s0 = np.maximum(lo - 2, 0)
        s1 = np.minimum(hi + 3, np.asarray(prob.shape))
        src = prob[s0[0]:s1[0], s0[1]:s1[1], s0[2]:s1[2]]
        src_aff = crop_affine(src_affine, tuple(int(v) for v in s0))
    start, stop = box
    dst_shape = tuple(int(v) for v in stop - start + 1)
    dst_aff = crop_affine(volume.affine, tuple(int(v) for v in start))
    i0, j0, k0 = (int(v) for v in start)
    j1, k1 = j0 + dst_shape[1], k0 + dst_shape[2]
    slab = slab or max(1, _SLAB_VOXELS // (dst_shape[1] * dst_shape[2]))
    region = (slice(i0, i0 + dst_shape[0]), slice(j0, j1), slice(k0, k1))
    # with a component rule the statistics wait for the whole mask: the box's probabilities are kept,
    # in float32 like those the statistics read without a rule
    held = None if fraction <= 0 and midline is None else np.zeros(dst_shape, np.float32)
    for x0, x1, part in _slabs(src, src_aff, dst_aff, dst_shape, slab):
        p = part.numpy()  # (x, y, z) float32
        m = p > threshold
        sl = (slice(i0 + x0, i0 + x1), slice(j0, j1), slice(k0, k1))
        if m.any():
            mask[sl] = m
        if out_prob is not None:
            out_prob[sl] = p
        if held is None:
            acc.add((i0 + x0, j0, k0), m, volume.array[sl], p)
        else:
            held[x0:x1] = p
    if held is not None:
        from sat.infer.postprocess import major_components

        found = mask[region].copy()
        kept = major_components(found, fraction, np.asarray(keep_voxels, dtype=int).reshape(-1, 3) - start,
                                midline=midline, affine=dst_aff)
        mask[region] = kept
        dropped = found & ~kept
        held[dropped] = 0
        if out_prob is not None:
            out_prob[region][dropped] = 0  # out_prob[region] is a view
        for x0 in range(0, dst_shape[0], slab):
            x1 = min(x0 + slab, dst_shape[0])
            sl = (slice(i0 + x0, i0 + x1), slice(j0, j1), slice(k0, k1))
            acc.add((i0 + x0, j0, k0), kept[x0:x1], volume.array[sl], held[x0:x1])
    return Restored(mask, out_prob, acc.result())


def restore_prompts(probs: torch.Tensor, src_affine: np.ndarray, volume: Volume,
                    lateralities: list[str], *, keep_probabilities: bool = False,
                    workers: int = 1, thresholds: list[float] | None = None,
                    answers: list | None = None, fractions: list[float] | None = None,
                    keep_voxels: list | None = None, midline=None,
                    on_midline: list[bool] | None = None) -> list[Restored]:
    """:func:`restore_prompt` for each channel of ``probs`` (Q, x, y, z); ``thresholds`` (Q,)
    gives each channel its own foreground threshold (default 0.5 for all), ``fractions`` (Q,) its
    component rule on the input grid (default 0: every component), ``keep_voxels`` (Q,) the input
    voxels whose components each keeps (see :func:`restore_prompt`), ``on_midline`` (Q,) whether
    each first drops the components away from ``midline``, the body's plane (default: none does).

    ``answers`` (Q,), optional: what each channel is the answer of (e.g. the concept ids behind a
    prompt). Channels with the same answer, side and threshold hold the same probabilities, so the
    first is restored and the others get copies of it (synonyms asked in one call cost one restore).

    ``workers > 1`` restores that many prompts at once on a thread pool (the interpolation and the
    NumPy reductions release the GIL); prompts are independent, so results are identical to the
    sequential order and memory grows by one slab per worker.
    """
    cuts = [0.5] * len(lateralities) if thresholds is None else [float(t) for t in thresholds]
    parts = [0.0] * len(lateralities) if fractions is None else [float(f) for f in fractions]
    kept = [()] * len(lateralities) if keep_voxels is None else [tuple(map(tuple, k)) for k in keep_voxels]
    planes = [False] * len(lateralities) if on_midline is None or midline is None else [bool(m) for m in on_midline]
    keys = [(q if answers is None else answers[q], lateralities[q], cuts[q], parts[q], kept[q], planes[q])
            for q in range(len(lateralities))]
    first: dict = {}  # key -> the first channel with it, the one restored
    for q, k in enumerate(keys):
        first.setdefault(k, q)
    todo = list(first.values())

    def one(q: int) -> Restored:
        return restore_prompt(probs[q], src_affine, volume, laterality=lateralities[q],
                              keep_probabilities=keep_probabilities, threshold=cuts[q], fraction=parts[q],
                              keep_voxels=kept[q], midline=midline if planes[q] else None)

    if workers <= 1 or len(todo) <= 1:
        done = dict(zip(todo, map(one, todo)))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            done = dict(zip(todo, pool.map(one, todo)))

    def copy_of(r: Restored) -> Restored:
        return Restored(r.mask.copy(), None if r.prob is None else r.prob.copy(), copy.deepcopy(r.stats))

    return [done[q] if q in done else copy_of(done[first[k]]) for q, k in enumerate(keys)]
