"""MONAI's SwinUNETR as a backbone that exposes every scale.

MONAI's own ``forward`` runs unchanged: its output convolution is replaced by the identity (so
the network returns the full-resolution decoder features) and forward hooks on its encoder and
decoder blocks collect the other scales.
"""
from __future__ import annotations

import torch
from monai.networks.nets import SwinUNETR, swin_unetr
from monai.utils import optional_import
from torch import nn

from sat.vision.features import BackboneOutput

# MONAI SwinUNETR block names, finest first / coarsest first
_ENCODER = ("encoder1", "encoder2", "encoder3", "encoder4", "swin_stage3", "encoder10")
_DECODER = ("decoder5", "decoder4", "decoder3", "decoder2", "decoder1")


def _permute(x: torch.Tensor, pattern: str) -> torch.Tensor:
    """Axis permutations written einops-style (``"n c d h w -> n d h w c"``), nothing more."""
    src, dst = (side.split() for side in pattern.split("->"))
    return x.permute(*[src.index(a) for a in dst])


def _stash(module: nn.Module, _inputs, output) -> None:
    """Forward hook: keep the block's output on the block until the backbone collects it.

    A module-level function (not a closure over the backbone) so that copies of the backbone
    (``copy.deepcopy``, EMA) stash into their own blocks.
    """
    module.__dict__["_sat_out"] = output


def _ensure_rearrange() -> None:
    """SwinUNETR only permutes axes with einops; without einops installed, use :func:`_permute`."""
    if not optional_import("einops")[1]:
        swin_unetr.rearrange = _permute


class SwinUNETRBackbone(nn.Module):
    """Swin-transformer encoder with a convolutional U-Net decoder.

    Args:
        in_channels: image channels.
        feature_size: base width F (a multiple of 12); scales have F, F, 2F, 4F, 8F, 16F channels.
        depths, num_heads: blocks and attention heads of the four Swin stages.
        window_size: attention window (clipped to the grid at coarse scales).
        checkpointing: gradient checkpointing inside the Swin stages.
    """

    def __init__(self, *, in_channels: int = 1, feature_size: int = 24, depths: tuple[int, ...] = (2, 2, 2, 2),
                 num_heads: tuple[int, ...] = (3, 6, 12, 24), window_size: int = 7,
                 checkpointing: bool = False) -> None:
        super().__init__()
        _ensure_rearrange()
        if feature_size % 12:
            raise ValueError(f"swinunetr feature size (channels[0]) must be a multiple of 12, got {feature_size}")
        self.net = SwinUNETR(in_channels=in_channels, out_channels=1, feature_size=feature_size,
                             depths=tuple(depths), num_heads=tuple(num_heads), window_size=window_size,
                             use_checkpoint=checkpointing)
        self.net.out = nn.Identity()  # return decoder1's features, not logits
        f = feature_size
        self.out_channels, self.downsample = f, 32
        self.encoder_channels = (f, f, 2 * f, 4 * f, 8 * f, 16 * f)
        self.decoder_channels = (8 * f, 4 * f, 2 * f, f, f)
        for name in _ENCODER + _DECODER:
            if name != "swin_stage3":
                getattr(self.net, name).register_forward_hook(_stash)
        self.net.swinViT.register_forward_hook(_stash)

    def _take(self, name: str) -> torch.Tensor:
        if name == "swin_stage3":
            # normalised hidden states of the 4 Swin stages (plus patch embedding), finest first;
            # index 3 (8F channels, 1/16 resolution) is a skip that no conv block re-emits
            return self.net.swinViT.__dict__.pop("_sat_out")[3]
        return getattr(self.net, name).__dict__.pop("_sat_out")

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        """x: (B, C_in, D, H, W) with D, H, W divisible by 32 (and >= 64 in training)."""
        pixel = self.net(x)  # (B, F, D, H, W)
        return BackboneOutput(pixel=pixel, encoder=[self._take(k) for k in _ENCODER],
                              decoder=[self._take(k) for k in _DECODER])
