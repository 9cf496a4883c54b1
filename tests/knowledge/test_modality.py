"""One modality vocabulary: the list, its spellings, and every user of it agreeing."""
from __future__ import annotations

import pytest

from sat.knowledge.modality import MODALITIES, canonical_modality


@pytest.mark.parametrize("given,want", [("ct", "CT"), (" MRI ", "MR"), ("mr", "MR"), ("PT", "PET"),
                                        ("pet", "PET"), ("US", "US"), ("CTA", "CT"),
                                        ("NM", None), ("", None), (None, None)])
def test_canonical_modality(given, want):
    assert canonical_modality(given) == want


def test_every_user_names_the_same_modalities():
    from typing import get_args

    from sat.agent.models import Modality
    from sat.knowledge.tree import MODALITIES as TREE
    from sat.model.universal import MODALITY_INDEX

    from sat.infer.segmenter import normalize_modality

    assert TREE is MODALITIES and get_args(Modality) == MODALITIES
    assert normalize_modality is canonical_modality  # sat segment --modality, DICOM tags, qualifiers
    # the index of the learned embedding must never move: old checkpoints depend on it
    assert MODALITY_INDEX == {"CT": 1, "MR": 2, "PET": 3, "US": 4}


def test_modalities_without_an_intensity_rule_are_scaled_as_mr():
    from sat.volume.preprocess import PreprocessSpec

    spec = PreprocessSpec()
    assert spec.rule("PT") is spec.rule("pet") is spec.rule("US") is spec.rules["MR"]
    with pytest.raises(ValueError, match="no intensity rule for modality 'XR'"):
        spec.rule("XR")
