"""The small JSON written next to a knowledge-pretrained encoder's weights.

``encoder.safetensors`` is accompanied by ``encoder.json`` holding the resolver threshold that was
calibrated for it, the tree hash and the split seed. :func:`sat.text.resolver_factory.build_resolver`
reads the threshold from here, so an encoder and its threshold always travel together.
"""
from __future__ import annotations

import json
from pathlib import Path


def sidecar_path(weights: str | Path) -> Path:
    """``foo.safetensors`` -> ``foo.json``."""
    return Path(weights).with_suffix(".json")


def read_sidecar(weights: str | Path | None) -> dict:
    """The sidecar's content, or ``{}`` when there is none or it is unreadable."""
    if not weights:
        return {}
    from sat.text.bundle import is_memory_ref, memory_sidecar

    if is_memory_ref(weights):  # a checkpoint's delta: its sidecar travelled with it, in memory
        return memory_sidecar(weights)
    path = sidecar_path(weights)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_sidecar(weights: str | Path, meta: dict) -> Path:
    """Merge ``meta`` into the sidecar of ``weights`` and return its path."""
    path = sidecar_path(weights)
    path.write_text(json.dumps({**read_sidecar(weights), **meta}, indent=2, sort_keys=True) + "\n",
                    encoding="utf-8")
    return path


def calibrated_threshold(spec) -> float | None:
    """The threshold stored beside ``spec.finetuned``, if any."""
    value = read_sidecar(getattr(spec, "finetuned", None)).get("threshold")
    return float(value) if isinstance(value, (int, float)) else None
