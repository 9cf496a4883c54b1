"""Repeat-factor sampling of rare structures (LVIS-style), from the shard manifest.

Partially labelled datasets annotate some structures in only a fraction of their cases (OpenKBP:
the spinal cord in 166 of 167 training patients, the oesophagus in 58, the larynx in 80). Drawn
uniformly, a structure present in a third of the cases gets a third of the supervision, and in a
time-capped run it is the one left unlearned. Following the repeat-factor rule of Gupta et al.
(LVIS, CVPR 2019), a concept present in a fraction ``f`` of a dataset's training cases gets

    r(c) = max(1, (t / f) ** power)        (t: threshold, power 0.5 in LVIS)

A case is cropped ``crops_per_case * max r(c)`` times (over its present concepts, rounded
stochastically so the mean is exact), and a foreground crop centres on a present concept with
probability proportional to ``r(c)``. Frequencies come from the ``manifest.json`` that
``sat shards build`` writes beside the shards, so every worker and rank uses the same factors.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from sat.data.manifest import read_manifest

log = logging.getLogger(__name__)


def concept_frequencies(urls: list[str]) -> dict[str, float]:
    """Fraction of the training cases in ``urls`` in which each concept is present.

    Args:
        urls: local shard files of one dataset; their folders' manifests list every case's
            shard and present concepts.

    Returns:
        ``{concept id: fraction in (0, 1]}``; empty when a shard has no local manifest
        (remote shards), which disables repeats for that dataset with one warning.
    """
    names: dict[Path, set[str]] = {}
    for url in urls:
        if "://" in url or url.startswith("pipe:"):
            log.warning("repeat-factor sampling needs local shards with a manifest; %s is remote, "
                        "so its dataset is sampled uniformly", url)
            return {}
        names.setdefault(Path(url).parent, set()).add(Path(url).name)
    counts: Counter[str] = Counter()
    n = 0
    for folder, files in names.items():
        try:
            cases = read_manifest(folder)["cases"].values()
        except FileNotFoundError as err:
            log.warning("repeat-factor sampling off for %s: %s", folder, err)
            return {}
        for case in cases:
            if case.get("shard") in files:
                n += 1
                counts.update(set(case.get("present", [])))
    return {c: k / n for c, k in counts.items()} if n else {}


def repeat_factors(freq: dict[str, float], threshold: float, power: float = 0.5) -> dict[str, float]:
    """``{concept: max(1, (threshold / f) ** power)}``; threshold 0 gives every concept 1.

    Raises:
        ValueError: a negative threshold or a power outside (0, 1].
    """
    if threshold < 0 or not 0 < power <= 1:
        raise ValueError(f"repeat threshold must be >= 0 and power in (0, 1], got {threshold} and {power}")
    if threshold == 0:
        return {}
    return {c: max(1.0, (threshold / f) ** power) for c, f in freq.items() if f > 0}


def case_crops(present: list[str], factors: dict[str, float], crops_per_case: int,
               rng: np.random.Generator) -> int:
    """Crops for one case: ``crops_per_case * max r(c)`` over its present concepts, rounded
    stochastically (a case with r = 1.7 and 2 crops per case gets 3 or 4 crops, 3.4 on average)."""
    r = max((factors.get(c, 1.0) for c in present), default=1.0)
    want = crops_per_case * r
    base = int(np.floor(want))
    return base + int(rng.random() < want - base)
