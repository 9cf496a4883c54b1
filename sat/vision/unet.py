"""A 3D U-Net backbone (BasicUNet layout, plain-torch blocks) exposing every scale.

The text-conditioned heads need more than a segmentation map: per-voxel decoder features for
mask dot-products and coarse encoder features as visual tokens, so this backbone returns all of
them instead of a logit map. The blocks (:mod:`sat.vision.blocks`) are torch-only so that inference
never imports MONAI; their parameter names match MONAI's BasicUNet blocks, so checkpoints saved
from the earlier MONAI-built version of this backbone still load.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from sat.vision.blocks import NORMS, DoubleConv, DownStep, UpStep
from sat.vision.features import BackboneOutput
from sat.vision.modality_norm import set_modality

__all__ = ["BackboneOutput", "UNetBackbone"]


class UNetBackbone(nn.Module):
    """Encoder-decoder 3D U-Net (InstanceNorm + LeakyReLU; max-pool down, transposed-conv up).

    Args:
        in_channels: image channels.
        channels: encoder widths per scale; ``len(channels) - 1`` downsamplings.
        out_channels: width F of the full-resolution feature map.
        norm: ``instance`` (affine), ``batch`` or ``modality_instance`` (instance norm with a
            shared plus a per-modality affine; :mod:`sat.vision.modality_norm`).
        checkpointing: recompute encoder blocks in backward to save memory.
        modality_full_res: per-modality kernel offsets (:mod:`sat.vision.modality_conv`) in the two
            full-resolution blocks, the stem and the last decoder block; every other block stays shared.
    """

    def __init__(self, *, in_channels: int = 1, channels: tuple[int, ...] = (16, 32, 64, 128, 192),
                 out_channels: int = 32, norm: str = "instance", checkpointing: bool = False,
                 modality_full_res: bool = False) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two scales, got {channels!r}")
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")
        self.channels, self.out_channels, self.checkpointing = tuple(channels), out_channels, checkpointing
        self.conditions_on_modality = norm == "modality_instance" or modality_full_res
        self.stem = DoubleConv(in_channels, channels[0], norm=norm, modality_conv=modality_full_res)
        self.downs = nn.ModuleList(DownStep(channels[i], channels[i + 1], norm=norm)
                                   for i in range(len(channels) - 1))
        ups = []
        for i in range(len(channels) - 1, 0, -1):
            out = out_channels if i == 1 else channels[i - 1]
            ups.append(UpStep(channels[i], channels[i - 1], out, norm=norm, modality_conv=modality_full_res and i == 1))
        self.ups = nn.ModuleList(ups)
        self.downsample = 2 ** (len(channels) - 1)
        self.encoder_channels = self.channels  # finest first
        self.decoder_channels = (*reversed(self.channels[1:-1]), out_channels)  # coarsest first

    def _run(self, block: nn.Module, *args):
        if self.checkpointing and self.training:
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def forward(self, x: torch.Tensor, modality: torch.Tensor | None = None) -> BackboneOutput:
        """x: (B, C_in, D, H, W) with D, H, W divisible by ``self.downsample``; modality: (B,) long
        indices (:data:`sat.model.universal.MODALITY_INDEX`) or None, used by ``modality_instance``
        and ``modality_full_res``."""
        if self.conditions_on_modality:
            set_modality(self, modality)
        feats = [self._run(self.stem, x)]
        for down in self.downs:
            feats.append(self._run(down, feats[-1]))
        y = feats[-1]
        decoder = []
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            y = self._run(up, y, skip)
            decoder.append(y)
        return BackboneOutput(pixel=y, encoder=feats, decoder=decoder)
