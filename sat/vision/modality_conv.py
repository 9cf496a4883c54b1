"""A 3D convolution whose kernel depends on the imaging modality of each sample.

The full-resolution blocks of a U-Net serving CT and MR see the two at their own voxel sizes (here
4 x 4 x 3 mm CT against 1 mm MR) and intensity worlds, so one 3 x 3 x 3 kernel bank has to describe
edges and textures of two different physical scales. :class:`ModalityConv3d` keeps that kernel
shared and adds a per-modality *offset*, initialised at zero: a fresh network is the plain one, an
unknown modality (index 0, never seen in training) uses the shared kernel. The offsets get no weight
decay, like every modality parameter (:func:`sat.train.optim.param_groups`). Only the blocks that ask for it carry offsets
(``UNetBackbone(modality_full_res=True)``: the stem and the last decoder block), and a batch of one
modality costs exactly one convolution, as before.

The modality arrives through :func:`sat.vision.modality_norm.set_modality`, as for the norms.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ModalityConv3d"]


class ModalityConv3d(nn.Conv3d):
    """``nn.Conv3d`` (stride 1, bias) plus a per-modality kernel and bias offset.

    Args:
        in_channels, out_channels, kernel_size, padding: as in ``nn.Conv3d``.
        num_modalities: rows M of the offsets (index 0: unknown).

    Input (B, C_in, D, H, W) -> (B, C_out, D', H', W'). ``self.modality`` is (B,) long or None
    (shared kernel alone). Parameters: ``weight``, ``bias`` as in ``nn.Conv3d``;
    ``modality_weight`` (M, C_out, C_in, k, k, k) and ``modality_bias`` (M, C_out), zero at start.
    """

    takes_modality = True

    def __init__(self, in_channels: int, out_channels: int, num_modalities: int, *, kernel_size: int = 3,
                 padding: int = 1) -> None:
        if num_modalities < 1:
            raise ValueError(f"num_modalities must be >= 1, got {num_modalities}")
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=True)
        self.num_modalities = num_modalities
        self.modality_weight = nn.Parameter(torch.zeros(num_modalities, *self.weight.shape))
        self.modality_bias = nn.Parameter(torch.zeros(num_modalities, out_channels))
        self.modality: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.modality
        if m is None:
            return super().forward(x)
        if m.shape != (x.shape[0],):
            raise ValueError(f"modality shape {tuple(m.shape)} does not match batch {x.shape[0]}")
        m = m.to(device=x.device, dtype=torch.long).clamp(0, self.num_modalities - 1)
        if bool((m == m[0]).all()):  # one modality in the batch: one convolution
            k = int(m[0])
            return self._conv_forward(x, self.weight + self.modality_weight[k], self.bias + self.modality_bias[k])
        # mixed batch: each sample its own kernel, as one grouped convolution over B groups
        b, c_out = x.shape[0], self.out_channels
        w = (self.weight + self.modality_weight[m]).reshape(b * c_out, *self.weight.shape[1:])
        bias = (self.bias + self.modality_bias[m]).reshape(-1)
        y = F.conv3d(x.reshape(1, -1, *x.shape[2:]), w, bias, padding=self.padding, groups=b)
        return y.reshape(b, c_out, *y.shape[2:])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", modalities={self.num_modalities}"
