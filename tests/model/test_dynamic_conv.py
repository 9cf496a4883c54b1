"""The dynamic-conv head's batched conv stack against one plain 1x1x1 ``conv3d`` stack per prompt."""
import pytest
import torch
import torch.nn.functional as F

from sat.model.dynamic_conv import DynamicConvHead


def per_prompt_reference(head: DynamicConvHead, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, Q, P) params, (B, C, D, H, W) features -> (B, Q, D, H, W), one prompt at a time."""
    out = torch.empty(params.shape[:2] + x.shape[2:])
    for b in range(params.shape[0]):
        for q in range(params.shape[1]):
            h, offset = x[b:b + 1], 0
            for k, (o, i) in enumerate(head.shapes):
                w = params[b, q, offset:offset + o * i].reshape(o, i, 1, 1, 1)
                bias = params[b, q, offset + o * i:offset + o * i + o]
                offset += o * i + o
                h = F.conv3d(h, w, bias)
                if k < len(head.shapes) - 1:
                    h = F.relu(h)
            out[b, q] = h[0, 0] + head.bias
    return out


@pytest.mark.parametrize("layers", [1, 3])
def test_batched_convs_match_a_conv3d_per_prompt_values_and_gradients(layers):
    torch.manual_seed(0)
    head = DynamicConvHead(text_dim=16, encoder_channels=(4, 8), pixel_channels=6, d_model=8,
                           conv_channels=5, conv_layers=layers)
    n = sum(o * i + o for o, i in head.shapes)
    params = torch.randn(2, 3, n, requires_grad=True)  # (B, Q, P)
    x = torch.randn(2, 5, 4, 3, 2, requires_grad=True)  # (B, C, D, H, W)
    got, ref = head.run_convs(params, x), per_prompt_reference(head, params, x)
    assert got.shape == (2, 3, 4, 3, 2)
    torch.testing.assert_close(got, ref)
    for a, b in zip(torch.autograd.grad(got.square().sum(), (params, x, head.bias)),
                    torch.autograd.grad(ref.square().sum(), (params, x, head.bias))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)  # float32 sums in another order
