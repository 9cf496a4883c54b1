"""CLIP-Driven Universal Model style head: text-controlled dynamic convolutions.

Each prompt's text embedding (plus an optional modality embedding) is joined with the globally
pooled bottleneck feature of its image; a controller MLP turns the pair into the weights and biases
of a small per-prompt stack of 1x1x1 convolutions (e.g. 8 -> 8 -> 8 -> 1), which runs on a
low-channel projection of the full-resolution decoder features. Prompts never interact, so a
prompt's mask does not depend on the other prompts in the batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sat.model.norm import ChannelSpatialNorm
from sat.model.text_projection import text_projection
from sat.vision.features import BackboneOutput


class DynamicConvHead(nn.Module):
    """Text + pooled image feature -> controller -> per-prompt 1x1x1 conv stack -> logits.

    Args:
        text_dim: width E of the input text embeddings.
        encoder_channels: widths of the backbone's encoder scales (finest first; the last is pooled).
        pixel_channels: width F of the full-resolution decoder features.
        decoder_channels: widths of the decoder scales, coarsest first, ending with ``F``.
        d_model: width of the text / image projections and of the controller.
        conv_channels: width C of the dynamic conv stack. conv_layers: number of dynamic convs.
        n_modalities: size of the learned modality embedding table (index 0 = unknown;
            1 turns modality conditioning off).
        deep_supervision: also return logits from coarser decoder scales in training.
        text_norm: end the text projection with a LayerNorm (see :mod:`sat.model.text_projection`).
    """

    def __init__(self, *, text_dim: int, encoder_channels: tuple[int, ...], pixel_channels: int,
                 decoder_channels: tuple[int, ...] = (), d_model: int = 256, conv_channels: int = 8,
                 conv_layers: int = 3, n_modalities: int = 5, deep_supervision: bool = False,
                 text_norm: bool = True) -> None:
        super().__init__()
        if conv_layers < 1 or conv_channels < 1:
            raise ValueError(f"dynamic_conv needs conv_layers >= 1 and conv_channels >= 1, "
                             f"got {conv_layers} and {conv_channels}")
        c = conv_channels
        self.shapes = [(c, c)] * (conv_layers - 1) + [(1, c)]  # (out, in) of each dynamic conv
        n_params = sum(o * i + o for o, i in self.shapes)
        self.text_proj = text_projection(text_dim, d_model, text_norm)
        # modality conditioning off (n_modalities == 1): modality indices are ignored
        self.modality = nn.Embedding(n_modalities, d_model) if n_modalities > 1 else None
        if self.modality is not None:
            nn.init.zeros_(self.modality.weight)
        self.image_proj = nn.Sequential(nn.LayerNorm(encoder_channels[-1]), nn.Linear(encoder_channels[-1], d_model))
        self.controller = nn.Sequential(nn.Linear(2 * d_model, d_model), nn.GELU(), nn.Linear(d_model, n_params))
        self.pre = self._pre(pixel_channels, c)
        self.aux = (nn.ModuleList(self._pre(ch, c) for ch in decoder_channels[:-1])
                    if deep_supervision else None)
        self.bias = nn.Parameter(torch.tensor(-2.0))

    @staticmethod
    def _pre(channels: int, out: int) -> nn.Module:
        """Low-channel projection of a decoder map that the dynamic convs run on."""
        return nn.Sequential(ChannelSpatialNorm(channels), nn.GELU(), nn.Conv3d(channels, out, kernel_size=1))

    def controller_params(self, feats: BackboneOutput, text: torch.Tensor,
                          modality: torch.Tensor | None = None) -> torch.Tensor:
        """(B, Q, P) flattened dynamic-conv parameters for each prompt."""
        t = self.text_proj(text)  # (B, Q, d)
        if modality is not None and self.modality is not None:
            t = t + self.modality(modality)[:, None, :]
        g = self.image_proj(feats.encoder[-1].mean(dim=(2, 3, 4)))  # (B, d)
        return self.controller(torch.cat([t, g[:, None, :].expand_as(t)], dim=-1))

    def run_convs(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Apply each prompt's conv stack. params: (B, Q, P); x: (B, C, D, H, W) -> (B, Q, D, H, W)."""
        b, _, *spatial = x.shape
        h = x.flatten(2)  # (B, C, N)
        offset = 0
        for k, (o, i) in enumerate(self.shapes):
            w = params[..., offset:offset + o * i].unflatten(-1, (o, i))  # (B, Q, o, i)
            bias = params[..., offset + o * i:offset + o * i + o]  # (B, Q, o)
            offset += o * i + o
            eq = "bqoi,bin->bqon" if k == 0 else "bqoi,bqin->bqon"
            h = torch.einsum(eq, w, h) + bias[..., None]  # (B, Q, o, N)
            if k < len(self.shapes) - 1:
                h = F.relu(h)
        return h.squeeze(2).unflatten(-1, tuple(spatial)) + self.bias  # (B, Q, D, H, W)

    def forward(self, feats: BackboneOutput, text: torch.Tensor, modality: torch.Tensor | None = None,
                pad: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Decode prompts.

        Args:
            feats: backbone features of B images.
            text: (B, Q, E) text embeddings of the prompts.
            modality: (B,) modality indices (0 = unknown) or ``None``.
            pad: (B, Q) True for padded queries (unused: prompts are independent).

        Returns:
            (B, Q, D, H, W) logits; with deep supervision in training, also a list of coarser
            (B, Q, d_i, h_i, w_i) logits, coarsest first.
        """
        params = self.controller_params(feats, text, modality)
        logits = self.run_convs(params, self.pre(feats.pixel))
        if self.aux is None or not self.training:
            return logits
        aux = [self.run_convs(params, pre(f)) for pre, f in zip(self.aux, feats.decoder[:-1])]
        return logits, aux
