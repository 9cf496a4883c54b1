"""Procedural torso phantoms: the project's built-in, deterministic 3D data.

``generate_phantoms`` writes three sources in real layouts (MSD CT, nnU-Net v2 MR,
TotalSegmentator CT) plus ``splits.json`` (the intensity-window baseline that shows they need
spatial context is harness code: :mod:`sat.bench.intensity_baseline`). Names load lazily so
``python -m sat.data.phantoms.generate`` runs its module only once.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "CONCEPTS": "anatomy", "PhantomCase": "generate", "PhantomConfig": "generate",
    "generate_case": "generate", "generate_phantoms": "generate", "split_cases": "generate",
    "main": "generate", "SOURCES": "layouts", "SOURCE_CONCEPTS": "layouts", "read_case": "layouts",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
