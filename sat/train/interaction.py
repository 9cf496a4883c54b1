"""Training with simulated interaction (``model.interaction`` in a LightningCLI config).

An interactive step runs the backbone once, then simulates a user on the head alone: each query
may get a reference box (3D or 2D, jittered) and may lose its text (box-only or points-only), then
0..``max_clicks`` rounds each add one click per query in the error region of the current prediction
(:func:`sat.train.clicks.error_clicks`), and the loss is taken on the prediction after the last
click. Text-only steps are mixed in (``prob`` is the share of interactive steps) so the plain text
path keeps training; with ``freeze_base`` only the prompt encoder trains, the text-only logits are
those of the starting weights exactly, and text-only steps are skipped (they would train nothing);
``train_decoder`` adds the query decoder to what trains, and the text-only steps come back.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sat.model.prompts import Prompts
from sat.train.clicks import error_clicks, reference_boxes


@dataclass
class InteractionConfig:
    """Attributes:
        enabled: train with simulated interaction (needs ``model.head.interactive`` or
            ``init_checkpoint``, which turns it on).
        prob: share of training steps that are interactive (the rest are text-only).
        max_clicks: clicks per query are drawn from 0..max_clicks (at least 1 without text or box).
        box_prob: share of queries given a box. box_2d_prob: share of those boxes drawn on one slice.
        box_jitter: Gaussian jitter of each box face, as a fraction of the extent.
        no_text_prob: share of queries with a box or clicks whose text is dropped.
        central_prob: share of simulated clicks placed in the core of the error (its deepest
            erosion level), where the robot user of ``sat benchmark interactive`` clicks; the
            others go to a random depth between the error's border and its core.
        freeze_base: train only the prompt encoder (backbone, text path and head stay as loaded).
        train_decoder: with ``freeze_base``, also train the head's query decoder (its attention
            layers, mask embedding and auxiliary heads) so clicks can reshape its answer, not only
            add tokens to a fixed decoder; text-only steps (``1 - prob`` of them) then keep its text
            answers trained. The backbone, the text projection and the side vectors stay frozen.
        init_checkpoint: start from this ``sat`` checkpoint (its model config, concept table and
            weights; a fresh prompt encoder is added when it has none).
    """

    enabled: bool = False
    prob: float = 0.5
    max_clicks: int = 5
    box_prob: float = 0.3
    box_2d_prob: float = 0.3
    box_jitter: float = 0.1
    no_text_prob: float = 0.3
    central_prob: float = 0.0
    freeze_base: bool = False
    train_decoder: bool = False
    init_checkpoint: str | None = None

    def __post_init__(self) -> None:
        for name in ("prob", "box_prob", "box_2d_prob", "no_text_prob", "central_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"interaction.{name} must be in [0, 1], got {v}")
        if self.train_decoder and not self.freeze_base:
            raise ValueError("interaction.train_decoder=true needs freeze_base=true (without it the whole "
                             "network trains already)")
        if self.max_clicks < 0 or self.box_jitter < 0:
            raise ValueError(f"interaction.max_clicks and box_jitter must be >= 0, got "
                             f"{self.max_clicks} and {self.box_jitter}")


def _main(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def interactive_logits(net, image: torch.Tensor, queries: torch.Tensor, modality: torch.Tensor | None,
                       valid: torch.Tensor, target: torch.Tensor, cfg: InteractionConfig,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, Prompts]:
    """Simulate a user on one batch and return the final logits (B, Q, D, H, W) and the prompts.

    Args:
        net: a :class:`UniversalSegmenter` whose head has a prompt encoder.
        image: (B, C, D, H, W). queries: (B, Q) concept indices. modality: (B,) or None.
        valid: (B, Q) bool real queries. target: (B, Q, D, H, W) reference masks.
    """
    b, q = queries.shape
    dev = image.device
    tgt = target > 0.5  # soft targets: the voxels at least half inside
    if cfg.freeze_base:
        with torch.no_grad():
            feats = net.encode_image(image, modality)
    else:
        feats = net.encode_image(image, modality)
    text = net.query_text(queries)
    pad = ~valid
    present = tgt.flatten(2).any(-1) & valid  # (B, Q) queries whose structure is in the crop
    r = lambda: torch.rand(b, q, generator=generator).to(dev)  # noqa: E731
    prompts = Prompts.empty(b, q, device=dev)
    use_box = (r() < cfg.box_prob) & present
    if use_box.any():
        prompts.boxes, prompts.box_kind = reference_boxes(tgt, use_box, jitter=cfg.box_jitter,
                                                          p2d=cfg.box_2d_prob, generator=generator)
    prompts.has_text = ~((r() < cfg.no_text_prob) & present)
    n = int(torch.randint(0, cfg.max_clicks + 1, (1,), generator=generator))
    if n == 0 and ((~prompts.has_text & ~use_box).any() or (cfg.freeze_base and not use_box.any())):
        # a query with neither text nor box needs a click; with freeze_base a step with no click and
        # no box would not reach the prompt encoder, the only part that trains
        n = 1
    for _ in range(n):
        with torch.no_grad():
            pred = _main(net.head(feats, text, modality, pad, prompts)) > 0
        # no draw when off: the generator's stream, and so older runs, stay as they were
        central = bool(torch.rand(1, generator=generator) < cfg.central_prob) if cfg.central_prob > 0 else False
        points, labels = error_clicks(pred, tgt, valid, central=central, generator=generator)
        prompts = prompts.append_clicks(points, labels)
    return _main(net.head(feats, text, modality, pad, prompts)), prompts
