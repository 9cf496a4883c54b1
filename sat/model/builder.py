"""The one place that knows concrete classes: config -> :class:`UniversalSegmenter`."""
from __future__ import annotations

import torch

from sat.model.config import ModelConfig
from sat.model.universal import UniversalSegmenter


def build_backbone(cfg: ModelConfig):
    b = cfg.backbone
    if b.name == "unet":
        from sat.vision.unet import UNetBackbone

        return UNetBackbone(in_channels=cfg.in_channels, channels=b.channels,
                            out_channels=b.out_channels, checkpointing=b.checkpointing)
    raise ValueError(f"unknown backbone {b.name!r}; expected 'unet'")


def build_head(cfg: ModelConfig, backbone):
    h = cfg.head
    if h.name == "query_decoder":
        from sat.model.query_decoder import QueryDecoderHead

        dec_ch = tuple(reversed(backbone.channels[:-1]))[:-1] + (backbone.out_channels,)
        return QueryDecoderHead(text_dim=cfg.text_dim, encoder_channels=backbone.channels,
                                pixel_channels=backbone.out_channels, d_model=h.d_model,
                                layers=h.layers, heads=h.heads, token_scales=h.token_scales,
                                n_modalities=5 if h.modality_conditioning else 1,
                                self_attn=h.self_attn, deep_supervision=h.deep_supervision,
                                decoder_channels=dec_ch)
    raise ValueError(f"unknown head {h.name!r}; expected 'query_decoder'")


def build_model(cfg: ModelConfig, concept_ids: list[str], concept_embeddings: torch.Tensor
                ) -> UniversalSegmenter:
    """Assemble backbone, head and the frozen concept-embedding table."""
    if concept_embeddings.shape != (len(concept_ids), cfg.text_dim):
        raise ValueError(f"concept_embeddings shape {tuple(concept_embeddings.shape)} != "
                         f"({len(concept_ids)}, {cfg.text_dim})")
    backbone = build_backbone(cfg)
    return UniversalSegmenter(backbone, build_head(cfg, backbone), concept_ids, concept_embeddings)
