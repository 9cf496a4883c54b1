"""Clicks and boxes as extra query tokens of the query decoder (interactive refinement).

Each query gets a small set of prompt tokens: one always-present summary token, one token per click
(the sinusoidal encoding of its position in the visual-token frame, a learned type embedding for
positive / negative, and the projected decoder feature under the click) and two box-corner tokens
(3D or 2D-box type). In every decoder layer the prompt tokens attend to their query and to each
other, then to the visual tokens; a query without text (the learned no-text query) also attends
to its prompt tokens. Text says *what*, clicks and boxes say *where*: a text query is never changed
by its clicks, so a click only changes the mask near itself.

The decoded tokens become additive logit terms:

- click ``k``: ``g_k(x) * (s[label] + e_k . P(x) + b_k)`` with ``g_k`` a Gaussian around the click
  (learned radius per type, adjusted per click), ``P`` the normalised decoder features, ``e_k`` the
  click's decoded embedding plus a learned multiple of the feature under the click;
- box: ``B(x) * (s_in + e . P(x) + b) + (1 - B(x)) * s_out`` with ``B`` a soft inside-indicator;
- a no-text query's own logits are scaled by a learned factor (0 at start).

Output projections start at zero and the priors at ``s = +6 / -6`` (positive / negative click),
``s_out = -8``, so an untrained module is a plain "blob around the click, nothing outside the box"
rule, and a head without prompts gives exactly the logits it gave before this module existed.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from sat.model.prompts import BOX_2D, NO_BOX, PAD, Prompts, box_gate, grid_fraction, point_gates, sincos_points

_BOX_LO, _BOX_HI = 2, 3  # type embedding rows; +2 for a 2D box


class PromptLayer(nn.Module):
    """Prompt tokens <- [query, tokens of the same query]; prompt tokens <- visual tokens; FFN;
    then no-text queries <- their prompt tokens."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.n_self, self.n_cross, self.n_ffn, self.n_q = (nn.LayerNorm(d) for _ in range(4))
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.q_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        nn.init.zeros_(self.q_attn.out_proj.weight)
        nn.init.zeros_(self.q_attn.out_proj.bias)

    def forward(self, q: torch.Tensor, ptok: torch.Tensor, pmask: torch.Tensor, tokens: torch.Tensor,
                no_text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q: (B, Q, d); ptok: (B, Q, T, d); pmask: (B, Q, T) True = padding (slot 0 never);
        tokens: (B, N, d) visual tokens; no_text: (B, Q) bool -> updated (q, ptok)."""
        b, nq, t, d = ptok.shape
        x = ptok.reshape(b * nq, t, d)
        kpm = pmask.reshape(b * nq, t)
        ctx = self.n_self(torch.cat([q.reshape(b * nq, 1, d), x], dim=1))
        ctx_pad = torch.cat([kpm.new_zeros(b * nq, 1), kpm], dim=1)
        x = x + self.self_attn(ctx[:, 1:], ctx, ctx, key_padding_mask=ctx_pad, need_weights=False)[0]
        vis = tokens.repeat_interleave(nq, dim=0)  # (B*Q, N, d)
        x = x + self.cross(self.n_cross(x), vis, vis, need_weights=False)[0]
        x = x + self.ffn(self.n_ffn(x))
        h = self.n_q(x)
        upd = self.q_attn(q.reshape(b * nq, 1, d), h, h, key_padding_mask=kpm, need_weights=False)[0]
        q = q + upd.view(b, nq, d) * no_text[..., None].to(q.dtype)
        return q, x.view(b, nq, t, d)


class PromptEncoder(nn.Module):
    """Learned part of the interactive head (see the module docstring).

    Args:
        d_model: query width d. pixel_channels: width F of the decoder features. heads: attention
        heads. layers: one :class:`PromptLayer` per decoder layer.
    """

    def __init__(self, d_model: int, pixel_channels: int, heads: int, layers: int) -> None:
        super().__init__()
        self.f = pixel_channels
        self.type_embed = nn.Embedding(6, d_model)  # 0 negative, 1 positive, 2/3 box lo/hi, 4/5 2D box lo/hi
        self.summary = nn.Parameter(torch.randn(d_model) * 0.02)
        self.null_query = nn.Parameter(torch.zeros(d_model))
        self.feat_proj = nn.Linear(pixel_channels, d_model)
        self.layers = nn.ModuleList(PromptLayer(d_model, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.click_out = nn.Linear(d_model, pixel_channels + 2)  # embedding, bias, log-radius change
        self.box_out = nn.Linear(d_model, pixel_channels + 1)  # embedding, bias
        for lin in (self.click_out, self.box_out):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.click_prior = nn.Parameter(torch.tensor([-6.0, 6.0]))  # negative, positive
        self.click_sim = nn.Parameter(torch.zeros(2))
        self.log_sigma = nn.Parameter(torch.full((2,), math.log(4.0)))  # voxels of the model grid
        self.box_prior = nn.Parameter(torch.tensor([0.0, 4.0]))  # inside the box: with text, without
        self.box_outside = nn.Parameter(torch.tensor(-8.0))
        self.null_scale = nn.Parameter(torch.tensor(0.0))

    def with_null_query(self, q: torch.Tensor, prompts: Prompts) -> torch.Tensor:
        """(B, Q, d) queries with the learned no-text query where ``has_text`` is False."""
        return torch.where(prompts.has_text[..., None], q, self.null_query.to(q.dtype).expand_as(q))

    def click_features(self, pixel: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(B, F, D, H, W) features under (B, Q, K, 3) voxel positions -> (B, Q, K, F); 0 outside."""
        b, f, *shape = pixel.shape
        idx = points.round().long()
        inside = torch.ones(points.shape[:-1], dtype=torch.bool, device=points.device)
        for axis, n in enumerate(shape):
            inside &= (idx[..., axis] >= 0) & (idx[..., axis] < n)
            idx[..., axis] = idx[..., axis].clamp(0, n - 1)
        lin = (idx[..., 0] * shape[1] + idx[..., 1]) * shape[2] + idx[..., 2]  # (B, Q, K)
        flat = pixel.flatten(2).gather(2, lin.view(b, 1, -1).expand(b, f, lin[0].numel()))  # (B, F, Q*K)
        return flat.transpose(1, 2).reshape(*points.shape[:-1], f) * inside[..., None].to(pixel.dtype)

    def embed(self, prompts: Prompts, pixel: torch.Tensor, grid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Initial prompt tokens (B, Q, 1 + K + 2, d), their padding mask and the click features."""
        patch = tuple(pixel.shape[2:])
        d = self.null_query.shape[0]
        b, nq, k = prompts.labels.shape
        feat = self.click_features(pixel, prompts.points)  # (B, Q, K, F)
        lab = prompts.labels.clamp_min(0)
        clicks = (sincos_points(grid_fraction(prompts.points, patch, grid), d).to(pixel.dtype)
                  + self.type_embed(lab) + self.feat_proj(feat))
        is2d = (prompts.box_kind == BOX_2D).long() * 2
        corners = sincos_points(grid_fraction(prompts.boxes, patch, grid), d).to(pixel.dtype)  # (B, Q, 2, d)
        corners = corners + self.type_embed(torch.stack([_BOX_LO + is2d, _BOX_HI + is2d], dim=-1))
        summary = self.summary.to(pixel.dtype).expand(b, nq, 1, d)
        tokens = torch.cat([summary, clicks, corners], dim=2)
        no_box = (prompts.box_kind == NO_BOX)[..., None].expand(b, nq, 2)
        mask = torch.cat([torch.zeros(b, nq, 1, dtype=torch.bool, device=pixel.device),
                          prompts.labels == PAD, no_box], dim=2)
        return tokens, mask, feat

    def logits(self, global_logits: torch.Tensor, ptok: torch.Tensor, feat: torch.Tensor, prompts: Prompts,
               pixel: torch.Tensor) -> torch.Tensor:
        """(B, Q, D, H, W) logits of the queries (head bias not yet added) -> with click and box terms."""
        no_text = ~prompts.has_text
        scale = torch.where(no_text, self.null_scale, torch.ones_like(self.null_scale))
        logits = global_logits * scale[..., None, None, None].to(global_logits.dtype)
        shape = tuple(pixel.shape[2:])
        k = prompts.n_clicks
        ptok = self.norm(ptok)
        if k and bool((prompts.labels != PAD).any()):
            lab = prompts.labels.clamp_min(0)
            out = self.click_out(ptok[:, :, 1:1 + k])  # (B, Q, K, F + 2)
            emb = out[..., :self.f] + self.click_sim[lab][..., None] * feat / self.f
            b = out[..., self.f] + self.click_prior[lab]
            sigma = self.log_sigma[lab].exp() * out[..., self.f + 1].clamp(-2.0, 2.0).exp()
            gates = point_gates(prompts.points.float(), sigma.float(), shape)
            gates = gates * (prompts.labels != PAD)[..., None, None, None]
            resp = torch.einsum("bqkf,bfdhw->bqkdhw", emb, pixel) + b[..., None, None, None]
            logits = logits + (gates.to(resp.dtype) * resp).sum(2)
        has_box = prompts.box_kind != NO_BOX
        if bool(has_box.any()):
            out = self.box_out(ptok[:, :, 1 + k:].mean(2))  # (B, Q, F + 1)
            inside = box_gate(prompts.boxes.float(), prompts.box_kind, shape).to(pixel.dtype)
            b = out[..., self.f] + self.box_prior[no_text.long()]
            resp = torch.einsum("bqf,bfdhw->bqdhw", out[..., :self.f], pixel) + b[..., None, None, None]
            term = inside * resp + (1 - inside) * self.box_outside
            logits = logits + term * has_box[..., None, None, None].to(term.dtype)
        return logits
