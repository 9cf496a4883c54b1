"""Inference fixtures: one Segmenter per session on the tiny random-weight checkpoint."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fast_resolver(concept_table):
    """The default resolver with only canonical names as embedding targets.

    The names table is the session's ``concept_table`` (already computed for ``tiny_checkpoint``),
    so a non-lexical prompt such as "banana" does not make the session embed all ~6,900 synonyms,
    which takes minutes on 2 cores. Lexical resolution (names, synonyms, qualifiers) is unchanged.
    """
    from sat.knowledge.resolver import Resolver
    from sat.knowledge.tree import load_tree
    from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts

    ids, emb = concept_table
    encoder = {}

    def encode(texts):
        if "net" not in encoder:
            encoder["net"] = build_text_encoder(TextEncoderSpec())
        return encode_texts(encoder["net"], texts)

    return Resolver(load_tree(), ids, emb, encode)


@pytest.fixture(scope="session")
def segmenter(tiny_checkpoint, fast_resolver):
    from sat.infer.segmenter import Segmenter

    return Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", resolver=fast_resolver)


@pytest.fixture(scope="session")
def phantom_ct(tiny_phantoms):
    """A small phantom CT (TotalSegmentator layout) as a path."""
    return tiny_phantoms / "phantom_totalseg" / "phantom_0002" / "ct.nii.gz"
