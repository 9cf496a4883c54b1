"""Preprocessing shared by shard building, training and inference.

One :class:`PreprocessSpec` travels inside checkpoints, so inference repeats exactly what training
saw: orient to an axis-aligned RAS grid at a fixed spacing, normalise intensities by modality, and
(for training data) crop to the foreground.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from sat.knowledge.modality import canonical_modality
from sat.volume.geometry import crop_affine, ras_grid, resample


@dataclass
class IntensityRule:
    """How one modality's intensities become network input.

    Attributes:
        clip: ``"window"`` clips to ``[low, high]`` in native units (CT: Hounsfield);
            ``"percentile"`` clips to the ``[low, high]`` percentiles of the image (MR).
        low, high: the clip bounds (values or percentiles).
        foreground: threshold (after clipping, in native units for ``window``, as a percentile
            for ``percentile``) above which a voxel counts as foreground for cropping.
        scale: ``"image"`` z-scores with the clipped image's own mean and standard deviation;
            ``"fixed"`` maps ``(x - center) / spread`` with constants, so one tissue gets one input
            value in every scan (for CT, where the image's own statistics depend on how much air
            the field of view holds: see ``data_shards/recipes/openkbp.yaml``).
        center, spread: the constants of ``scale: fixed`` (native units; ``spread`` > 0).
    """

    clip: str = "window"
    low: float = -500.0
    high: float = 1000.0
    foreground: float = -500.0
    scale: str = "image"
    center: float = 0.0
    spread: float = 1.0

    def __post_init__(self) -> None:
        if self.clip not in ("window", "percentile"):
            raise ValueError(f"unknown clip mode {self.clip!r}; expected 'window' or 'percentile'")
        if self.scale not in SCALES:
            raise ValueError(f"unknown intensity scale {self.scale!r}; expected one of {SCALES}")
        if self.scale == "fixed" and not float(self.spread) > 0:
            raise ValueError(f"intensity spread must be > 0, got {self.spread!r}")


SCALES = ("image", "fixed")


def default_rules() -> dict[str, IntensityRule]:
    return {
        "CT": IntensityRule("window", -500.0, 1000.0, -500.0),
        "MR": IntensityRule("percentile", 0.5, 99.5, 10.0),
    }


@dataclass
class PreprocessSpec:
    """Geometry and intensity rules; serialisable with :meth:`to_dict`.

    Attributes:
        spacing: target voxel spacing in mm (RAS axes).
        rules: intensity rule per modality name (``CT``, ``MR``; ``PET`` falls back to ``MR``).
        crop_margin_mm: margin kept around the foreground box when cropping.
        modality_spacing: spacing per modality where it differs from ``spacing``: a model trained
            on head-and-neck CT at 4 x 4 x 3 mm and hippocampus MR at 1 mm sees each modality
            on the grid it was trained on.
    """

    spacing: tuple[float, float, float] = (4.0, 4.0, 4.0)
    rules: dict[str, IntensityRule] = field(default_factory=default_rules)
    crop_margin_mm: float = 8.0
    modality_spacing: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def spacing_for(self, modality: str | None) -> tuple[float, float, float]:
        """The grid spacing (mm) of images of ``modality``."""
        sp = self.modality_spacing.get((modality or "").upper())
        return tuple(float(v) for v in sp) if sp is not None else tuple(self.spacing)

    def rule(self, modality: str) -> IntensityRule:
        key = modality.upper()
        if key in self.rules:
            return self.rules[key]
        if canonical_modality(key) in ("PET", "US"):  # no rule of their own: scaled as MR
            return self.rules["MR"]
        raise ValueError(f"no intensity rule for modality {modality!r}; known: {sorted(self.rules)}")

    def to_dict(self) -> dict:
        out = {"spacing": list(self.spacing), "crop_margin_mm": self.crop_margin_mm,
               "rules": {k: asdict(v) for k, v in self.rules.items()}}
        if self.modality_spacing:
            out["modality_spacing"] = {k.upper(): [float(v) for v in sp] for k, sp in self.modality_spacing.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        rules = {k: IntensityRule(**v) for k, v in d.get("rules", {}).items()} or default_rules()
        per = {str(k).upper(): tuple(float(v) for v in sp) for k, sp in (d.get("modality_spacing") or {}).items()}
        return cls(tuple(float(s) for s in d["spacing"]), rules, float(d.get("crop_margin_mm", 8.0)), per)


def default_rule(modality: str) -> IntensityRule | None:
    """The default rule of ``modality`` (PET and US scaled as MR); ``None`` for one without a rule."""
    try:
        return PreprocessSpec().rule(modality)
    except ValueError:
        return None


def normalize_intensity(image: np.ndarray, rule: IntensityRule) -> tuple[np.ndarray, float]:
    """Clip then z-score an image.

    Args:
        image: (X, Y, Z) float array in native units.
        rule: the modality's :class:`IntensityRule`.

    Returns:
        The normalised float32 image and the foreground threshold in normalised units.
    """
    img = image.astype(np.float32, copy=False)
    if rule.clip == "window":
        lo, hi = rule.low, rule.high
        fg = rule.foreground
    else:  # "percentile" (IntensityRule validates the mode)
        sample = img.ravel()[:: max(1, img.size // 500_000)]  # percentiles of a subsample
        lo, hi, fg = np.percentile(sample, [rule.low, rule.high, rule.foreground])
    img = np.clip(img, lo, hi)
    if rule.scale == "fixed":
        mean, std = float(rule.center), float(rule.spread)
    else:
        mean, std = float(img.mean()), float(img.std())
        std = std if std > 1e-6 else 1.0
    return (img - mean) / std, (float(np.clip(fg, lo, hi)) - mean) / std


def to_grid(image: np.ndarray, affine: np.ndarray, spec: PreprocessSpec,
            masks: np.ndarray | None = None, modality: str | None = None
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Resample image channels (trilinear) and masks (point sampling) onto the spec's RAS grid.

    The grid (:func:`sat.volume.geometry.ras_grid`) covers every input voxel whole. Image values
    in its rim beyond the outermost input voxel centres are the edge values; masks are point
    sampled as in shard building (:func:`sat.volume.label_resample.resample_codes`): each output
    voxel takes the input voxel its centre falls in.

    Args:
        image: (C, X, Y, Z) normalised image.
        affine: its 4x4 affine.
        masks: optional (K, X, Y, Z) boolean masks on the same grid.
        modality: picks the grid spacing (:meth:`PreprocessSpec.spacing_for`).

    Returns:
        ``(image (C, X', Y', Z') float32, masks (K, X', Y', Z') bool or None, new affine)``.
    """
    new_affine, new_shape = ras_grid(affine, image.shape[1:], spec.spacing_for(modality))
    img = torch.from_numpy(np.ascontiguousarray(image, np.float32))
    # the grid reaches half a source voxel past the outermost centres: edge values fill that rim
    # (zero padding would darken border voxels); only points outside every voxel get the minimum
    out = np.stack([resample(img[c:c + 1], affine, new_affine, new_shape, mode="bilinear",
                             padding=float(image[c].min()), padding_mode="edge")[0].numpy()
                    for c in range(len(img))])
    out_masks = None
    if masks is not None:
        from sat.volume.label_resample import resample_codes  # scipy.ndimage: not on the inference path

        out_masks = np.stack([resample_codes(np.ascontiguousarray(mk, dtype=np.uint8), affine, new_affine,
                                             new_shape).astype(bool) for mk in masks])
    return out, out_masks, new_affine


