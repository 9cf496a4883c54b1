"""A concept table without text: one one-hot row per concept (the text-side ablation).

With this table the head's text projection (a ``Linear`` on the table rows) holds one learned
column per concept, i.e. a learned class embedding as in index-prompted models (VISTA3D). Nothing
relates two concepts, and text outside the knowledge tree's lexicon cannot be embedded at all.
"""
from __future__ import annotations

import torch


def onehot_table(n: int, dim: int) -> torch.Tensor:
    """(n, dim) float32 identity rows, zero-padded on the right to ``dim`` columns.

    Raises:
        ValueError: ``dim < n`` (one-hot rows need a column per concept; raise ``text_dim``).
    """
    if n < 1:
        raise ValueError(f"onehot_table needs at least one concept, got n={n}")
    if dim < n:
        raise ValueError(f"a one-hot concept table needs text_dim >= {n} (one column per concept), got {dim}")
    return torch.eye(n, dim, dtype=torch.float32)
