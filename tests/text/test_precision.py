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


def test_length_batches_group_similar_lengths():
    from sat.text.encoder import length_batches

    lengths = [5] * 20 + [9] * 3 + [6] * 40 + [30]
    batches = length_batches(lengths, max_batch=32, min_batch=16)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) <= 32 for b in batches)
    spans = [sorted({lengths[i] for i in b}) for b in batches]
    # full groups stay pure; a short tail is merged with the next lengths instead of a tiny call
    assert spans == [[5], [6], [6, 9, 30]]
    assert length_batches([]) == []
    with pytest.raises(ValueError, match="max_batch"):
        length_batches([1], max_batch=0)


def test_length_batched_encoding_matches_one_text_at_a_time():
    enc = build_text_encoder(TextEncoderSpec(precision="fp32"))
    enc.batch_size = 2  # several model calls of different lengths
    texts = ["liver", "the left kidney and its hilum in a contrast CT", "IVC", "right seventh rib", "aorta"]
    together = encode_texts(enc, texts)  # (5, 384), in the order given
    alone = torch.cat([encode_texts(enc, [t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)
    # the hand padding gives exactly the tokenizer's own padded fields
    fields = enc.tokenizer(texts, truncation=True, max_length=enc.max_length)
    ref = enc.tokenizer(texts, padding=True, truncation=True, max_length=enc.max_length, return_tensors="pt")
    mine = enc._pad(fields, list(range(len(texts))))
    assert mine.keys() == ref.keys() and all(torch.equal(mine[k], ref[k]) for k in ref)
