"""Typed model configuration; variants are YAML files in ``configs/model/``.

A variant is data, never a class: ``configs/model/nano.yaml`` holds the fields of
:class:`ModelConfig` and :func:`sat.model.builder.build_model` is the only place that turns them
into modules. :func:`load_model_config` reads a variant by name or path.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from sat.resources import configs_dir
from sat.yaml_io import from_mapping, read_config

BACKBONES = ("unet", "dynunet", "swinunetr")
HEADS = ("query_decoder", "dynamic_conv")


@dataclass
class BackboneConfig:
    """Attributes:
        name: ``unet`` (MONAI BasicUNet blocks), ``dynunet`` (MONAI DynUNet, nnU-Net style) or
            ``swinunetr`` (MONAI SwinUNETR).
        channels: encoder widths per scale, finest first (unet, dynunet); swinunetr uses only
            ``channels[0]`` as its feature size (a multiple of 12).
        out_channels: full-resolution feature width (unet only; dynunet and swinunetr use
            ``channels[0]``).
        checkpointing: gradient checkpointing (recompute blocks in backward to save memory).
        checkpoint_min_patch: with ``checkpointing``, recompute only for inputs of at least this
            many voxels per side (0: always; unet and dynunet; see :mod:`sat.model.runtime`).
        norm: unet normalisation: ``instance`` (affine instance norm), ``batch``, or
            ``modality_instance`` (instance norm with a shared plus a per-modality scale and shift,
            for one backbone over CT and MR; :mod:`sat.vision.modality_norm`).
        modality_full_res: unet only: per-modality kernel offsets in the stem and the last decoder
            block, the two blocks that see each modality at its own voxel size
            (:mod:`sat.vision.modality_conv`).
        res_block: dynunet residual blocks.
        depths, num_heads, window_size: swinunetr transformer stages.
    """

    name: str = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128, 192)
    out_channels: int = 32
    checkpointing: bool = False
    checkpoint_min_patch: int = 0
    norm: str = "instance"
    modality_full_res: bool = False
    res_block: bool = True
    depths: tuple[int, ...] = (2, 2, 2, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7


@dataclass
class HeadConfig:
    """Attributes:
        name: ``query_decoder`` (SAT style) or ``dynamic_conv`` (CLIP-Driven Universal Model style).
        d_model: query width (query_decoder) / controller width (dynamic_conv).
        layers, heads: transformer decoder depth and heads (query_decoder).
        token_scales: coarsest encoder scales used as visual tokens (query_decoder).
        self_attn: queries attend to each other (query_decoder).
        deep_supervision: also return logits at coarser decoder scales in training.
        modality_conditioning: add a learned modality embedding to the text queries.
        conv_channels, conv_layers: dynamic_conv per-class 1x1x1 conv stack, e.g. 8 and 3 give
            8 -> 8 -> 8 -> 1.
        text_norm: LayerNorm at the end of the text projection (unit-scale queries from step one).
        interactive: clicks and boxes as extra query tokens (query_decoder only;
            :mod:`sat.model.prompt_encoder`).
    """

    name: str = "query_decoder"
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    token_scales: int = 2
    self_attn: bool = False
    deep_supervision: bool = False
    modality_conditioning: bool = True
    conv_channels: int = 8
    conv_layers: int = 3
    text_norm: bool = True
    interactive: bool = False


@dataclass
class ModelConfig:
    """The whole network: input channels, backbone, head and text width.

    Attributes:
        side_conditioning: add a learned left / right / none embedding to each query's text
            embedding, from the knowledge tree's laterality of the concept
            (:class:`~sat.model.universal.UniversalSegmenter`).
        channels_last: on CUDA, backbone weights and inputs in ``channels_last_3d`` layout.
        compile: on CUDA, ``torch.compile`` the backbone in training (:mod:`sat.model.runtime`).
    """

    in_channels: int = 1
    text_dim: int = 384
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    side_conditioning: bool = False
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        # jsonargparse and YAML may hand over plain dicts and lists
        if isinstance(self.backbone, dict):
            self.backbone = from_mapping(BackboneConfig, self.backbone, "model config", "backbone")
        if isinstance(self.head, dict):
            self.head = from_mapping(HeadConfig, self.head, "model config", "head")
        for name in ("channels", "depths", "num_heads"):
            setattr(self.backbone, name, tuple(getattr(self.backbone, name)))
        if self.backbone.norm != "instance" and self.backbone.name != "unet":
            raise ValueError(f"backbone.norm {self.backbone.norm!r} is a unet option; "
                             f"{self.backbone.name!r} uses its own normalisation")
        if self.backbone.modality_full_res and self.backbone.name != "unet":
            raise ValueError(f"backbone.modality_full_res is a unet option, not one of {self.backbone.name!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "model config") -> ModelConfig:
        """Inverse of :meth:`to_dict`; missing fields take their defaults.

        Raises:
            ConfigError: (a ``ValueError``) an unknown field or a bad value, named with ``source``.
        """
        return from_mapping(cls, d, source)


def model_config_dir() -> Path:
    """``configs/model``, packaged or of the checkout (:mod:`sat.resources`)."""
    return configs_dir("model")


def model_variants() -> list[str]:
    """Names of the YAML variants in :func:`model_config_dir`."""
    return sorted(p.stem for p in model_config_dir().glob("*.yaml"))


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """Read a variant: a name in ``configs/model`` (e.g. ``nano``) or a YAML file path.

    Raises:
        ValueError: unknown variant or malformed YAML fields.
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = model_config_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown model variant {str(name_or_path)!r}; expected a YAML path or one of "
                         f"{model_variants()}")
    return read_config(path, ModelConfig, "model variant")
