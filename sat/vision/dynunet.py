"""MONAI's DynUNet (the nnU-Net architecture) as a backbone that exposes every scale.

The blocks are MONAI's own (``input_block``, ``downsamples``, ``bottleneck``, ``upsamples``); only
the walk over them is written here so that each scale's features come back instead of the
output-block logits. The output block and MONAI's deep-supervision heads are never built into the
module, so no parameter is left without a gradient (DDP needs that).
"""
from __future__ import annotations

import torch
from monai.networks.nets import DynUNet
from torch import nn
from torch.utils.checkpoint import checkpoint

from sat.vision.features import BackboneOutput


class DynUNetBackbone(nn.Module):
    """nnU-Net-style encoder-decoder (3x3x3 kernels, stride-2 convolutions, transposed-conv upsampling).

    Args:
        in_channels: image channels.
        channels: widths per scale, finest first; ``len(channels) - 1`` downsamplings.
        res_block: residual blocks instead of plain double convolutions.
        checkpointing: recompute blocks in backward to save memory.
    """

    def __init__(self, *, in_channels: int = 1, channels: tuple[int, ...] = (32, 64, 128, 256, 320),
                 res_block: bool = True, checkpointing: bool = False) -> None:
        super().__init__()
        if len(channels) < 3:
            raise ValueError(f"dynunet channels needs at least three scales, got {channels!r}")
        n = len(channels)
        strides = [1] + [2] * (n - 1)
        net = DynUNet(3, in_channels, 1, kernel_size=[3] * n, strides=strides,
                      upsample_kernel_size=strides[1:], filters=list(channels), norm_name="instance",
                      res_block=res_block)
        # keep MONAI's blocks, drop its recursive wrapper and output head
        self.input_block, self.downsamples = net.input_block, net.downsamples
        self.bottleneck, self.upsamples = net.bottleneck, net.upsamples
        self.channels, self.checkpointing = tuple(channels), checkpointing
        self.out_channels = channels[0]
        self.downsample = 2 ** (n - 1)
        self.encoder_channels = self.channels
        self.decoder_channels = tuple(reversed(self.channels[:-1]))

    def _run(self, block: nn.Module, *args):
        if self.checkpointing and self.training:
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """x: (B, C_in, D, H, W) with D, H, W divisible by ``self.downsample``."""
        feats = [self._run(self.input_block, x)]  # (B, C0, D, H, W)
        for down in self.downsamples:
            feats.append(self._run(down, feats[-1]))
        y = self._run(self.bottleneck, feats[-1])  # (B, Cn, D/2^n, ...)
        encoder = [*feats, y]
        decoder = []
        for up, skip in zip(self.upsamples, reversed(feats)):
            y = self._run(up, y, skip)
            decoder.append(y)
        return BackboneOutput(pixel=y, encoder=encoder, decoder=decoder)