def foreground_box(image: np.ndarray, threshold: float, margin: tuple[int, int, int]
                   ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Bounding box ``(start, stop)`` of voxels above ``threshold``, grown by ``margin`` voxels."""
    fg = image > threshold
    if not fg.any():
        return (0, 0, 0), tuple(image.shape)
    idx = [np.flatnonzero(fg.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    start = tuple(max(0, int(i[0]) - m) for i, m in zip(idx, margin))
    stop = tuple(min(n, int(i[-1]) + 1 + m) for i, m, n in zip(idx, margin, image.shape))
    return start, stop


def preprocess_case(image: np.ndarray, affine: np.ndarray, modalities: list[str] | str,
                    spec: PreprocessSpec, masks: np.ndarray | None = None, crop: bool = True) -> dict:
    """Full preprocessing of one case: normalise, resample to RAS at the spec spacing, crop.

    Args:
        image: (C, X, Y, Z) or (X, Y, Z) native-unit image. affine: its 4x4 affine.
        modalities: modality per channel (``CT`` / ``MR`` / ...), or one for all channels.
        masks: optional (K, X, Y, Z) boolean per-concept masks (overlaps allowed).
        crop: crop to channel 0's foreground box plus the spec's margin.

    Returns:
        dict with ``image`` (C, X', Y', Z') float32, ``masks`` (K, X', Y', Z') bool or None,
        ``affine`` (4x4 of the output grid).
    """
    image = image[None] if image.ndim == 3 else image
    mods = [modalities] * len(image) if isinstance(modalities, str) else list(modalities)
    if len(mods) != len(image):
        raise ValueError(f"{len(image)} image channels but modalities {mods!r}")
    norm, thresholds = zip(*(normalize_intensity(c, spec.rule(m)) for c, m in zip(image, mods)))
    img, m, aff = to_grid(np.stack(norm), affine, spec, masks, mods[0])
    if crop:
        margin = tuple(int(np.ceil(spec.crop_margin_mm / s)) for s in spec.spacing_for(mods[0]))
        start, stop = foreground_box(img[0], thresholds[0], margin)
        sl = tuple(slice(a, b) for a, b in zip(start, stop))
        img = img[(slice(None), *sl)]
        m = m[(slice(None), *sl)] if m is not None else None
        aff = crop_affine(aff, start)
    return {"image": np.ascontiguousarray(img), "masks": m, "affine": aff}
