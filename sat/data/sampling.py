"""Turn one decoded case into a training example: a foreground-weighted crop and its queries.

Queries are concept ids. Positives are annotated concepts present in the crop; negatives are
annotated concepts absent from it (never unannotated ones: partial labels). Grouping concepts
(e.g. ``kidneys``) are added as the union of their children when every child is annotated.

Labels stay a code map (:class:`~sat.data.label_codes.CodedLabels`) until the crop is cut: only
the crop's codes are counted and only the chosen queries are expanded to masks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sat.data.label_codes import CodedLabels
from sat.data.spatial_aug import apply_affine, check_spatial, draw_affine


@dataclass
class SamplingConfig:
    """Attributes:
        patch_size: crop size (voxels) at the preprocessed spacing.
        foreground_prob: chance that a crop is centred on a random voxel of a random present concept.
        max_queries: cap on queries per crop. negative_ratio: negatives per positive (at least one).
        lr_flip_prob: chance of a left-right flip; lateral concepts are swapped with their mirrors.
        repeat_threshold, repeat_power: repeat-factor sampling of rare structures
            (:mod:`sat.data.repeat_factor`): a concept present in a fraction f of its dataset's
            training cases gets r = max(1, (threshold / f) ** power) more crops and crop centres;
            0 disables it.
        soft_targets: float targets that hold each boundary voxel's partial volume (the shards'
            occupancy band, :func:`sat.volume.label_resample.occupancy_edges`) instead of the
            code map's 0 / 1; shards built before the band existed are refused.
        spatial_prob, rotate_deg, scale_range: chance of a random rotation (up to ``rotate_deg``
            about each axis) and isotropic scaling (a factor in ``scale_range``; above 1 the
            patch shows more of the scan) of a crop, its targets resampled with it
            (:mod:`sat.data.spatial_aug`); 0 turns it off.
    """

    patch_size: tuple[int, int, int] = (48, 48, 48)
    foreground_prob: float = 0.8
    max_queries: int = 16
    negative_ratio: float = 1.0
    lr_flip_prob: float = 0.0
    repeat_threshold: float = 0.0
    repeat_power: float = 0.5
    soft_targets: bool = False
    spatial_prob: float = 0.0
    rotate_deg: float = 15.0
    scale_range: tuple[float, float] = (0.85, 1.15)

    def __post_init__(self) -> None:
        check_spatial(self.spatial_prob, self.rotate_deg, self.scale_range)
        self.scale_range = tuple(float(v) for v in self.scale_range)


def add_group_concepts(labels: CodedLabels, groups: dict[str, list[str]]) -> CodedLabels:
    """Append union channels of grouping concepts whose children are all annotated.

    Args:
        labels: the case's annotated channels.
        groups: group id -> child concept ids (e.g. ``kidneys: [kidney_left, kidney_right]``).
    """
    return labels.with_groups(groups)


def _crop_start(shape, patch, center, rng) -> tuple[int, ...]:
    return tuple(int(np.clip(c - p // 2 + rng.integers(-p // 4, p // 4 + 1), 0, max(n - p, 0)))
                 for n, p, c in zip(shape, patch, center))


def random_voxel(labels: CodedLabels, k: int, rng: np.random.Generator, tries: int = 256) -> tuple[int, ...]:
    """A uniformly random voxel of channel ``k`` (which must be present), searched in its box.

    Rejection sampling inside the bounding box is uniform over the channel's voxels and touches
    ``tries`` voxels; a thin structure that misses them all falls back to listing the box.
    """
    box = labels.bbox[k]
    lo, hi = np.array(box[:3]), np.array(box[3:])
    cand = rng.integers(lo, hi, size=(tries, 3))  # (tries, 3)
    hit = np.flatnonzero(labels.lut[k][labels.codes[cand[:, 0], cand[:, 1], cand[:, 2]]])
    if hit.size:
        return tuple(int(v) for v in cand[hit[0]])
    region = labels.codes[tuple(slice(a, b) for a, b in zip(lo, hi))]
    flat = np.flatnonzero(labels.lut[k][region])
    if not flat.size:
        raise ValueError(f"channel {labels.concepts[k]!r} has a bounding box but no voxel")
    return tuple(int(v) for v in np.unravel_index(int(rng.choice(flat)), region.shape) + lo)


def sample_crop(image: np.ndarray, labels: CodedLabels, cfg: SamplingConfig, rng: np.random.Generator,
                mirrors: dict[str, str] | None = None, pad_value: float | None = None,
                center_weights: dict[str, float] | None = None) -> dict:
    """Crop, choose queries, optionally flip left-right.

    Args:
        image: (C, X, Y, Z) float (float16 as stored is fine), RAS-oriented (axis 0 runs towards
            the patient's right).
        labels: code map of the same grid; every channel counts as annotated.
        mirrors: concept id -> mirror id for lateral concepts (needed for flips).
        pad_value: image value outside the case (default: the image minimum).
        center_weights: concept id -> weight of centring a foreground crop on it (default 1 each;
            the repeat factors of :mod:`sat.data.repeat_factor`).

    Returns:
        dict with ``image`` (C, *patch) float32, ``target`` (Q, *patch) bool (float32 occupancy
        with ``cfg.soft_targets``), ``concepts`` (Q ids).
    """
    patch = cfg.patch_size
    shape = image.shape[1:]
    if labels.codes.shape != shape:
        raise ValueError(f"label grid {labels.codes.shape} differs from the image grid {shape}")
    present = [k for k, p in enumerate(labels.present) if p]
    if present and rng.random() < cfg.foreground_prob:
        if center_weights:
            w = np.array([center_weights.get(labels.concepts[k], 1.0) for k in present])
            k = int(rng.choice(present, p=w / w.sum()))
        else:
            k = int(rng.choice(present))
        center = random_voxel(labels, k, rng)
    else:
        center = tuple(int(rng.integers(0, n)) for n in shape)
    draw = None
    if cfg.spatial_prob > 0 and rng.random() < cfg.spatial_prob:
        draw = draw_affine(patch, rng, cfg.rotate_deg, cfg.scale_range)
    size = draw.region if draw else tuple(patch)  # the region cut: the patch and the margin its warp reaches
    start = _crop_start(shape, patch, center, rng)
    origin = [s - (r - p) // 2 for s, r, p in zip(start, size, patch)]  # may lie outside the scan
    lo = [max(o, 0) for o in origin]
    hi = [min(o + r, n) for o, r, n in zip(origin, size, shape)]
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    pad = [(a - o, o + r - b) for o, a, b, r in zip(origin, lo, hi, size)]
    img = image[(slice(None), *sl)].astype(np.float32)  # (C, <=R, <=R, <=R)
    codes = labels.codes[sl]
    if any(a or b for a, b in pad):
        fill = float(image.min()) if pad_value is None else float(pad_value)
        img = np.pad(img, [(0, 0)] + pad, constant_values=fill)
        codes = np.pad(codes, pad, constant_values=labels.empty_code)
    seen = np.bincount(codes.ravel(), minlength=labels.lut.shape[1]) > 0
    inside = labels.lut[:, seen].any(1)  # (K,) channel present in the crop
    pos = [int(k) for k in np.flatnonzero(inside)]
    neg = [int(k) for k in np.flatnonzero(~inside)]
    rng.shuffle(pos)
    rng.shuffle(neg)
    pos = pos[: cfg.max_queries]
    n_neg = min(len(neg), max(1, int(round(cfg.negative_ratio * max(len(pos), 1)))), cfg.max_queries - len(pos))
    chosen = pos + neg[:max(n_neg, 0)]
    ids = [labels.concepts[k] for k in chosen]
    if cfg.soft_targets:
        if labels.soft is None:
            raise ValueError("sampling.soft_targets needs shards that hold the occupancy band; "
                             "rebuild them with `sat shards build` (shards from before it are refused)")
        target = np.pad(labels.soft_masks(chosen, sl), [(0, 0)] + pad)  # (Q, *region) float32
    else:
        target = np.take(labels.lut[chosen], codes, axis=1)  # (Q, *region) bool
    if draw is not None:  # a positive that the warp moves out of the patch stays a true negative there
        img, target = apply_affine(draw, img, target, patch)
    if cfg.lr_flip_prob > 0 and rng.random() < cfg.lr_flip_prob:
        if mirrors is None:
            raise ValueError("lr_flip_prob > 0 needs the mirror map to swap laterality labels")
        img, target = img[:, ::-1], target[:, ::-1]
        ids = [mirrors.get(c, c) for c in ids]
    return {"image": np.ascontiguousarray(img, dtype=np.float32),
            "target": np.ascontiguousarray(target), "concepts": ids}
