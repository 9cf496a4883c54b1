"""Side conditioning: a learned left / right / none embedding added to the query's text embedding.

Mirror concepts whose text embeddings are (almost) identical must still be separable by the
network, the table must travel in checkpoints, and models without the switch are unchanged.
"""
from __future__ import annotations

import pytest
import torch

from sat.volume.preprocess import PreprocessSpec
from sat.model.builder import build_model
from sat.model.checkpoint import load_checkpoint, save_checkpoint
from sat.model.config import BackboneConfig, HeadConfig, ModelConfig

IDS = ["parotid_gland_left", "parotid_gland_right", "brainstem"]


def _cfg(side: bool) -> ModelConfig:
    return ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16), out_channels=8),
                       head=HeadConfig(d_model=16, layers=1, heads=2), side_conditioning=side)


def test_mirror_pair_with_identical_text_differs_only_through_the_side_embedding():
    torch.manual_seed(0)
    emb = torch.randn(1, 384).repeat(3, 1)  # the text encoder cannot tell the three apart
    net = build_model(_cfg(True), IDS, emb, ["left", "right", "none"]).eval()
    torch.nn.init.normal_(net.head.mask_embed[-1].weight)  # zero at start: a constant background prior
    assert net.concept_sides.tolist() == [1, 2, 0]
    x, q = torch.randn(1, 1, 16, 16, 16), torch.tensor([[0, 1, 2]])
    with torch.no_grad():
        out = net(x, q)
        assert torch.equal(out[0, 0], out[0, 1])  # zero-initialised: no side information yet
        torch.nn.init.normal_(net.side_embedding.weight)
        out = net(x, q)
    assert not torch.allclose(out[0, 0], out[0, 1])


def test_side_table_round_trips_through_a_checkpoint(tmp_path):
    torch.manual_seed(1)
    net = build_model(_cfg(True), IDS, torch.randn(3, 384), ["left", "right", "none"]).eval()
    torch.nn.init.normal_(net.side_embedding.weight)
    path = save_checkpoint(tmp_path / "m.ckpt", net, model_cfg=_cfg(True), text_spec={}, tree_hash="x",
                           preprocess=PreprocessSpec().to_dict(), trained_concepts=IDS)
    back, meta = load_checkpoint(path)
    assert meta.model.side_conditioning is True
    assert back.concept_sides.tolist() == [1, 2, 0]
    x, q = torch.randn(1, 1, 16, 16, 16), torch.tensor([[0, 1]])
    with torch.no_grad():
        assert torch.allclose(back(x, q), net(x, q))


def test_switch_off_adds_nothing_and_bad_sides_are_named():
    net = build_model(_cfg(False), IDS, torch.randn(3, 384), ["left", "right", "none"])
    assert net.side_embedding is None and "concept_sides" not in net.state_dict()
    with pytest.raises(ValueError, match="2 lateralities for 3 concepts"):
        build_model(_cfg(True), IDS, torch.randn(3, 384), ["left", "right"])


def test_modality_spacing_picks_the_grid_and_round_trips():
    spec = PreprocessSpec(spacing=(4.0, 4.0, 3.0), modality_spacing={"MR": (1.0, 1.0, 1.0)})
    back = PreprocessSpec.from_dict(spec.to_dict())
    assert back.spacing_for("mr") == (1.0, 1.0, 1.0)
    assert back.spacing_for("CT") == (4.0, 4.0, 3.0)
    assert "modality_spacing" not in PreprocessSpec().to_dict()  # old checkpoints' meta unchanged


def test_sliding_window_decoding_uses_the_side_vector_training_used():
    """Inference must ask the head the same question training did: text plus side vector. (It
    once fed the raw text table, so a side-conditioned model answered left and right alike.)"""
    from sat.model.sliding_window import decode_prompts, encode_image

    torch.manual_seed(2)
    emb = torch.randn(1, 384).repeat(3, 1)
    net = build_model(_cfg(True), IDS, emb, ["left", "right", "none"]).eval()
    torch.nn.init.normal_(net.head.mask_embed[-1].weight)
    torch.nn.init.normal_(net.side_embedding.weight)
    image = torch.randn(1, 16, 16, 16)  # (C, X, Y, Z): one window
    cache = encode_image(net, image, None, (16, 16, 16))
    probs = decode_prompts(net, cache, IDS).float()  # (3, 16, 16, 16)
    with torch.no_grad():
        direct = torch.sigmoid(net(image[None], torch.tensor([[0, 1, 2]]))[0].float())
    assert not torch.allclose(probs[0], probs[1], atol=1e-3)  # left and right differ
    assert torch.allclose(probs, direct, atol=2e-3)  # and match the training-time forward pass
