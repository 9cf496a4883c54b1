"""The composed text-prompted segmenter: ``UniversalSegmenter(backbone, head, concept table)``."""
from __future__ import annotations

import torch
from torch import nn

from sat.knowledge.modality import MODALITIES
from sat.vision.features import BackboneOutput

MODALITY_INDEX = {m: i for i, m in enumerate(MODALITIES, start=1)}  # 0: unknown; CT 1, MR 2, PET 3, US 4
SIDE_INDEX = {"left": 1, "right": 2}  # 0: no side (unpaired or bilateral concepts)


def side_index(laterality: str | None) -> int:
    """Index into the learned side embedding; 0 for concepts without a side."""
    return SIDE_INDEX.get((laterality or "").lower(), 0)


def modality_index(name: str | None) -> int:
    """Index into the learned modality embedding; 0 for unknown."""
    return MODALITY_INDEX.get((name or "").upper(), 0)


class UniversalSegmenter(nn.Module):
    """Backbone + text-conditioned head + a frozen table of concept text embeddings.

    Args:
        backbone: image -> :class:`BackboneOutput`.
        head: (features, text (B, Q, E), modality (B,), pad (B, Q)) -> logits (B, Q, D, H, W).
        concept_ids: concept id of each row of ``concept_embeddings``.
        concept_embeddings: (Nc, E) frozen text embeddings (computed once by the text encoder).
        concept_sides: optional (Nc,) long side of each row (:data:`SIDE_INDEX`). When given, a
            learned side embedding (zero at start) is added to each query's text embedding, so
            "left X" and "right X" differ by a trained vector even where a text encoder embeds
            them almost alike (raw MiniLM: cosine ~0.98 for such pairs).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, concept_ids: list[str],
                 concept_embeddings: torch.Tensor, concept_sides: torch.Tensor | None = None) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.concept_ids = list(concept_ids)
        self.index = {cid: i for i, cid in enumerate(self.concept_ids)}
        self.register_buffer("concept_embeddings", concept_embeddings.float().clone(), persistent=True)
        self.side_embedding: nn.Embedding | None = None
        if concept_sides is not None:
            if concept_sides.shape != (len(self.concept_ids),):
                raise ValueError(f"concept_sides shape {tuple(concept_sides.shape)} != ({len(self.concept_ids)},)")
            self.register_buffer("concept_sides", concept_sides.long().clone(), persistent=True)
            self.side_embedding = nn.Embedding(len(SIDE_INDEX) + 1, concept_embeddings.shape[1])
            nn.init.zeros_(self.side_embedding.weight)

    def query_indices(self, concepts: list[str]) -> torch.Tensor:
        """Row indices of ``concepts`` in the concept table; ``KeyError`` naming an unknown id."""
        try:
            return torch.tensor([self.index[c] for c in concepts], dtype=torch.long)
        except KeyError as e:
            raise KeyError(f"concept {e.args[0]!r} has no text embedding in this model") from None

    def encode_image(self, image: torch.Tensor, modality: torch.Tensor | None = None) -> BackboneOutput:
        """image: (B, C, D, H, W) -> features, reusable for any number of prompts.

        modality: (B,) :data:`MODALITY_INDEX` values, passed to a backbone that conditions on it
        (``conditions_on_modality``, e.g. per-modality norms) and ignored by the others.
        """
        if getattr(self.backbone, "conditions_on_modality", False):
            return self.backbone(image, modality)
        return self.backbone(image)

    def query_text(self, queries: torch.Tensor) -> torch.Tensor:
        """(B, Q) concept-table indices -> (B, Q, E) text embeddings (side vector included)."""
        text = self.concept_embeddings[queries]  # (B, Q, E)
        if self.side_embedding is not None:
            text = text + self.side_embedding(self.concept_sides[queries])  # (B, Q, E)
        return text

    def decode(self, feats: BackboneOutput, queries: torch.Tensor, modality: torch.Tensor | None = None,
               pad: torch.Tensor | None = None, prompts=None):
        """queries: (B, Q) concept-table indices -> (B, Q, D, H, W) logits.

        ``prompts``: optional clicks and boxes (:class:`~sat.model.prompts.Prompts`); a query whose
        ``has_text`` is False ignores its index (any row, e.g. 0) and uses the no-text query.
        """
        text = self.query_text(queries)
        if prompts is None:
            return self.head(feats, text, modality, pad)
        return self.head(feats, text, modality, pad, prompts)

    def forward(self, image: torch.Tensor, queries: torch.Tensor, modality: torch.Tensor | None = None,
                pad: torch.Tensor | None = None, prompts=None):
        return self.decode(self.encode_image(image, modality), queries, modality, pad, prompts)
