"""Sliding-window stitching checked against MONAI's sliding_window_inference as an oracle."""
from __future__ import annotations

import pytest
import torch

from sat.model.sliding_window import decode_near, decode_prompts, encode_image, gaussian_map, window_starts
from sat.vision.features import BackboneOutput


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

    def encode_image(self, x, modality=None):
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


class _WindowMean(_Echo):
    """A head whose answer depends on the whole window (its mean), so blending matters."""

    def head(self, feats, text, modality, pad):
        m = torch.sigmoid(feats.pixel.mean()) * 0.5
        return torch.logit(m).expand(1, text.shape[1], *feats.pixel.shape[2:])


def test_decoding_near_a_point_is_exact_where_every_covering_window_ran():
    torch.manual_seed(0)
    image = torch.randn(1, 64, 40, 40)
    net = _WindowMean()
    cache = encode_image(net, image, "CT", (16, 16, 16), overlap=0.5)
    full = decode_prompts(net, cache, ["a"])
    near, exact = decode_near(net, cache, ["a"], (8, 20, 20))
    assert exact.shape == (64, 40, 40) and bool(exact[8, 20, 20]) and not bool(exact[60, 20, 20])
    assert 0 < int(exact.sum()) < exact.numel() // 2
    assert torch.equal(near[0][exact], full[0][exact])
    assert not torch.equal(near[0][~exact], full[0][~exact])  # the rest is not the full answer


def test_a_shorter_reach_runs_fewer_windows_and_stays_exact_around_the_point():
    torch.manual_seed(0)
    net = _WindowMean()
    cache = encode_image(net, torch.randn(1, 64, 64, 64), "CT", (16, 16, 16), overlap=0.5)
    full = decode_prompts(net, cache, ["a"])
    calls = {}
    for reach in (0.5, 0.25):
        n = 0
        head = net.head

        def counting(*a, **k):
            nonlocal n
            n += 1
            return head(*a, **k)

        net.head = counting
        near, exact = decode_near(net, cache, ["a"], (32, 32, 32), reach=reach)
        del net.head
        calls[reach] = n
        r = int(16 * reach)
        assert bool(exact[32 - r:32 + r, 32 - r:32 + r, 32 - r:32 + r].all())  # at least reach x window each side
        assert torch.equal(near[0][exact], full[0][exact])
    assert calls == {0.5: 4 ** 3, 0.25: 3 ** 3}
    with pytest.raises(ValueError, match="reach"):
        decode_near(net, cache, ["a"], (32, 32, 32), reach=0.0)


def test_small_volume_is_padded_and_cropped_back():
    net = _Echo()
    cache = encode_image(net, torch.randn(1, 9, 20, 5), "MR", (16, 16, 16))
    assert decode_prompts(net, cache, ["a"]).shape == (1, 9, 20, 5)


def test_gaussian_map_peak_and_floor():
    w = gaussian_map((8, 8, 8))
    assert float(w.max()) == 1.0 and float(w.min()) >= 1e-3


class _SideNet(torch.nn.Module):
    """A laterality-aware fake: 'kidney_left' is any bright blob in the left half (low X on the RAS
    grid), 'kidney_right' any bright blob in the right half. Features are the image itself."""

    concept_ids = ["kidney_left", "kidney_right"]

    def __init__(self):
        super().__init__()
        self.concept_embeddings = torch.eye(2)  # row 0 = left, row 1 = right

    def query_indices(self, concepts):
        return torch.tensor([self.concept_ids.index(c) for c in concepts])

    def encode_image(self, x, modality=None):
        return BackboneOutput(pixel=x, encoder=[x], decoder=[])

    def head(self, feats, text, modality, pad):
        x = feats.pixel  # (B, 1, D, H, W)
        half = torch.arange(x.shape[2]) < x.shape[2] // 2  # (D,) left half
        left = text[:, :, 0, None, None, None] > 0.5  # (B, Q, 1, 1, 1)
        side = torch.where(left, half[:, None, None], ~half[:, None, None])  # (B, Q, D, 1, 1)
        return torch.where((x > 0) & side, 10.0, -10.0)  # (B, Q, D, H, W)


