"""What the training data looked like, per concept: the ranges plausibility checks compare against.

For every concept of the training shards (and every grouping concept whose parts a case holds, as
training adds them), per modality: how many cases showed it, the range of its volume in millilitres
(native grid), the range of the mean *normalised* intensity inside it (the network's input
units, so CT and MR are comparable with the same preprocessing at inference) and, for CT shards
that record it (``meta["native_mean"]``), the range of the mean Hounsfield units before
normalisation (``intensity_hu``, with ``hu_cases``: see :mod:`sat.infer.hounsfield`). Stored in the
exported checkpoint (``meta["extra"]["concept_stats"]``) and read by
:func:`sat.infer.plausibility.read_concept_stats`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class _Seen:
    volumes: list[float] = field(default_factory=list)
    intensities: list[float] = field(default_factory=list)
    hu: list[float] = field(default_factory=list)  # mean HU before normalisation (CT shards that have it)


def _quantiles(values: list[float]) -> list[float]:
    """[min, max] of the middle 98% (robust to one odd case), rounded for JSON."""
    lo, hi = np.percentile(np.asarray(values, dtype=np.float64), [1.0, 99.0])
    return [round(float(lo), 4), round(float(hi), 4)]


def _shard_files(specs: dict[str, str]) -> list[Path]:
    """Local shard files of ``{dataset: glob}`` (remote URLs are skipped: nothing is fetched)."""
    from sat.data.datamodule import expand_urls

    files = []
    for spec in specs.values():
        if "://" in spec or spec.startswith("pipe:"):
            continue
        try:
            files += [Path(f) for f in expand_urls(spec)]
        except FileNotFoundError:
            continue
    return files


def concept_stats(train: dict[str, str], groups: dict[str, list[str]] | None = None,
                  max_cases: int = 400) -> dict:
    """Per-concept, per-modality training ranges from local WebDataset shards.

    Args:
        train: dataset name -> shard glob (the data module's ``train``).
        groups: group id -> child ids; a case holding every child also shows the group.
        max_cases: cases read at most (spread over the shard files), bounding export time.

    Returns:
        ``{concept: {modality: {"cases", "volume_ml": [lo, hi], "intensity_norm": [lo, hi]}}}``, plus
        ``"intensity_hu": [lo, hi]`` and ``"hu_cases"`` for CT concepts whose shards recorded
        native means; empty when no local shard can be read.
    """
    from sat.data.shard_format import decode_case
    from sat.data.shard_verify import iter_tar_samples

    seen: dict[tuple[str, str], _Seen] = {}
    files = _shard_files(train)
    per_file = max(1, max_cases // max(1, len(files)))
    for path in files:
        try:
            samples = iter_tar_samples(path)
            for n, raw in enumerate(samples):
                if n >= per_file:
                    break
                case = decode_case(raw)
                _account(case, groups or {}, seen)
        except (OSError, ValueError, KeyError):
            continue  # an unreadable shard costs its own cases only
    out: dict = {}
    for (cid, modality), s in sorted(seen.items()):
        if s.volumes:
            entry = {"cases": len(s.volumes), "volume_ml": _quantiles(s.volumes),
                     "intensity_norm": _quantiles(s.intensities)}
            if s.hu and modality == "CT":
                entry.update(intensity_hu=_quantiles(s.hu), hu_cases=len(s.hu))
            out.setdefault(cid, {})[modality] = entry
    return out


def _account(case, groups: dict[str, list[str]], seen: dict) -> None:
    meta = case.meta
    modality = str(meta.get("modality") or "CT").upper()
    labels = case.labels.with_groups(groups) if groups else case.labels
    image = np.asarray(case.image[0], dtype=np.float32)  # (X, Y, Z) normalised channel 0
    native = dict(zip(meta["concepts"], meta.get("original_ml") or []))
    native_hu = dict(zip(meta["concepts"], meta.get("native_mean") or []))  # absent in older shards
    voxel_ml = float(np.prod(meta.get("spacing") or [1.0, 1.0, 1.0])) / 1000.0
    for k, cid in enumerate(labels.concepts):
        mask = labels.masks([k])[0]
        n = int(mask.sum())
        if n == 0:
            continue
        ml = native.get(cid)
        if ml is None:  # a group: the sum of its parts' native volumes when known
            parts = [native.get(c) for c in groups.get(cid, [])]
            ml = sum(parts) if parts and None not in parts else n * voxel_ml
        s = seen.setdefault((cid, modality), _Seen())
        s.volumes.append(float(ml))
        s.intensities.append(float(image[mask].mean()))
        hu = _native_mean(cid, groups, native, native_hu)
        if hu is not None:
            s.hu.append(hu)


def _native_mean(cid: str, groups: dict[str, list[str]], ml: dict, hu: dict) -> float | None:
    """A concept's mean native intensity, a group's as its parts' volume-weighted mean (``None``
    when a part's is unknown)."""
    if cid in hu:
        return None if hu[cid] is None else float(hu[cid])
    parts = groups.get(cid, [])
    if not parts or any(hu.get(c) is None or not ml.get(c) for c in parts):
        return None
    return sum(float(hu[c]) * float(ml[c]) for c in parts) / sum(float(ml[c]) for c in parts)

