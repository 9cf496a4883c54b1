"""Text-encoder inference precision: bf16 is a setting that keeps embeddings, never a code path
that changes them, and it never touches an encoder being trained."""
from __future__ import annotations

import pytest
import torch

from sat.text import encoder as enc_mod
from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts, for_inference, use_bf16

TEXTS = ["left kidney", "inferior vena cava", "the large vein returning blood from the lower body",
         "seventh right rib", "banana"]


def test_precision_is_validated():
    with pytest.raises(ValueError, match="fp16"):
        TextEncoderSpec(precision="fp16")


def test_auto_follows_the_processor(monkeypatch):
    cpu = torch.device("cpu")
    assert use_bf16("bf16", cpu) and not use_bf16("fp32", cpu)
    monkeypatch.setattr(enc_mod, "cpu_has_native_bf16", lambda: False)
    assert not use_bf16("auto", cpu)
    monkeypatch.setattr(enc_mod, "cpu_has_native_bf16", lambda: True)
    assert use_bf16("auto", cpu)


def test_bf16_inference_keeps_the_embeddings():
    fp32 = encode_texts(build_text_encoder(TextEncoderSpec(precision="fp32")), TEXTS)  # (5, 384)
    autocast = build_text_encoder(TextEncoderSpec(precision="bf16"))
    auto_emb = encode_texts(autocast, TEXTS)
    cast = for_inference(build_text_encoder(TextEncoderSpec(precision="bf16")))
    assert next(cast.model.parameters()).dtype == torch.bfloat16
    cast_emb = encode_texts(cast, TEXTS)
    for emb in (auto_emb, cast_emb):
        assert emb.dtype == torch.float32 and emb.shape == fp32.shape
        assert (emb * fp32).sum(1).min() > 0.995  # cosine to the fp32 embedding, per text
        # the similarity structure (what the resolver ranks by) is kept
        assert torch.allclose(emb @ emb.T, fp32 @ fp32.T, atol=0.02)


def _linear_dtypes(encoder) -> set:
    """The output dtypes of the encoder's Linear layers in one forward pass."""
    seen: set = set()
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.add(o.dtype))
             for m in encoder.modules() if isinstance(m, torch.nn.Linear)]
    try:
        encoder(TEXTS[:2])
    finally:
        for h in hooks:
            h.remove()
    return seen


def test_training_and_fp32_encoders_stay_fp32():
    encoder = build_text_encoder(TextEncoderSpec(precision="bf16"))
    with torch.no_grad():
        assert _linear_dtypes(encoder.eval()) == {torch.bfloat16}
        assert _linear_dtypes(encoder.train()) == {torch.float32}  # training: never autocast
    assert next(encoder.model.parameters()).dtype == torch.float32
    plain = for_inference(build_text_encoder(TextEncoderSpec(precision="fp32")))
    assert next(plain.model.parameters()).dtype == torch.float32
