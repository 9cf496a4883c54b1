"""Typed model configuration; variants are YAML files in ``configs/model/``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class BackboneConfig:
    """Attributes:
        name: ``unet`` (MONAI BasicUNet blocks).
        channels: encoder widths per scale. out_channels: full-resolution feature width.
        checkpointing: gradient checkpointing of backbone blocks.
    """

    name: str = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128, 192)
    out_channels: int = 32
    checkpointing: bool = False


@dataclass
class HeadConfig:
    """Attributes:
        name: ``query_decoder``.
        d_model, layers, heads: transformer decoder size. token_scales: encoder scales as tokens.
        self_attn: queries attend to each other. deep_supervision: coarse-scale auxiliary logits.
        modality_conditioning: add a learned modality embedding to the queries.
    """

    name: str = "query_decoder"
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    token_scales: int = 2
    self_attn: bool = False
    deep_supervision: bool = False
    modality_conditioning: bool = True


@dataclass
class ModelConfig:
    """The whole network: input channels, backbone, head and text width."""

    in_channels: int = 1
    text_dim: int = 384
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        b = dict(d.get("backbone", {}))
        if "channels" in b:
            b["channels"] = tuple(b["channels"])
        return cls(in_channels=d.get("in_channels", 1), text_dim=d.get("text_dim", 384),
                   backbone=BackboneConfig(**b), head=HeadConfig(**d.get("head", {})))
