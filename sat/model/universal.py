"""The composed text-prompted segmenter: ``UniversalSegmenter(backbone, head, concept table)``."""
from __future__ import annotations

import torch
from torch import nn

from sat.vision.features import BackboneOutput

MODALITY_INDEX = {"CT": 1, "MR": 2, "PET": 3, "US": 4}


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
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, concept_ids: list[str],
                 concept_embeddings: torch.Tensor) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.concept_ids = list(concept_ids)
        self.index = {cid: i for i, cid in enumerate(self.concept_ids)}
        self.register_buffer("concept_embeddings", concept_embeddings.float().clone(), persistent=True)

    def query_indices(self, concepts: list[str]) -> torch.Tensor:
        """Row indices of ``concepts`` in the concept table; ``KeyError`` naming an unknown id."""
        try:
            return torch.tensor([self.index[c] for c in concepts], dtype=torch.long)
        except KeyError as e:
            raise KeyError(f"concept {e.args[0]!r} has no text embedding in this model") from None

    def encode_image(self, image: torch.Tensor) -> BackboneOutput:
        """image: (B, C, D, H, W) -> features, reusable for any number of prompts."""
        return self.backbone(image)

    def decode(self, feats: BackboneOutput, queries: torch.Tensor, modality: torch.Tensor | None = None,
               pad: torch.Tensor | None = None):
        """queries: (B, Q) concept-table indices -> (B, Q, D, H, W) logits."""
        text = self.concept_embeddings[queries]  # (B, Q, E)
        return self.head(feats, text, modality, pad)

    def forward(self, image: torch.Tensor, queries: torch.Tensor, modality: torch.Tensor | None = None,
                pad: torch.Tensor | None = None):
        return self.decode(self.encode_image(image), queries, modality, pad)
