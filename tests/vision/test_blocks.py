"""Oracle test: the torch-only U-Net blocks against MONAI's BasicUNet blocks.

The reference is the same backbone with its ``stem``/``downs``/``ups`` rebuilt from MONAI's
``TwoConv``/``Down``/``UpCat`` (the layout checkpoints were saved from); MONAI is imported here only.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sat.vision.unet import UNetBackbone

CONFIGS = [  # (in_channels, channels, out_channels, norm, input shape (B, C, D, H, W))
    (1, (4, 8, 16, 32), 8, "instance", (1, 1, 16, 16, 24)),
    # odd extents exercise the replicate padding after upsampling; batch norm exercises buffers
    (2, (3, 6, 12), 5, "batch", (2, 2, 10, 12, 9)),
]


def _monai_reference(in_channels: int, channels: tuple[int, ...], out_channels: int, norm: str) -> nn.Module:
    from monai.networks.nets.basic_unet import Down, TwoConv, UpCat

    act = ("LeakyReLU", {"negative_slope": 0.01, "inplace": True})
    nrm = (norm, {"affine": True}) if norm == "instance" else norm
    ref = UNetBackbone(in_channels=in_channels, channels=channels, out_channels=out_channels, norm=norm)
    ref.stem = TwoConv(3, in_channels, channels[0], act, nrm, True)
    ref.downs = nn.ModuleList(Down(3, channels[i], channels[i + 1], act, nrm, True)
                              for i in range(len(channels) - 1))
    ref.ups = nn.ModuleList(
        UpCat(3, channels[i], channels[i - 1], out_channels if i == 1 else channels[i - 1], act, nrm, True,
              halves=True)
        for i in range(len(channels) - 1, 0, -1))
    return ref


def _outputs(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    out = net(x)
    return [out.pixel, *out.encoder, *out.decoder]


@pytest.mark.parametrize("direction", ["monai_to_torch", "torch_to_monai"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=["instance4", "batch3_odd"])
def test_blocks_match_monai(cfg, direction):
    in_ch, channels, out_ch, norm, shape = cfg
    torch.manual_seed(0)
    ref = _monai_reference(in_ch, channels, out_ch, norm)
    ours = UNetBackbone(in_channels=in_ch, channels=channels, out_channels=out_ch, norm=norm)
    assert {k: v.shape for k, v in ref.state_dict().items()} == {k: v.shape for k, v in ours.state_dict().items()}
    src, dst = (ref, ours) if direction == "monai_to_torch" else (ours, ref)
    with torch.no_grad():  # non-trivial norm affines, so a swapped weight/bias would show
        for name, p in src.named_parameters():
            if name.endswith("adn.N.weight"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("adn.N.bias"):
                p.uniform_(-0.5, 0.5)
    dst.load_state_dict(src.state_dict(), strict=True)
    x = torch.randn(shape)

    for mode in ("train", "eval"):  # train first: batch norm running stats then feed eval mode
        ref.train(mode == "train")
        ours.train(mode == "train")
        a, b = _outputs(ref, x), _outputs(ours, x)
        assert len(a) == len(b) == 1 + len(channels) + len(channels) - 1
        for u, v in zip(a, b):
            assert u.shape == v.shape
            torch.testing.assert_close(v, u, atol=1e-5, rtol=1e-5)
        assert a[0].shape == (shape[0], out_ch, *shape[2:])
        for k, v in ref.state_dict().items():  # buffers (running stats) updated alike
            torch.testing.assert_close(ours.state_dict()[k], v, atol=1e-6, rtol=1e-6)


def test_gradients_match_monai():
    in_ch, channels, out_ch, norm, shape = CONFIGS[0]
    torch.manual_seed(1)
    ref = _monai_reference(in_ch, channels, out_ch, norm)
    ours = UNetBackbone(in_channels=in_ch, channels=channels, out_channels=out_ch, norm=norm, checkpointing=True)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(shape)
    for net in (ref, ours):
        net.train()
        (net(x).pixel ** 2).mean().backward()
    grads = dict(ours.named_parameters())
    for name, p in ref.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, atol=1e-5, rtol=1e-4)


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match="'layer'"):
        UNetBackbone(channels=(4, 8), norm="layer")
