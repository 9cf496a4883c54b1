"""Fixed sinusoidal position encodings for 3D token grids."""
from __future__ import annotations

import math

import torch


def sincos_3d(shape: tuple[int, int, int], dim: int, device=None) -> torch.Tensor:
    """Sinusoidal encoding of a (D, H, W) grid -> (D*H*W, dim); ``dim`` split over the 3 axes."""
    per_axis = (dim // 6) * 2  # even number of channels per axis
    parts = []
    grids = torch.meshgrid(*[torch.linspace(0, 1, n, device=device) for n in shape], indexing="ij")
    freqs = torch.exp(torch.arange(per_axis // 2, device=device) * (-math.log(1000.0) / max(per_axis // 2, 1)))
    for g in grids:
        ang = g.reshape(-1, 1) * freqs * 2 * math.pi * 8  # (N, per_axis/2)
        parts += [ang.sin(), ang.cos()]
    enc = torch.cat(parts, dim=1)
    return torch.nn.functional.pad(enc, (0, dim - enc.shape[1]))
