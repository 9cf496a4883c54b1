"""The one place that knows concrete classes: config -> :class:`UniversalSegmenter`.

Every backbone exposes ``encoder_channels`` (finest first), ``decoder_channels`` (coarsest first,
ending with the full-resolution width), ``out_channels`` and ``downsample`` (the factor patch
sizes must be divisible by); the heads are sized from those.
"""
from __future__ import annotations

import torch
from torch import nn

from sat.model.config import BACKBONES, HEADS, ModelConfig
from sat.model.universal import MODALITY_INDEX, UniversalSegmenter, side_index


def build_backbone(cfg: ModelConfig) -> nn.Module:
    """Backbone named by ``cfg.backbone.name``; ``ValueError`` for an unknown name."""
    b = cfg.backbone
    if b.name == "unet":
        from sat.vision.unet import UNetBackbone

        return UNetBackbone(in_channels=cfg.in_channels, channels=b.channels,
                            out_channels=b.out_channels, norm=b.norm, checkpointing=b.checkpointing,
                            modality_full_res=b.modality_full_res)
    if b.name == "dynunet":
        from sat.vision.dynunet import DynUNetBackbone

        return DynUNetBackbone(in_channels=cfg.in_channels, channels=b.channels, res_block=b.res_block,
                               checkpointing=b.checkpointing)
    if b.name == "swinunetr":
        from sat.vision.swinunetr import SwinUNETRBackbone

        return SwinUNETRBackbone(in_channels=cfg.in_channels, feature_size=b.channels[0], depths=b.depths,
                                 num_heads=b.num_heads, window_size=b.window_size,
                                 checkpointing=b.checkpointing)
    raise ValueError(f"unknown backbone {b.name!r}; expected one of {BACKBONES}")


def build_head(cfg: ModelConfig, backbone: nn.Module) -> nn.Module:
    """Head named by ``cfg.head.name``, sized from ``backbone``; ``ValueError`` for an unknown name."""
    h = cfg.head
    n_mod = len(MODALITY_INDEX) + 1 if h.modality_conditioning else 1
    if h.name == "query_decoder":
        from sat.model.query_decoder import QueryDecoderHead

        if not 1 <= h.token_scales <= len(backbone.encoder_channels):
            raise ValueError(f"token_scales must be in [1, {len(backbone.encoder_channels)}], got {h.token_scales}")
        return QueryDecoderHead(text_dim=cfg.text_dim, encoder_channels=backbone.encoder_channels,
                                pixel_channels=backbone.out_channels, d_model=h.d_model,
                                layers=h.layers, heads=h.heads, token_scales=h.token_scales,
                                n_modalities=n_mod, self_attn=h.self_attn, deep_supervision=h.deep_supervision,
                                decoder_channels=backbone.decoder_channels, text_norm=h.text_norm,
                                interactive=h.interactive)
    if h.interactive:
        raise ValueError(f"head.interactive needs the query_decoder head, not {h.name!r}")
    if h.name == "dynamic_conv":
        from sat.model.dynamic_conv import DynamicConvHead

        return DynamicConvHead(text_dim=cfg.text_dim, encoder_channels=backbone.encoder_channels,
                               pixel_channels=backbone.out_channels, decoder_channels=backbone.decoder_channels,
                               d_model=h.d_model, conv_channels=h.conv_channels, conv_layers=h.conv_layers,
                               n_modalities=n_mod, deep_supervision=h.deep_supervision, text_norm=h.text_norm)
    raise ValueError(f"unknown head {h.name!r}; expected one of {HEADS}")


def build_model(cfg: ModelConfig, concept_ids: list[str], concept_embeddings: torch.Tensor,
                lateralities: list[str] | None = None) -> UniversalSegmenter:
    """Assemble backbone, head and the frozen concept-embedding table.

    Args:
        cfg: the variant. concept_ids: row ids of ``concept_embeddings``.
        concept_embeddings: (Nc, text_dim) text embeddings, computed once by the text encoder.
        lateralities: side of each concept (``left`` / ``right`` / anything else = none); used
            when ``cfg.side_conditioning`` is on. ``None`` there leaves a zero table for a
            checkpoint's state dict to fill.

    Raises:
        ValueError: table shape does not match, or an unknown backbone / head name.
    """
    if concept_embeddings.shape != (len(concept_ids), cfg.text_dim):
        raise ValueError(f"concept_embeddings shape {tuple(concept_embeddings.shape)} != "
                         f"({len(concept_ids)}, {cfg.text_dim})")
    sides = None
    if cfg.side_conditioning:
        sides = torch.tensor([side_index(s) for s in lateralities] if lateralities is not None
                             else [0] * len(concept_ids), dtype=torch.long)
        if len(sides) != len(concept_ids):
            raise ValueError(f"{len(sides)} lateralities for {len(concept_ids)} concepts")
    from sat.model.runtime import apply_runtime

    backbone = build_backbone(cfg)
    net = UniversalSegmenter(backbone, build_head(cfg, backbone), concept_ids, concept_embeddings, sides)
    return apply_runtime(net, channels_last=cfg.channels_last, compile=cfg.compile,
                         checkpointing=cfg.backbone.checkpointing,
                         checkpoint_min_patch=cfg.backbone.checkpoint_min_patch)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; the frozen concept table is a buffer and never counted."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
