"""The intensity rules the training shards were normalised with.

A recipe may replace its modality's default rule (``intensity:``, see
:class:`sat.data.recipes.Recipe`); every shard sample records the rule its image went through
(``meta["intensity"]``). Training reads them here: two datasets of one modality normalised
differently are refused before the first step, and the exported checkpoint carries the rules, so
inference normalises each modality exactly as its training shards were.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from sat.volume.preprocess import IntensityRule, PreprocessSpec, default_rule

log = logging.getLogger(__name__)


def _first_meta(path: Path) -> dict | None:
    """The ``json`` metadata of a local shard's first sample (``None`` when it has none)."""
    from sat.data.shard_verify import iter_tar_samples

    for raw in iter_tar_samples(path):
        return json.loads(raw["json"]) if "json" in raw else None
    return None


def shard_rules(train: dict[str, str]) -> dict[str, IntensityRule]:
    """``{modality: rule}`` recorded in the first sample of each dataset's first local shard.

    Args:
        train: dataset name -> shard glob (a data module's ``train``). Remote shards are not
            fetched: their datasets count as normalised with the default rule, with a warning.

    Raises:
        ValueError: two datasets of one modality with different rules (both named).
    """
    from sat.data.datamodule import expand_urls

    found: dict[str, tuple[str, dict]] = {}
    for name, spec in sorted(train.items()):
        if "://" in spec or spec.startswith("pipe:"):
            log.warning("dataset %s: remote shards, intensity rule assumed to be the default", name)
            continue
        try:
            meta = _first_meta(Path(expand_urls(spec)[0]))
        except (FileNotFoundError, OSError, ValueError):
            continue  # the data module reports unreadable shards itself
        if not meta:
            continue
        modality = str(meta.get("modality") or "CT").upper()
        default = default_rule(modality)
        # shards from before rules were recorded went through the modality's default rule
        rule = meta.get("intensity") or (asdict(default) if default else None)
        if rule is None:
            continue
        seen = found.setdefault(modality, (name, rule))
        if seen[1] != rule:
            raise ValueError(f"datasets {seen[0]!r} and {name!r} normalise {modality} differently "
                             f"({seen[1]} vs {rule}); rebuild one so each modality has one intensity rule")
    return {m: IntensityRule(**r) for m, (_, r) in found.items()}


def training_spec(spacing, modality_spacing: dict, train: dict[str, str]) -> PreprocessSpec:
    """The checkpoint's preprocessing: the model's grids and the shards' intensity rules."""
    spec = PreprocessSpec(spacing=tuple(spacing), modality_spacing=dict(modality_spacing or {}))
    spec.rules.update(shard_rules(train))
    return spec
