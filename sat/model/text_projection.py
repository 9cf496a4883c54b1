"""Prompt embeddings -> head width, at a scale the head can use.

Text encoders emit unit-norm vectors whose entries are about ``1/sqrt(E)``; pushed through a
default-initialised MLP they become queries far smaller than the visual context they are mixed
with, so every prompt starts out decoding the same mask and training stalls until the small
differences are amplified. A closing LayerNorm gives each query unit-scale entries from the first
step (``norm=False`` keeps the plain MLP).
"""
from __future__ import annotations

from torch import nn


def text_projection(text_dim: int, d_model: int, norm: bool = True) -> nn.Sequential:
    """(..., E) text embeddings -> (..., d_model) queries: Linear -> GELU -> Linear [-> LayerNorm]."""
    layers = [nn.Linear(text_dim, d_model), nn.GELU(), nn.Linear(d_model, d_model)]
    return nn.Sequential(*layers, *([nn.LayerNorm(d_model)] if norm else []))
