"""Oracle test: the plain-torch MiniLM (``sat.text.minilm``) equals the transformers model it replaces."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch

from sat.text.encoder import HFTextEncoder, MiniLMTextEncoder, TextEncoderSpec, build_text_encoder, minilm_dir

PROMPTS = ["liver", "left kidney", "the organ that filters blood", "Glnd_Submand_R", "LAA",
           "hepatic segment IVb", "ribcage", "Couinaud segment VII of the liver, posterior part",
           "großer Zeh", "T12 vertebra", "", "a " * 80 + "very long prompt that gets truncated"]


@pytest.fixture(scope="module")
def pair():
    return (MiniLMTextEncoder(minilm_dir()).eval(), HFTextEncoder(minilm_dir()).eval())


def test_same_state_dict_names_and_values(pair):
    ours, ref = pair
    a, b = ours.state_dict(), ref.state_dict()
    assert sorted(a) == sorted(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_same_tokens(pair):
    ours, ref = pair
    a = ours.tokenizer(PROMPTS, truncation=True, max_length=64)
    b = ref.tokenizer(PROMPTS, truncation=True, max_length=64)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert a[key] == [list(x) for x in b[key]], key
    assert max(len(x) for x in a["input_ids"]) == 64  # truncation happened


def test_embeddings_match_transformers_fp32(pair):
    ours, ref = pair
    with torch.no_grad():
        a, b = ours(PROMPTS), ref(PROMPTS)  # one padded batch of mixed lengths
        assert a.shape == b.shape == (len(PROMPTS), 384)
        assert (a - b).abs().max() < 1e-5
        # one at a time (no padding) gives the same vectors as the padded batch
        single = torch.cat([ours([p]) for p in PROMPTS[:4]])
    assert (single - a[:4]).abs().max() < 1e-5
    assert torch.allclose(a.norm(dim=-1), torch.ones(len(PROMPTS)), atol=1e-5)


def test_hidden_states_match_on_padded_tokens(pair):
    ours, ref = pair
    enc = ours.tokenizer(PROMPTS[:6], truncation=True, max_length=64)
    tok = ours._pad(enc, list(range(6)))
    assert (tok["attention_mask"] == 0).any()  # the batch really is padded
    with torch.no_grad():
        h_ours = ours.model(**tok).last_hidden_state
        h_ref = ref.model(**tok).last_hidden_state
    keep = tok["attention_mask"].bool()
    assert (h_ours[keep] - h_ref[keep]).abs().max() < 1e-4  # hidden units are O(1), unnormalised


def test_finetuned_delta_applies_the_same(tmp_path, pair):
    """A knowledge-pretrained delta (changed top-block tensors) loads into both and they agree."""
    from safetensors.torch import save_file

    _, ref = pair
    torch.manual_seed(0)
    delta = {k: (v + 0.02 * torch.randn_like(v)).contiguous() for k, v in ref.state_dict().items()
             if k.startswith("model.encoder.layer.5.")}
    path = tmp_path / "delta.safetensors"
    save_file(delta, str(path))
    ours = build_text_encoder(TextEncoderSpec(finetuned=str(path), precision="fp32"))
    assert isinstance(ours, MiniLMTextEncoder)
    tuned_ref = copy.deepcopy(ref)
    tuned_ref.load_state_dict(delta, strict=False)
    with torch.no_grad():
        a, b, base = ours(PROMPTS[:5]), tuned_ref(PROMPTS[:5]), ref(PROMPTS[:5])
    assert (a - b).abs().max() < 1e-5
    assert (a - base).abs().max() > 1e-3  # the delta changed the output


def test_training_blocks_and_dropout(pair):
    from sat.text.pretrain import transformer_blocks

    ours, _ = pair
    assert len(transformer_blocks(ours)) == 6
    ours.train()
    try:
        torch.manual_seed(0)
        x, y = ours(PROMPTS[:3]), ours(PROMPTS[:3])
        assert x.requires_grad and (x - y).abs().max() > 1e-4  # dropout is on in training
    finally:
        ours.eval()


def test_bf16_inference_close(pair):
    from sat.text.encoder import for_inference

    ours, ref = pair
    fast = for_inference(MiniLMTextEncoder(minilm_dir(), precision="bf16"))
    assert next(fast.model.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        cos = (fast(PROMPTS).float() * ref(PROMPTS)).sum(-1)
    assert cos.min() > 0.99


def test_minilm_backend_imports_no_transformers():
    code = ("import sys; from sat.text.encoder import build_text_encoder, encode_texts; "
            "e = encode_texts(build_text_encoder(), ['left kidney']); "
            "print(tuple(e.shape), 'transformers' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-3:] == ["(1,", "384)", "False"]
