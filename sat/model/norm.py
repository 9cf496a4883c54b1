"""Whole-sample normalisation of a feature map (``GroupNorm(1, C)``) with a parallel reduction.

``nn.GroupNorm(1, C)`` normalises each sample over all its channels and voxels. PyTorch's group
norm kernels parallelise over batch x groups, so with one group a single thread block reduces the
whole sample: on an H200 it took 57% of a ``base`` training step at 128³ (134 M values per
sample). :class:`ChannelSpatialNorm` computes the same statistics with ``torch.var_mean``, whose
reduction spreads over the whole device, then applies the per-channel affine in one fused
multiply-add. On the CPU, whose group norm kernel is vectorised over the sample and was 3x faster
than this in a fwd+bwd at 32 x 64³ on 2 threads, it calls ``F.group_norm``. Parameter names and shapes are those of ``nn.GroupNorm(1, C)`` (``weight`` and
``bias``, each ``(C,)``), so older checkpoints load unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelSpatialNorm(nn.Module):
    """Normalise each sample over channels and space, then scale and shift each channel.

    Args:
        num_channels: C.
        eps: added to the variance (as in ``nn.GroupNorm``).

    Input (B, C, *spatial) -> output of the same shape. Statistics are computed in float32 for
    half-precision inputs; like ``nn.GroupNorm``, the output is float32 under CUDA autocast and has
    the input's dtype otherwise.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        if num_channels < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}")
        self.num_channels, self.eps = num_channels, eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"expected (B, {self.num_channels}, ...) input, got shape {tuple(x.shape)}")
        if x.device.type == "cpu":  # the CPU group norm kernel is vectorised over the sample: 3x faster here
            return F.group_norm(x, 1, self.weight, self.bias, self.eps)
        return self.parallel_norm(x)

    def parallel_norm(self, x: torch.Tensor) -> torch.Tensor:
        """The accelerator path: ``var_mean`` over (C, *spatial), then one fused multiply-add."""
        stat = x if x.dtype in (torch.float32, torch.float64) else x.float()
        var, mean = torch.var_mean(stat, dim=tuple(range(1, x.ndim)), keepdim=True, correction=0)
        view = (1, -1) + (1,) * (x.ndim - 2)
        scale = self.weight.to(var.dtype).view(view) * torch.rsqrt(var + self.eps)  # (B, C, 1, ...)
        shift = self.bias.to(var.dtype).view(view) - mean * scale
        out = torch.addcmul(shift, x, scale)  # float32 (type promotion), one pass over x
        # CUDA autocast runs group_norm in float32 and returns float32; CPU autocast does not
        fp32_autocast = x.device.type == "cuda" and torch.is_autocast_enabled("cuda")
        return out if fp32_autocast else out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"
