"""Per-modality convolution offsets: the plain convolution at start, one kernel per modality after
training, mixed batches equal to per-sample convolutions, and the U-Net option wiring them into
its two full-resolution blocks only."""
import pytest
import torch

from sat.model.config import ModelConfig
from sat.vision.modality_conv import ModalityConv3d
from sat.vision.modality_norm import set_modality
from sat.vision.unet import UNetBackbone


def _conv(seed: int = 0) -> ModalityConv3d:
    torch.manual_seed(seed)
    c = ModalityConv3d(2, 3, 4)
    for p in (c.modality_weight, c.modality_bias):
        torch.nn.init.normal_(p, std=0.3)
    return c


def test_fresh_offsets_give_the_plain_convolution():
    torch.manual_seed(1)
    c = ModalityConv3d(2, 3, 4)
    plain = torch.nn.Conv3d(2, 3, 3, padding=1)
    plain.load_state_dict({"weight": c.weight.data, "bias": c.bias.data})
    x = torch.randn(2, 2, 5, 6, 7)
    c.modality = torch.tensor([1, 2])
    torch.testing.assert_close(c(x), plain(x))


def test_each_sample_uses_its_modality_kernel():
    c = _conv()
    x = torch.randn(3, 2, 5, 6, 7)
    for m in ([1, 2, 0], [2, 2, 2]):  # a mixed batch (grouped convolution) and a single-modality one
        c.modality = torch.tensor(m)
        expect = torch.cat([torch.nn.functional.conv3d(x[i:i + 1], c.weight + c.modality_weight[k],
                                                       c.bias + c.modality_bias[k], padding=1)
                            for i, k in enumerate(m)])
        torch.testing.assert_close(c(x), expect)
    c.modality = None  # no modality: the shared kernel alone
    torch.testing.assert_close(c(x), torch.nn.functional.conv3d(x, c.weight, c.bias, padding=1))


def test_only_the_batch_modality_receives_gradient():
    c = ModalityConv3d(2, 3, 4)
    c.modality = torch.tensor([2, 2])
    (c(torch.randn(2, 2, 4, 4, 4)) ** 2).sum().backward()
    grads = c.modality_weight.grad.abs().flatten(1).sum(1)
    assert grads[2] > 0 and grads[[0, 1, 3]].sum() == 0
    assert c.weight.grad.abs().sum() > 0  # the shared kernel learns from every sample


def test_bad_modality_shape_and_rows_are_named():
    c = ModalityConv3d(2, 3, 4)
    c.modality = torch.tensor([1, 2, 1])
    with pytest.raises(ValueError, match="modality shape"):
        c(torch.randn(2, 2, 4, 4, 4))
    with pytest.raises(ValueError, match="num_modalities"):
        ModalityConv3d(2, 3, 0)


def test_unet_option_puts_offsets_in_the_full_resolution_blocks_only():
    net = UNetBackbone(channels=(4, 8, 16), out_channels=6, modality_full_res=True).eval()
    assert net.conditions_on_modality
    offsets = sorted(n for n, m in net.named_modules() if isinstance(m, ModalityConv3d))
    assert offsets == ["stem.conv_0.conv", "stem.conv_1.conv", "ups.1.convs.conv_0.conv", "ups.1.convs.conv_1.conv"]
    x = torch.randn(1, 1, 16, 16, 16).repeat(2, 1, 1, 1, 1)
    with torch.no_grad():
        fresh = net(x, torch.tensor([1, 2])).pixel
        torch.testing.assert_close(fresh[0], fresh[1])  # offsets start at zero
        net.stem.conv_0.conv.modality_weight.normal_(std=0.5)
        out = net(x, torch.tensor([1, 2])).pixel
    assert out.shape == (2, 6, 16, 16, 16) and (out[0] - out[1]).abs().max() > 1e-3
    set_modality(net, None)


def test_plain_unet_state_dict_loads_into_the_option_with_new_keys_only():
    plain = UNetBackbone(channels=(4, 8), out_channels=4)
    cond = UNetBackbone(channels=(4, 8), out_channels=4, modality_full_res=True)
    missing, unexpected = cond.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.endswith(("modality_weight", "modality_bias")) for k in missing)


def test_option_is_unet_only_and_reaches_the_built_model():
    with pytest.raises(ValueError, match="unet option"):
        ModelConfig(backbone={"name": "dynunet", "modality_full_res": True})
    from sat.model.builder import build_model

    cfg = ModelConfig(text_dim=8, backbone={"name": "unet", "channels": [4, 8], "out_channels": 4,
                                            "modality_full_res": True},
                      head={"name": "query_decoder", "d_model": 8, "layers": 1, "heads": 2, "token_scales": 1})
    net = build_model(cfg, ["liver"], torch.randn(1, 8))
    assert any(isinstance(m, ModalityConv3d) for m in net.backbone.modules())
