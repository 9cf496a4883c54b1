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


@pytest.fixture(scope="session")
def checkpoint_with(tiny_checkpoint, tmp_path_factory):
    """``checkpoint_with(**extra)``: the tiny checkpoint's weights saved with more ``meta.extra``
    (e.g. ``lr_flip_prob``, ``trained_on``, ``concept_stats`` as :mod:`sat.train.export` writes them)."""
    from sat.knowledge.tree import load_tree
    from sat.model.checkpoint import load_checkpoint, save_checkpoint

    net, meta = load_checkpoint(tiny_checkpoint)
    folder = tmp_path_factory.mktemp("ckpt_extra")

    def make(name: str = "extra.ckpt", **extra):
        return save_checkpoint(folder / name, net, model_cfg=meta.model, text_spec=meta.text, tree_hash=meta.tree_hash,
                               preprocess=meta.preprocess.to_dict(), trained_concepts=meta.trained_concepts,
                               extra={**meta.extra, **extra}, tree=load_tree())

    return make