def test_tta_swaps_lateral_queries_on_the_flipped_image():
    from sat.model.sliding_window import decode_tta, flip_lr

    image = -torch.ones(1, 16, 16, 16)
    image[:, 2:7, 4:12, 4:12] = 1.0  # a large blob on the left
    image[:, 11:13, 6:8, 6:8] = 1.0  # a small blob on the right
    net = _SideNet()
    caches = [encode_image(net, v, "CT", (16, 16, 16)) for v in (image, flip_lr(image))]
    concepts = ["kidney_left", "kidney_right"]
    single = decode_tta(net, caches[:1], concepts, {}) > 0.5
    mirrored = decode_tta(net, caches, concepts, {"kidney_left": "kidney_right", "kidney_right": "kidney_left"}) > 0.5
    assert int(single[0].sum()) == 5 * 8 * 8 and int(single[1].sum()) == 2 * 2 * 2
    assert torch.equal(mirrored, single)  # the mirrored pass agrees with the plain pass
    # asking the flipped image the same side would average the two kidneys away
    naive = decode_tta(net, caches, concepts, {"kidney_left": "kidney_left", "kidney_right": "kidney_right"}) > 0.5
    assert not naive[0].any() and not naive[1].any()
    # a lateral concept whose mirror is untrained keeps its single-pass answer
    partial = decode_tta(net, caches, concepts, {"kidney_left": None, "kidney_right": "kidney_left"}) > 0.5
    assert torch.equal(partial, single)


def test_large_buffers_switch_to_float16(monkeypatch):
    from sat.model import sliding_window as engine

    net = _Echo()
    image = torch.randn(1, 20, 20, 20)
    cache = encode_image(net, image, "CT", (16, 16, 16))
    ref = decode_prompts(net, cache, ["a"]).float()
    monkeypatch.setattr(engine, "FLOAT32_BUFFER_BYTES", 0)
    half = decode_prompts(net, cache, ["a"]).float()
    assert half.dtype == torch.float32 and torch.allclose(ref, half, atol=2e-3)


def test_parallel_restore_equals_sequential():
    """Prompts restored on a thread pool give exactly the sequential masks and statistics."""
    import numpy as np
    import torch

    from sat.io.volume import Volume
    from sat.infer.restore import restore_prompts

    rng = np.random.default_rng(0)
    affine = np.diag([-1.5, -1.5, 2.5, 1.0])  # LPS-stored input grid
    volume = Volume(array=rng.normal(size=(40, 36, 20)).astype(np.float32), affine=affine)
    src_affine = np.diag([3.0, 3.0, 3.0, 1.0])
    src_affine[:3, 3] = [-58.5, -52.5, 0.0]
    probs = torch.from_numpy(rng.random((6, 20, 18, 17)).astype(np.float32) ** 4)
    lats = ["none", "left", "right", "none", "none", "left"]
    seq = restore_prompts(probs, src_affine, volume, lats)
    par = restore_prompts(probs, src_affine, volume, lats, workers=3)
    for a, b in zip(seq, par):
        assert np.array_equal(a.mask, b.mask) and a.stats == b.stats
    assert any(r.mask.any() for r in seq)


def test_prompts_with_one_answer_are_restored_once_and_get_their_own_copies():
    """Channels with the same answer, side and threshold are restored once; each gets its own arrays."""
    import numpy as np
    import torch

    from sat.infer import restore
    from sat.io.volume import Volume

    rng = np.random.default_rng(1)
    volume = Volume(array=rng.normal(size=(30, 28, 16)).astype(np.float32), affine=np.diag([1.5, 1.5, 2.5, 1.0]))
    one = torch.from_numpy(rng.random((14, 14, 13)).astype(np.float32) ** 3)
    probs = torch.stack([one, one, one, 1 - one])  # (4, x, y, z): three synonyms, one other answer
    src = np.diag([3.0, 3.0, 3.0, 1.0])
    calls = []
    real = restore.restore_prompt
    restore.restore_prompt = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        got = restore.restore_prompts(probs, src, volume, ["none"] * 4, keep_probabilities=True,
                                      answers=[("a",), ("a",), ("a",), ("b",)], thresholds=[0.5, 0.5, 0.3, 0.5])
    finally:
        restore.restore_prompt = real
    assert len(calls) == 3  # "a" at 0.5 once, "a" at 0.3, "b"
    plain = restore.restore_prompts(probs, src, volume, ["none"] * 4, keep_probabilities=True,
                                    thresholds=[0.5, 0.5, 0.3, 0.5])
    for a, b in zip(got, plain):
        assert np.array_equal(a.mask, b.mask) and np.array_equal(a.prob, b.prob) and a.stats == b.stats
    assert got[0].mask is not got[1].mask and got[0].prob is not got[1].prob
    got[1].mask[:] = False
    assert got[0].mask.any()
