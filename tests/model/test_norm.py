"""ChannelSpatialNorm is GroupNorm(1, C): same values (fp32, bf16, autocast), same gradients,
same state dict, so checkpoints saved with the GroupNorm heads load and predict unchanged."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sat.model.norm import ChannelSpatialNorm


def _pair(c: int, seed: int = 0) -> tuple[nn.GroupNorm, ChannelSpatialNorm]:
    torch.manual_seed(seed)
    ref = nn.GroupNorm(1, c)
    with torch.no_grad():
        ref.weight.normal_()
        ref.bias.normal_()
    new = ChannelSpatialNorm(c)
    new.load_state_dict(ref.state_dict())
    return ref, new


@pytest.mark.parametrize("shape", [(2, 8, 6, 5, 4), (1, 3, 7), (3, 16, 4, 4, 4)])
def test_matches_groupnorm_fp32_values_and_gradients(shape):
    ref, new = _pair(shape[1])
    x = (torch.randn(shape) * 3 + 5).requires_grad_(True)  # offset mean: tests the centring
    x2 = x.detach().clone().requires_grad_(True)
    y_ref, y_new = ref(x), new.parallel_norm(x2)  # the accelerator path, run on the CPU
    torch.testing.assert_close(new(x), y_ref, rtol=1e-6, atol=1e-6)  # the CPU path
    assert y_new.dtype == torch.float32 and y_new.shape == x.shape
    torch.testing.assert_close(y_new, y_ref, rtol=1e-5, atol=1e-5)
    g = torch.randn(shape)
    (y_ref * g).sum().backward()
    (y_new * g).sum().backward()
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(new.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(new.bias.grad, ref.bias.grad, rtol=1e-4, atol=1e-4)


def test_matches_groupnorm_bf16_input_and_autocast():
    ref, new = _pair(8, seed=1)
    x = torch.randn(2, 8, 6, 6, 6) * 2 + 1
    xb = x.bfloat16()
    exact = ref(x)
    # bf16 in, bf16 out: both are the exact result rounded to bf16 (within a bf16 ulp or two)
    y_ref, y_new = ref.bfloat16()(xb), new.bfloat16().parallel_norm(xb)
    assert y_new.dtype == torch.bfloat16
    torch.testing.assert_close(y_new.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
    ref.float(), new.float()
    # CPU autocast: same output dtype as GroupNorm, and the float32 result of the bf16 input, rounded
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y_ref, y_new = ref(xb), new.parallel_norm(xb)
    assert y_new.dtype == y_ref.dtype
    torch.testing.assert_close(y_new.float(), y_ref.float(), rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(y_new.float(), ref(xb.float()).to(y_new.dtype).float(), rtol=8e-3, atol=1e-3)
    assert (y_new.float() - exact).abs().max() < 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_matches_groupnorm_under_cuda_autocast():
    ref, new = (m.cuda() for m in _pair(8, seed=2))
    xb = (torch.randn(2, 8, 16, 16, 16, device="cuda") * 2 + 1).bfloat16()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y_ref, y_new = ref(xb), new(xb)
    assert y_ref.dtype == y_new.dtype == torch.float32
    torch.testing.assert_close(y_new, y_ref, rtol=1e-4, atol=1e-4)


def test_constant_sample_is_finite():
    new = ChannelSpatialNorm(4)
    y = new.parallel_norm(torch.full((1, 4, 3, 3, 3), 7.0))
    assert torch.isfinite(y).all() and y.abs().max() == 0


def test_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="expected"):
        ChannelSpatialNorm(4)(torch.zeros(1, 3, 2, 2, 2))
    with pytest.raises(ValueError, match="num_channels"):
        ChannelSpatialNorm(0)


@pytest.mark.parametrize("accelerator_path", [False, True])
@pytest.mark.parametrize("head", ["query_decoder", "dynamic_conv"])
def test_old_groupnorm_checkpoint_loads_and_predicts_the_same(head, accelerator_path, monkeypatch):
    """A head built with nn.GroupNorm(1, C) (the layer before this change) saves a state dict
    that the current head loads strictly and that gives the same logits, on the CPU path and on
    the var_mean path that CUDA takes."""
    from sat.model.builder import build_model
    from sat.model.config import BackboneConfig, HeadConfig, ModelConfig

    cfg = ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16, 32), out_channels=8),
                      head=HeadConfig(name=head, d_model=32, layers=1, heads=2, deep_supervision=True))
    torch.manual_seed(0)
    emb = torch.randn(3, cfg.text_dim)
    net = build_model(cfg, ["a", "b", "c"], emb).eval()
    norms = [n for n, m in net.named_modules() if isinstance(m, ChannelSpatialNorm)]
    assert norms, "the head has no whole-sample norm"
    old = build_model(cfg, ["a", "b", "c"], emb).eval()
    for name in norms:  # swap in the GroupNorm the head used to build, with random affine
        parent, _, leaf = name.rpartition(".")
        gn = nn.GroupNorm(1, old.get_submodule(name).num_channels)
        with torch.no_grad():
            gn.weight.uniform_(0.5, 1.5)
            gn.bias.normal_(0, 0.1)
        setattr(old.get_submodule(parent), leaf, gn)
    with torch.no_grad():  # non-zero mask embedding, so the logits depend on the normalised features
        for p in old.head.parameters():
            if p.ndim == 2 and not p.any():
                p.normal_(0, 0.3)
    net.load_state_dict(old.state_dict(), strict=True)
    if accelerator_path:
        monkeypatch.setattr(ChannelSpatialNorm, "forward", ChannelSpatialNorm.parallel_norm)
    x = torch.randn(1, 1, 32, 32, 32)
    q = torch.tensor([[0, 2]])
    with torch.no_grad():
        expected, got = old(x, q, torch.tensor([1])), net(x, q, torch.tensor([1]))
    assert expected.abs().max() > 0.1  # the comparison is not between two constant maps
    if accelerator_path:
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    else:  # the CPU path is the same kernel: bit-identical logits, so CPU training and Dice are unchanged
        assert torch.equal(got, expected)
