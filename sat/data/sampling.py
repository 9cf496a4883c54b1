"""Turn one decoded case into a training example: a foreground-weighted crop and its queries.

Queries are concept ids. Positives are annotated concepts present in the crop; negatives are
annotated concepts absent from it (never unannotated ones: partial labels). Grouping concepts
(e.g. ``kidneys``) are added as the union of their children when every child is annotated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SamplingConfig:
    """Attributes:
        patch_size: crop size (voxels) at the preprocessed spacing.
        foreground_prob: chance that a crop is centred on a random voxel of a random present concept.
        max_queries: cap on queries per crop. negative_ratio: negatives per positive (at least one).
        lr_flip_prob: chance of a left-right flip; lateral concepts are swapped with their mirrors.
    """

    patch_size: tuple[int, int, int] = (48, 48, 48)
    foreground_prob: float = 0.8
    max_queries: int = 16
    negative_ratio: float = 1.0
    lr_flip_prob: float = 0.0


def add_group_concepts(concepts: list[str], masks: np.ndarray, groups: dict[str, list[str]]
                       ) -> tuple[list[str], np.ndarray]:
    """Append union masks of grouping concepts whose children are all annotated.

    Args:
        concepts: channel concept ids. masks: (K, X, Y, Z) bool.
        groups: group id -> child concept ids (e.g. ``kidneys: [kidney_left, kidney_right]``).
    """
    extra_ids, extra = [], []
    have = {c: i for i, c in enumerate(concepts)}
    for gid, children in groups.items():
        if gid not in have and children and all(c in have for c in children):
            extra_ids.append(gid)
            extra.append(np.any(masks[[have[c] for c in children]], axis=0))
    if not extra:
        return concepts, masks
    return concepts + extra_ids, np.concatenate([masks, np.stack(extra)])


def _crop_start(shape, patch, center, rng) -> tuple[int, ...]:
    return tuple(int(np.clip(c - p // 2 + rng.integers(-p // 4, p // 4 + 1), 0, max(n - p, 0)))
                 for n, p, c in zip(shape, patch, center))


def sample_crop(image: np.ndarray, masks: np.ndarray, concepts: list[str], cfg: SamplingConfig,
                rng: np.random.Generator, mirrors: dict[str, str] | None = None) -> dict:
    """Crop, choose queries, optionally flip left-right.

    Args:
        image: (C, X, Y, Z) float32, RAS-oriented (axis 0 runs towards the patient's right).
        masks: (K, X, Y, Z) bool, channel k = ``concepts[k]`` (all annotated).
        mirrors: concept id -> mirror id for lateral concepts (needed for flips).

    Returns:
        dict with ``image`` (C, *patch) float32, ``target`` (Q, *patch) bool, ``concepts`` (Q ids).
    """
    patch = cfg.patch_size
    shape = image.shape[1:]
    present = [k for k in range(len(concepts)) if masks[k].any()]
    if present and rng.random() < cfg.foreground_prob:
        k = int(rng.choice(present))
        # a random voxel of the chosen concept, found without listing every voxel
        flat = np.flatnonzero(masks[k].ravel()[:: 7]) * 7
        flat = flat if flat.size else np.flatnonzero(masks[k].ravel())
        center = np.unravel_index(int(rng.choice(flat)), shape)
    else:
        center = tuple(int(rng.integers(0, n)) for n in shape)
    start = _crop_start(shape, patch, center, rng)
    sl = tuple(slice(s, s + p) for s, p in zip(start, patch))
    img = image[(slice(None), *sl)]
    msk = masks[(slice(None), *sl)]
    pad = [(0, 0)] + [(0, p - n) for p, n in zip(patch, img.shape[1:])]
    if any(b for _, b in pad):
        img = np.pad(img, pad, constant_values=float(image.min()))
        msk = np.pad(msk, pad)
    inside = msk.reshape(len(concepts), -1).any(1)
    pos = [k for k in range(len(concepts)) if inside[k]]
    neg = [k for k in range(len(concepts)) if not inside[k]]
    rng.shuffle(pos)
    rng.shuffle(neg)
    pos = pos[: cfg.max_queries]
    n_neg = min(len(neg), max(1, int(round(cfg.negative_ratio * max(len(pos), 1)))), cfg.max_queries - len(pos))
    chosen = pos + neg[:max(n_neg, 0)]
    ids = [concepts[k] for k in chosen]
    target = msk[chosen]
    if cfg.lr_flip_prob > 0 and rng.random() < cfg.lr_flip_prob:
        if mirrors is None:
            raise ValueError("lr_flip_prob > 0 needs the mirror map to swap laterality labels")
        img, target = img[:, ::-1], target[:, ::-1]
        ids = [mirrors.get(c, c) for c in ids]
    return {"image": np.ascontiguousarray(img, dtype=np.float32),
            "target": np.ascontiguousarray(target), "concepts": ids}
