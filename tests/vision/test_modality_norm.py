"""Per-modality instance norm: the plain norm at start, one affine per modality after training,
and the modality carried from the segmenter's sliding window down to every norm layer."""
import pytest
import torch

from sat.model.config import ModelConfig
from sat.vision.modality_norm import ModalityInstanceNorm, set_modality
from sat.vision.unet import UNetBackbone


def _perturbed(c: int = 4) -> ModalityInstanceNorm:
    torch.manual_seed(0)
    n = ModalityInstanceNorm(c, 5)
    for p in n.parameters():
        torch.nn.init.normal_(p)
    return n


def test_fresh_norm_equals_affine_instance_norm():
    torch.manual_seed(1)
    x = torch.randn(3, 4, 5, 6, 7)
    plain = torch.nn.InstanceNorm3d(4, affine=True)
    n = ModalityInstanceNorm(4, 5)
    for p, q in ((plain.weight, n.weight), (plain.bias, n.bias)):
        torch.nn.init.normal_(p)
        q.data.copy_(p.data)
    n.modality = torch.tensor([1, 2, 0])
    torch.testing.assert_close(n(x), plain(x))


def test_each_sample_uses_its_modality_affine():
    n = _perturbed()
    x = torch.randn(3, 4, 5, 6, 7)
    m = torch.tensor([1, 2, 0])
    n.modality = m
    normed = torch.nn.functional.instance_norm(x, eps=n.eps)
    scale = (n.weight + n.modality_weight[m])[:, :, None, None, None]
    shift = (n.bias + n.modality_bias[m])[:, :, None, None, None]
    torch.testing.assert_close(n(x), normed * scale + shift)
    n.modality = None  # no modality: the shared affine alone
    torch.testing.assert_close(n(x), normed * n.weight[None, :, None, None, None] + n.bias[None, :, None, None, None])


def test_only_the_batch_modalities_receive_gradient():
    n = ModalityInstanceNorm(4, 5)
    n.modality = torch.tensor([2, 2])
    (n(torch.randn(2, 4, 4, 4, 4)) ** 3).sum().backward()
    grads = n.modality_weight.grad.abs().sum(1)
    assert grads[2] > 0 and grads[[0, 1, 3, 4]].sum() == 0


def test_bad_shapes_are_named():
    n = ModalityInstanceNorm(4, 5)
    with pytest.raises(ValueError, match="expected"):
        n(torch.randn(2, 3, 4, 4, 4))
    n.modality = torch.tensor([1, 2, 1])
    with pytest.raises(ValueError, match="modality shape"):
        n(torch.randn(2, 4, 4, 4, 4))
    with pytest.raises(ValueError, match="num_channels"):
        ModalityInstanceNorm(0, 5)


def test_backbone_features_depend_on_modality_only_with_the_option():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 16, 16, 16).repeat(2, 1, 1, 1, 1)
    plain = UNetBackbone(channels=(4, 8), out_channels=4).eval()
    assert not getattr(plain, "conditions_on_modality")
    cond = UNetBackbone(channels=(4, 8), out_channels=4, norm="modality_instance").eval()
    assert cond.conditions_on_modality
    with torch.no_grad():
        fresh = cond(x, torch.tensor([1, 2])).pixel
        torch.testing.assert_close(fresh[0], fresh[1])  # offsets start at zero
        for m in cond.modules():
            if isinstance(m, ModalityInstanceNorm):
                torch.nn.init.normal_(m.modality_weight, std=0.5)
        out = cond(x, torch.tensor([1, 2])).pixel
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_sliding_window_passes_the_image_modality(monkeypatch):
    from sat.model.builder import build_model
    from sat.model.sliding_window import encode_image

    cfg = ModelConfig(text_dim=8, backbone={"name": "unet", "channels": [4, 8], "out_channels": 4,
                                            "norm": "modality_instance"},
                      head={"name": "query_decoder", "d_model": 8, "layers": 1, "heads": 2, "token_scales": 1})
    net = build_model(cfg, ["liver"], torch.randn(1, 8)).eval()
    seen = []
    real = net.backbone.forward
    monkeypatch.setattr(net.backbone, "forward", lambda x, modality=None: seen.append(modality) or real(x, modality))
    encode_image(net, torch.randn(1, 20, 16, 16), "MR", (16, 16, 16), overlap=0.5)
    assert seen and all(m.tolist() == [2] * len(m) for m in seen)
    set_modality(net, None)


def test_modality_norm_is_a_unet_option():
    with pytest.raises(ValueError, match="unet option"):
        ModelConfig(backbone={"name": "dynunet", "norm": "modality_instance"})
