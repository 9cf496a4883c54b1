"""Imaging modality names: the one list, and the spellings that mean each of them.

Concepts (:attr:`sat.knowledge.tree.Concept.modalities`), the model's modality embedding
(:data:`sat.model.universal.MODALITY_INDEX`), recipes, DICOM headers, the agent tools and
``sat segment --modality`` all use these names.
"""
from __future__ import annotations

MODALITIES = ("CT", "MR", "PET", "US")
# Other spellings (DICOM's "PT", the common "MRI"; CT angiography is CT).
ALIASES = {"MRI": "MR", "PT": "PET", "CTA": "CT"}


def canonical_modality(name: str | None) -> str | None:
    """``"mri"`` -> ``"MR"``, ``"PT"`` -> ``"PET"``, ``"ct"`` -> ``"CT"``; ``None`` for an empty
    name or one that is not a modality of :data:`MODALITIES`."""
    if not name:
        return None
    key = str(name).strip().upper()
    key = ALIASES.get(key, key)
    return key if key in MODALITIES else None
