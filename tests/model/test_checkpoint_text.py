"""A knowledge-pretrained text encoder travels inside the model checkpoint as a delta."""
from __future__ import annotations

import torch
from safetensors.torch import save_file

from sat.model.builder import build_model
from sat.model.checkpoint import load_checkpoint, save_checkpoint
from sat.text.bundle import encoder_delta
from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts


def _tiny():
    from sat.model.config import BackboneConfig, HeadConfig, ModelConfig

    return ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16, 32), out_channels=8),
                       head=HeadConfig(d_model=32, layers=1, heads=2))


def test_finetuned_encoder_round_trips_without_its_file(tmp_path, monkeypatch, concept_table):
    base = build_text_encoder(TextEncoderSpec())
    state = {k: v.clone() for k, v in base.state_dict().items()}
    changed = [k for k in state if ".layer.5." in k]  # pretend the top block was fine-tuned
    torch.manual_seed(0)
    for k in changed:
        state[k] += 0.01 * torch.randn_like(state[k])
    tuned_file = tmp_path / "tuned.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(tuned_file))
    tuned_file.with_suffix(".json").write_text('{"threshold": 0.77}')
    spec = TextEncoderSpec(finetuned=str(tuned_file))

    delta = encoder_delta(spec)
    assert sorted(delta) == sorted(changed)  # only the changed tensors are carried

    ids, emb = concept_table
    net = build_model(_tiny(), ids, emb)
    ckpt = save_checkpoint(tmp_path / "m.ckpt", net, model_cfg=_tiny(),
                           text_spec={"backend": "minilm", "finetuned": str(tuned_file)}, tree_hash="x",
                           preprocess={"spacing": [4.0, 4.0, 4.0]}, trained_concepts=["liver"], text_delta=delta)
    tuned_file.unlink()  # the original files are gone: the checkpoint must not need them
    tuned_file.with_suffix(".json").unlink()
    monkeypatch.setenv("SAT_CACHE_DIR", str(tmp_path / "cache"))
    _, meta = load_checkpoint(ckpt)
    spec = TextEncoderSpec(**meta.text)
    from sat.text.sidecar import calibrated_threshold

    assert calibrated_threshold(spec) == 0.77  # the resolver threshold travels with the weights
    restored = build_text_encoder(spec)
    expected = encode_texts(_enc(state), ["left kidney", "IVC"])
    assert torch.allclose(encode_texts(restored, ["left kidney", "IVC"]), expected, atol=1e-6)
    assert not torch.allclose(encode_texts(base, ["left kidney", "IVC"]), expected, atol=1e-4)


def _enc(state):
    enc = build_text_encoder(TextEncoderSpec())
    enc.load_state_dict(state)
    return enc
