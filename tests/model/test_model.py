"""Unit tests of the composed model on tiny sizes."""
from __future__ import annotations

import pytest
import torch

from sat.losses.partial_label import PartialLabelLoss
from sat.model.builder import build_model
from sat.model.config import BackboneConfig, HeadConfig, ModelConfig


def _tiny(**head):
    return ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16), out_channels=8),
                       head=HeadConfig(d_model=16, layers=1, heads=2, **head))


def test_forward_shapes_and_query_independence():
    torch.manual_seed(0)
    net = build_model(_tiny(), ["a", "b", "c"], torch.randn(3, 384)).eval()
    x = torch.randn(2, 1, 16, 16, 16)
    q = torch.tensor([[0, 1, 2], [2, 1, 0]])
    out = net(x, q, torch.tensor([1, 2]))
    assert out.shape == (2, 3, 16, 16, 16)
    # without query self-attention a prompt's logits do not depend on the other prompts
    alone = net(x[:1], q[:1, :1], torch.tensor([1]))
    assert torch.allclose(alone[0, 0], out[0, 0], atol=1e-5)


def test_self_attention_and_deep_supervision_train_outputs():
    net = build_model(_tiny(self_attn=True, deep_supervision=True), ["a", "b"], torch.randn(2, 384)).train()
    logits, aux = net(torch.randn(1, 1, 16, 16, 16), torch.tensor([[0, 1]]), torch.tensor([0]))
    assert logits.shape == (1, 2, 16, 16, 16)
    assert [a.shape[2] for a in aux] == [8]


def test_unknown_concept_and_bad_table():
    net = build_model(_tiny(), ["a"], torch.randn(1, 384))
    with pytest.raises(KeyError, match="zzz"):
        net.query_indices(["zzz"])
    with pytest.raises(ValueError, match="concept_embeddings shape"):
        build_model(_tiny(), ["a", "b"], torch.randn(1, 384))


def test_partial_label_loss_masks_padding_and_learns():
    torch.manual_seed(0)
    net = build_model(_tiny(), ["a", "b"], torch.randn(2, 384))
    x = torch.randn(2, 1, 16, 16, 16)
    target = torch.zeros(2, 2, 16, 16, 16, dtype=torch.bool)
    target[:, 0, 4:12, 4:12, 4:12] = True
    valid = torch.tensor([[True, True], [True, False]])
    loss_fn = PartialLabelLoss()
    q = torch.tensor([[0, 1], [0, 1]])
    terms = loss_fn(net(x, q), target, valid)
    assert set(terms) == {"dice", "bce", "loss"}
    assert torch.isclose(terms["loss"], terms["dice"] + terms["bce"])
    # a padded query's logits do not affect the loss
    logits = net(x, q).detach()
    changed = logits.clone()
    changed[1, 1] += 100.0
    assert torch.isclose(loss_fn(logits, target, valid)["loss"], loss_fn(changed, target, valid)["loss"])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        loss = loss_fn(net(x, q), target, valid)["loss"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
