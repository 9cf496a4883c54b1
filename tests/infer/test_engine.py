"""Sliding-window stitching checked against MONAI's sliding_window_inference as an oracle."""
from __future__ import annotations

import torch

from sat.infer.engine import decode_prompts, encode_image, gaussian_map, window_starts
from sat.vision.unet import BackboneOutput


def test_window_starts_cover_everything():
    assert window_starts(10, 16, 0.25) == [0]
    starts = window_starts(100, 32, 0.25)
    assert starts[0] == 0 and starts[-1] == 68
    assert all(b - a <= 24 for a, b in zip(starts, starts[1:]))


class _Echo(torch.nn.Module):
    """A fake network whose 'features' are the image and whose head returns logit(image + 1)."""

    def __init__(self):
        super().__init__()
        self.concept_embeddings = torch.zeros(2, 1)
        self.w = torch.nn.Parameter(torch.zeros(()))

    def query_indices(self, concepts):
        return torch.arange(len(concepts))

    def encode_image(self, x):
        return BackboneOutput(pixel=x, encoder=[x], decoder=[])

    def head(self, feats, text, modality, pad):
        p = torch.sigmoid(feats.pixel) * 0.5  # values in (0, 0.5): a smooth per-voxel function
        return torch.logit(p.expand(-1, text.shape[1], -1, -1, -1))


def test_stitching_matches_monai_oracle():
    from monai.inferers import sliding_window_inference

    torch.manual_seed(0)
    image = torch.randn(1, 37, 29, 41)
    net = _Echo()
    cache = encode_image(net, image, "CT", (16, 16, 16), overlap=0.5)
    ours = decode_prompts(net, cache, ["a", "b"]).float()
    ref = sliding_window_inference(image[None], (16, 16, 16), 4, lambda x: torch.sigmoid(x) * 0.5,
                                   overlap=0.5, mode="gaussian")[0]
    assert ours.shape == (2, 37, 29, 41)
    # a per-voxel function is reproduced exactly by any blending; float16 buffer -> 1e-3
    assert torch.allclose(ours[0], ref[0], atol=2e-3)
    assert torch.allclose(ours[1], ours[0])


def test_small_volume_is_padded_and_cropped_back():
    net = _Echo()
    cache = encode_image(net, torch.randn(1, 9, 20, 5), "MR", (16, 16, 16))
    assert decode_prompts(net, cache, ["a"]).shape == (1, 9, 20, 5)


def test_gaussian_map_peak_and_floor():
    w = gaussian_map((8, 8, 8))
    assert float(w.max()) == 1.0 and float(w.min()) >= 1e-3
