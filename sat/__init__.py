"""Text-prompted universal 3D medical image segmentation.

Heavy dependencies (torch, MONAI, Lightning) load lazily, so ``import sat`` is cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Segmenter", "__version__"]


def __getattr__(name: str):
    if name == "Segmenter":
        from sat.infer.segmenter import Segmenter

        return Segmenter
    raise AttributeError(f"module 'sat' has no attribute {name!r}")
