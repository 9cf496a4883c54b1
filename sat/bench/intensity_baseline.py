"""Intensity-only baseline: the realism guard of the phantoms.

For every (source, structure) the single intensity window [lo, hi] that maximises the mean Dice on
the source's training cases is found by exhaustive search over candidate edges (quantiles of the
pooled intensities and of the structure's own intensities), then applied to the held-out cases.
Phantoms that need spatial context keep the mean held-out Dice well below 1; the project asks for
<= 0.5.

The fit is exact yet cheap: images are integer-valued, so each training case is reduced to
per-value histograms (all voxels, and the voxels of each structure), and any window's counts are
differences of cumulative sums.

    python -m sat.bench.intensity_baseline data/phantoms
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from sat.data.phantoms.layouts import SOURCE_CONCEPTS, SOURCES, read_case

_VMIN, _VMAX = -1024, 4095  # value range covering the stored CT (HU) and MR (a.u.) images


def _histogram(values: np.ndarray) -> np.ndarray:
    """Counts per integer value in [_VMIN, _VMAX], (_VMAX - _VMIN + 1,) int64."""
    v = np.clip(values.ravel().astype(np.int32), _VMIN, _VMAX) - _VMIN
    return np.bincount(v, minlength=_VMAX - _VMIN + 1)


def _quantile_values(hist: np.ndarray, n: int) -> np.ndarray:
    """Integer values at ``n`` evenly spaced quantiles of a per-value histogram."""
    cum = np.cumsum(hist)
    if cum[-1] == 0:
        return np.zeros(0, dtype=np.int64)
    return np.searchsorted(cum, np.linspace(0, cum[-1] - 1, n), side="right")


def fit_window(all_hists: list[np.ndarray], mask_hists: list[np.ndarray],
               n_edges: int = 64) -> tuple[int, int, float] | None:
    """Best inclusive window [lo, hi] for one structure over training cases.

    Args:
        all_hists: per case, the per-value histogram of all voxels.
        mask_hists: per case, the per-value histogram of the structure's voxels.
        n_edges: candidate edges drawn from each of the pooled and the structure's quantiles.

    Returns:
        (lo, hi, mean training Dice) in stored intensity units, or None if the structure is empty
        in every training case.
    """
    keep = [i for i, h in enumerate(mask_hists) if h.sum() > 0]
    if not keep:
        return None
    pooled_all = np.sum([all_hists[i] for i in keep], axis=0)
    pooled_mask = np.sum([mask_hists[i] for i in keep], axis=0)
    edges = np.unique(np.concatenate([_quantile_values(pooled_all, n_edges // 2),
                                      _quantile_values(pooled_mask, n_edges)]))  # (E,) indices
    lo_idx, hi_idx = edges[:, None], edges[None, :]  # window = values lo..hi inclusive
    total = np.zeros((len(edges), len(edges)))
    for i in keep:
        ca = np.concatenate([[0], np.cumsum(all_hists[i])])  # ca[v] = count of values < v
        cm = np.concatenate([[0], np.cumsum(mask_hists[i])])
        pred = ca[hi_idx + 1] - ca[lo_idx]
        tp = cm[hi_idx + 1] - cm[lo_idx]
        total += 2.0 * tp / np.maximum(pred + cm[-1], 1)
    total[lo_idx > hi_idx] = -1.0
    a, b = np.unravel_index(int(np.argmax(total)), total.shape)
    return int(edges[a]) + _VMIN, int(edges[b]) + _VMIN, float(total[a, b] / len(keep))


def _dice(pred: np.ndarray, gt: np.ndarray) -> float:
    denom = int(pred.sum()) + int(gt.sum())
    return 2.0 * int(np.logical_and(pred, gt).sum()) / denom if denom else 1.0


def intensity_baseline(root: Path) -> dict:
    """Fit windows on each source's training cases and score them on its held-out cases.

    Args:
        root: a folder written by :func:`~sat.data.phantoms.generate.generate_phantoms`.

    Returns:
        ``{"mean_dice": float, "per_structure": {concept: float}, "per_source":
        {source: {concept: float}}, "windows": {source: {concept: [lo, hi]}}}``. A structure's
        score is the mean over held-out cases (of every source annotating it) where it is present;
        ``mean_dice`` averages the structures that have a score.

    Raises:
        FileNotFoundError: when ``root/splits.json`` is missing.
    """
    root = Path(root)
    splits_path = root / "splits.json"
    if not splits_path.is_file():
        raise FileNotFoundError(f"{splits_path} not found; run `sat phantoms --out {root}` first")
    splits = json.loads(splits_path.read_text())
    scores: dict[str, list[float]] = defaultdict(list)
    per_source: dict[str, dict[str, float]] = {}
    windows: dict[str, dict[str, list[int]]] = {}
    for source in SOURCES:
        concepts = SOURCE_CONCEPTS[source]
        all_hists, mask_hists = [], defaultdict(list)
        for cid in splits.get(source, {}).get("train", []):
            image, masks = read_case(root, source, cid)
            all_hists.append(_histogram(image))
            for concept in concepts:
                mask_hists[concept].append(_histogram(image[masks[concept]]))
        fitted = {c: fit_window(all_hists, mask_hists[c]) for c in concepts} if all_hists else {}
        windows[source] = {c: [w[0], w[1]] for c, w in fitted.items() if w is not None}
        source_scores: dict[str, list[float]] = defaultdict(list)
        for cid in splits.get(source, {}).get("test", []):
            image, masks = read_case(root, source, cid)
            for concept, (lo, hi) in windows[source].items():
                if masks[concept].any():
                    source_scores[concept].append(_dice((image >= lo) & (image <= hi), masks[concept]))
        per_source[source] = {c: float(np.mean(v)) for c, v in source_scores.items()}
        for concept, values in source_scores.items():
            scores[concept].extend(values)
    per_structure = {c: float(np.mean(v)) for c, v in sorted(scores.items())}
    mean = float(np.mean(list(per_structure.values()))) if per_structure else float("nan")
    return {"mean_dice": mean, "per_structure": per_structure, "per_source": per_source,
            "windows": windows}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m sat.bench.intensity_baseline PHANTOM_ROOT")
    print(json.dumps(intensity_baseline(Path(sys.argv[1])), indent=2))
