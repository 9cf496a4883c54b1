"""Plain-torch U-Net blocks: double convolution, max-pool down step, transposed-conv up step.

Written so that inference imports only torch (importing MONAI costs seconds on a small CPU
machine). Module and parameter names follow the layout of MONAI's BasicUNet blocks
(``conv_0.conv``, ``conv_0.adn.N``, ``upsample.deconv``, ...), so state dicts saved from a
backbone built on those blocks load strictly into one built on these and give the same outputs;
``tests/vision/test_blocks.py`` checks that against MONAI.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sat.knowledge.modality import MODALITIES

__all__ = ["NORMS", "ConvNormAct", "DoubleConv", "DownStep", "UpStep"]

NORMS = ("instance", "batch", "modality_instance")
# rows of the modality norm's offsets: 0 unknown, then sat.model.universal.MODALITY_INDEX (CT 1, MR 2, ...)
NUM_MODALITIES = len(MODALITIES) + 1


def _norm(kind: str, channels: int) -> nn.Module:
    """Affine instance norm (no running statistics), batch norm, or instance norm with a
    per-modality affine (:class:`~sat.vision.modality_norm.ModalityInstanceNorm`) over ``channels``."""
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "modality_instance":
        from sat.vision.modality_norm import ModalityInstanceNorm

        return ModalityInstanceNorm(channels, NUM_MODALITIES)
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


class ConvNormAct(nn.Sequential):
    """3x3x3 convolution (padding 1, bias) -> norm -> LeakyReLU(0.01).

    Children ``conv`` and ``adn`` (itself holding ``N`` and ``A``) keep the checkpoint key layout.

    Args:
        in_channels: input width.
        out_channels: output width.
        norm: one of :data:`NORMS`.
        modality_conv: a per-modality kernel offset (:class:`~sat.vision.modality_conv.ModalityConv3d`).
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "instance",
                 modality_conv: bool = False) -> None:
        super().__init__()
        if modality_conv:
            from sat.vision.modality_conv import ModalityConv3d

            self.conv = ModalityConv3d(in_channels, out_channels, NUM_MODALITIES)
        else:
            self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=True)
        adn = nn.Sequential()
        adn.add_module("N", _norm(norm, out_channels))
        adn.add_module("A", nn.LeakyReLU(negative_slope=0.01, inplace=True))
        self.adn = adn


class DoubleConv(nn.Sequential):
    """Two :class:`ConvNormAct` layers, ``conv_0`` (in -> out) and ``conv_1`` (out -> out).

    Maps (B, C_in, D, H, W) to (B, C_out, D, H, W). ``modality_conv``: both convolutions get
    per-modality kernel offsets.
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "instance",
                 modality_conv: bool = False) -> None:
        super().__init__()
        self.conv_0 = ConvNormAct(in_channels, out_channels, norm=norm, modality_conv=modality_conv)
        self.conv_1 = ConvNormAct(out_channels, out_channels, norm=norm, modality_conv=modality_conv)


class DownStep(nn.Sequential):
    """2x max pooling then :class:`DoubleConv`: (B, C_in, D, H, W) -> (B, C_out, D/2, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "instance") -> None:
        super().__init__()
        self.max_pooling = nn.MaxPool3d(kernel_size=2)
        self.convs = DoubleConv(in_channels, out_channels, norm=norm)


class _Deconv(nn.Sequential):
    """Holder that puts the transposed convolution under the key ``upsample.deconv``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose3d(in_channels, out_channels, kernel_size=2, stride=2, bias=True)


class UpStep(nn.Module):
    """2x transposed-conv upsampling to ``in_channels // 2``, concat with the skip, :class:`DoubleConv`.

    Args:
        in_channels: width C of the coarse input.
        skip_channels: width S of the encoder skip features.
        out_channels: output width.
        norm: one of :data:`NORMS`.
        modality_conv: per-modality kernel offsets in the :class:`DoubleConv`.
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, *, norm: str = "instance",
                 modality_conv: bool = False) -> None:
        super().__init__()
        up = in_channels // 2
        self.upsample = _Deconv(in_channels, up)
        self.convs = DoubleConv(skip_channels + up, out_channels, norm=norm, modality_conv=modality_conv)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """x: (B, C, d, h, w); skip: (B, S, D, H, W) with D in {2d, 2d + 1} (same for H, W).

        Returns (B, out_channels, D, H, W). An odd skip extent (from flooring max pooling) is met by
        repeating the upsampled map's last slice along that axis.
        """
        y = self.upsample(x)  # (B, C // 2, 2d, 2h, 2w)
        pad = []  # F.pad order: last axis first, (before, after) per axis
        for axis in range(1, y.dim() - 1):
            pad += [0, int(skip.shape[-axis] != y.shape[-axis])]
        if any(pad):
            y = F.pad(y, pad, mode="replicate")
        return self.convs(torch.cat([skip, y], dim=1))  # (B, S + C // 2, D, H, W) in
