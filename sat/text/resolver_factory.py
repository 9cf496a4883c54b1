"""A :class:`~sat.knowledge.resolver.Resolver` whose embedding stage uses a text encoder.

The resolver itself (knowledge layer) only takes an ``encode`` callable and a term table; this
module, one layer up, builds both from a :class:`~sat.text.encoder.TextEncoderSpec`, so the
knowledge package never imports the text package.
"""
from __future__ import annotations

from collections.abc import Callable

from sat.knowledge.resolver import DEFAULT_THRESHOLD, Resolver
from sat.knowledge.thesaurus import Thesaurus, load_thesaurus
from sat.knowledge.tree import KnowledgeTree


def build_resolver(tree: KnowledgeTree, spec=None, threshold: float | None = None,
                   thesaurus: Thesaurus | Callable[[], Thesaurus | None] | None | str = "default"
                   ) -> Resolver:
    """A resolver for ``tree`` with a text encoder spec (default MiniLM); term embeddings come
    from the cache (:func:`sat.text.cache.term_table`), the encoder is built on first use.

    ``thesaurus="default"`` uses :func:`sat.knowledge.thesaurus.load_thesaurus`; ``None`` turns
    the thesaurus stage off. The threshold is, in order: ``threshold``, the one calibrated beside
    ``spec.finetuned`` (:mod:`sat.text.sidecar`), :data:`~sat.knowledge.resolver.DEFAULT_THRESHOLD`.
    """
    from sat.text.cache import term_table
    from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts, for_inference
    from sat.text.sidecar import calibrated_threshold

    spec = spec or TextEncoderSpec()
    encoder = None

    def get_encoder():
        nonlocal encoder
        encoder = encoder or for_inference(build_text_encoder(spec))
        return encoder

    def load_terms():
        ids, _, emb = term_table(tree, spec, get_encoder())
        return ids, emb

    if threshold is None:
        threshold = calibrated_threshold(spec)
    if isinstance(thesaurus, str):
        if thesaurus != "default":
            raise ValueError(f"thesaurus must be a Thesaurus, a loader, None or 'default', got {thesaurus!r}")
        thesaurus = load_thesaurus  # read on the first prompt that needs it
    return Resolver(tree, None, None, lambda texts: encode_texts(get_encoder(), texts),
                    DEFAULT_THRESHOLD if threshold is None else threshold, load_terms=load_terms,
                    thesaurus=thesaurus)
