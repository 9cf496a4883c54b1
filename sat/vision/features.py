"""The feature bundle every backbone returns."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BackboneOutput:
    """Features of one image batch.

    Attributes:
        pixel: (B, F, D, H, W) full-resolution decoder features.
        encoder: encoder features, finest first: [(B, C0, D, H, W), ..., (B, Cn, D/2^n, ...)].
        decoder: decoder features, coarsest first, ending with ``pixel`` (deep supervision).
    """

    pixel: torch.Tensor
    encoder: list[torch.Tensor]
    decoder: list[torch.Tensor]
