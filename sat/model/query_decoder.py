"""SAT-style query decoder head.

Text queries cross-attend to multi-scale visual tokens (coarse encoder scales pooled to the
coarsest grid, concatenated, projected, plus 3D sinusoidal positions). Each refined query becomes
a mask embedding whose dot product with the per-voxel decoder features gives one logit map per
prompt. Queries do not attend to each other by default (as in SAT), so a prompt's mask does not
depend on which other prompts are asked in the same batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sat.model.norm import ChannelSpatialNorm
from sat.model.posenc import sincos_3d
from sat.model.prompt_encoder import PromptEncoder
from sat.model.prompts import Prompts
from sat.model.text_projection import text_projection
from sat.vision.features import BackboneOutput


class DecoderLayer(nn.Module):
    """Pre-norm (optional self-attention) -> cross-attention -> feed-forward."""

    def __init__(self, d: int, heads: int, self_attn: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True) if self_attn else None
        self.n0 = nn.LayerNorm(d) if self_attn else None
        self.cross = nn.MultiheadAttention(d, heads, batch_first=True)
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, q: torch.Tensor, tokens: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """q: (B, Q, d); tokens: (B, N, d); pad: (B, Q) True where the query is padding."""
        if self.self_attn is not None:
            h = self.n0(q)
            q = q + self.self_attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        q = q + self.cross(self.n1(q), tokens, tokens, need_weights=False)[0]
        return q + self.ffn(self.n2(q))


class QueryDecoderHead(nn.Module):
    """Text queries x visual tokens -> per-prompt logit maps.

    Args:
        text_dim: width E of the input text embeddings.
        encoder_channels: widths of the backbone's encoder scales (finest first).
        pixel_channels: width F of the backbone's full-resolution features.
        d_model: token and query width. layers / heads: transformer decoder depth and heads.
        token_scales: how many of the coarsest encoder scales become tokens.
        n_modalities: size of the learned modality embedding table (index 0 = unknown;
            1 turns modality conditioning off).
        self_attn: let queries attend to each other.
        deep_supervision: also return logits from coarser decoder scales.
        decoder_channels: widths of the backbone's decoder scales, coarsest first, ending with
            ``pixel_channels`` (only the coarser ones get deep-supervision projections).
        text_norm: end the text projection with a LayerNorm (see :mod:`sat.model.text_projection`).
        interactive: add a :class:`~sat.model.prompt_encoder.PromptEncoder` (clicks and boxes as
            extra tokens; without prompts the logits are exactly those of the plain head).
    """

    def __init__(self, *, text_dim: int, encoder_channels: tuple[int, ...], pixel_channels: int,
                 d_model: int = 128, layers: int = 2, heads: int = 4, token_scales: int = 2,
                 n_modalities: int = 5, self_attn: bool = False, deep_supervision: bool = False,
                 decoder_channels: tuple[int, ...] = (), text_norm: bool = True,
                 interactive: bool = False) -> None:
        super().__init__()
        self.token_scales = token_scales
        tok_in = sum(encoder_channels[-token_scales:])
        self.token_proj = nn.Conv3d(tok_in, d_model, kernel_size=1)
        self.text_proj = text_projection(text_dim, d_model, text_norm)
        # modality conditioning off (n_modalities == 1): modality indices are ignored
        self.modality = nn.Embedding(n_modalities, d_model) if n_modalities > 1 else None
        if self.modality is not None:
            nn.init.zeros_(self.modality.weight)
        self.layers = nn.ModuleList(DecoderLayer(d_model, heads, self_attn) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.mask_embed = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, pixel_channels))
        # start from a uniform background prior: large random initial logits slow training badly
        nn.init.zeros_(self.mask_embed[-1].weight)
        nn.init.zeros_(self.mask_embed[-1].bias)
        self.pixel_norm = ChannelSpatialNorm(pixel_channels)  # = GroupNorm(1, F), parallel reduction
        self.bias = nn.Parameter(torch.tensor(-3.0))
        self.aux = (nn.ModuleList(nn.Linear(d_model, c) for c in decoder_channels[:-1])
                    if deep_supervision else None)
        self.prompt: PromptEncoder | None = None
        if interactive:
            self.add_prompt_encoder()

    def add_prompt_encoder(self) -> PromptEncoder:
        """Attach a fresh (untrained: the prior rule) prompt encoder if there is none; return it."""
        if self.prompt is None:
            d = self.norm.normalized_shape[0]
            heads = self.layers[0].cross.num_heads if len(self.layers) else 4
            self.prompt = PromptEncoder(d, self.pixel_norm.num_channels, heads, max(len(self.layers), 1))
            self.prompt.to(self.bias.device)
        return self.prompt

    def tokens(self, feats: BackboneOutput) -> torch.Tensor:
        """Visual tokens (B, N, d) from the coarsest ``token_scales`` encoder scales."""
        coarse = feats.encoder[-self.token_scales:]
        grid = coarse[-1].shape[2:]
        pooled = [F.adaptive_avg_pool3d(f, grid) if f.shape[2:] != grid else f for f in coarse]
        t = self.token_proj(torch.cat(pooled, dim=1))  # (B, d, d', h', w')
        t = t.flatten(2).transpose(1, 2)  # (B, N, d)
        return t + sincos_3d(tuple(grid), t.shape[-1], device=t.device).to(t.dtype)

    def forward(self, feats: BackboneOutput, text: torch.Tensor, modality: torch.Tensor | None = None,
                pad: torch.Tensor | None = None, prompts: Prompts | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Decode prompts.

        Args:
            feats: backbone features of B images.
            text: (B, Q, E) text embeddings of the prompts.
            modality: (B,) modality indices (0 = unknown) or ``None``.
            pad: (B, Q) True for padded queries.
            prompts: clicks and boxes per query in this grid's voxels (:class:`Prompts`), or ``None``.

        Returns:
            (B, Q, D, H, W) logits; with deep supervision in training, also a list of coarser
            (B, Q, d_i, h_i, w_i) logits.
        """
        if prompts is not None and self.prompt is None:
            raise ValueError("this head has no prompt encoder (model.head.interactive is off); "
                             "call add_prompt_encoder() first")
        use = prompts is not None and not prompts.is_empty()
        q = self.text_proj(text)  # (B, Q, d)
        if use:
            q = self.prompt.with_null_query(q, prompts)
        if modality is not None and self.modality is not None:
            q = q + self.modality(modality)[:, None, :]
        tokens = self.tokens(feats)
        pixel = self.pixel_norm(feats.pixel)
        if use:
            ptok, pmask, feat = self.prompt.embed(prompts, pixel, feats.encoder[-1].shape[2:])
        for i, layer in enumerate(self.layers):
            q = layer(q, tokens, pad)
            if use:
                q, ptok = self.prompt.layers[i](q, ptok, pmask, tokens, ~prompts.has_text)
        q = self.norm(q)
        if use:
            g = torch.einsum("bqf,bfdhw->bqdhw", self.mask_embed(q), pixel)
            logits = self.prompt.logits(g, ptok, feat, prompts, pixel) + self.bias
        else:
            logits = torch.einsum("bqf,bfdhw->bqdhw", self.mask_embed(q), pixel) + self.bias
        if self.aux is None or not self.training:
            return logits
        aux = [torch.einsum("bqf,bfdhw->bqdhw", proj(q), f) + self.bias
               for proj, f in zip(self.aux, feats.decoder[:-1])]
        return logits, aux
