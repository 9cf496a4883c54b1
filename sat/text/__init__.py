"""Text side: encoder backends and knowledge pretraining.

* :mod:`sat.text.encoder`: ``TextEncoderSpec``, ``build_text_encoder``, ``encode_texts``;
* :mod:`sat.text.cache`: concept-term embeddings cached per tree hash and encoder;
* :mod:`sat.text.splits`, :mod:`sat.text.corpus`, :mod:`sat.text.queries`,
  :mod:`sat.text.negatives`: held-out split, training texts, held-out queries, refusal lists;
* :mod:`sat.text.pretrain` (``sat text-fit``), :mod:`sat.text.pretrain_data`,
  :mod:`sat.text.contrastive`: knowledge pretraining (imports Lightning);
* :mod:`sat.text.calibrate`, :mod:`sat.text.sidecar`, :mod:`sat.bench.concepts_eval`, :mod:`sat.bench.resolver_speed`:
  threshold calibration and storage, ``sat concepts eval`` and ``sat concepts bench``.

A knowledge-pretrained encoder is used everywhere by pointing a spec at its weights:
``TextEncoderSpec(finetuned="outputs/text/knowledge_minilm.safetensors")``.
"""
from __future__ import annotations

__all__ = ["TextEncoderSpec", "build_text_encoder", "encode_texts"]


def __getattr__(name: str):
    if name in __all__:
        from sat.text import encoder

        return getattr(encoder, name)
    raise AttributeError(f"module 'sat.text' has no attribute {name!r}")
