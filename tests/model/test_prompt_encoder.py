"""Clicks and boxes as extra query tokens: identity without prompts, locality, no-text queries,
checkpoint round trip, and position encodings that match the visual tokens'."""
from __future__ import annotations

import pytest
import torch

from sat.model.builder import build_model
from sat.model.config import BackboneConfig, HeadConfig, ModelConfig
from sat.model.posenc import sincos_3d
from sat.model.prompts import (BOX_2D, BOX_3D, NEGATIVE, POSITIVE, Prompts, box_3d, box_gate, grid_fraction,
                               sincos_points)

IDS = ["liver", "spleen"]


def _cfg(interactive: bool = True) -> ModelConfig:
    return ModelConfig(text_dim=16, backbone=BackboneConfig(channels=(4, 8, 16), out_channels=8),
                       head=HeadConfig(d_model=16, layers=2, heads=2, interactive=interactive))


def _net(interactive: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    net = build_model(_cfg(interactive), IDS, torch.randn(2, 16)).eval()
    torch.nn.init.normal_(net.head.mask_embed[-1].weight)  # zero at start: give the text path a shape
    return net


def test_no_prompts_gives_the_plain_heads_logits_exactly():
    plain, inter = _net(False), _net(True)
    missing, unexpected = inter.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("head.prompt.") for k in missing)
    x, q = torch.randn(1, 1, 16, 16, 16), torch.tensor([[0, 1]])
    with torch.no_grad():
        ref = plain(x, q)
        assert torch.equal(inter(x, q), ref)
        assert torch.equal(inter(x, q, prompts=Prompts.empty(1, 2, k=3)), ref)


def test_untrained_clicks_act_locally_and_with_their_sign():
    net = _net()
    x, q = torch.randn(1, 1, 16, 16, 16), torch.tensor([[0, 1]])
    p = Prompts.empty(1, 2).with_click(0, 0, (4, 4, 4), POSITIVE).with_click(0, 1, (11, 11, 11), NEGATIVE)
    with torch.no_grad():
        feats = net.encode_image(x)
        both = net.decode(feats, q, prompts=p)
        d = both - net.decode(feats, q)
        only_first = net.decode(feats, q, prompts=Prompts.empty(1, 2).with_click(0, 0, (4, 4, 4), POSITIVE))
    assert d[0, 0, 4, 4, 4] > 5 and d[0, 1, 11, 11, 11] < -5
    assert d[0, 0, 15, 15, 15].abs() < 1e-3 and d[0, 1, 0, 0, 0].abs() < 1e-3  # far away: unchanged
    assert torch.equal(both[0, 0], only_first[0, 0])  # one query's click never touches another query


def test_points_only_and_2d_box_only_queries_give_masks_and_gradients():
    net = _net().train()
    x, q = torch.randn(2, 1, 16, 16, 16), torch.zeros(2, 1, dtype=torch.long)
    p = Prompts.empty(2, 1).with_click(0, 0, (8, 8, 8), POSITIVE)
    p.has_text[:] = False
    p.boxes[1, 0] = torch.tensor([[3.0, 3.0, 8.0], [12.0, 10.0, 8.0]])  # a 2D box on slice z = 8
    p.box_kind[1, 0] = BOX_2D
    out = net(x, q, prompts=p)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits[0, 0, 8, 8, 8] > 0 > logits[0, 0, 0, 0, 0]  # the click's blob on the background prior
    assert logits[1, 0, 7, 6, 8] > 0 > logits[1, 0, 14, 14, 8]  # inside vs outside the box
    logits.sum().backward()
    enc = net.head.prompt
    assert enc.click_out.weight.grad.abs().sum() > 0 and enc.box_out.weight.grad.abs().sum() > 0
    assert enc.null_scale.grad is not None


def test_box_geometry_2d_box_gets_depth_and_gate_is_inside():
    boxes = torch.tensor([[[[2.0, 2.0, 5.0], [9.0, 5.0, 5.0]]]])  # 8 x 4 voxels on slice 5
    c = box_3d(boxes, torch.tensor([[BOX_2D]]))
    assert c[0, 0, :, 2].tolist() == [2.0, 8.0]  # mean in-plane extent 6 -> 3 voxels each way
    assert torch.equal(box_3d(boxes, torch.tensor([[BOX_3D]])), boxes)
    g = box_gate(boxes, torch.tensor([[BOX_3D]]), (12, 12, 12))
    assert g[0, 0, 5, 3, 5] > 0.6 and g[0, 0, 11, 3, 5] < 0.01 and g[0, 0, 5, 3, 7] < 0.2


def test_point_encoding_matches_the_visual_token_grid():
    patch, grid, d = (32, 32, 16), (4, 4, 2), 48
    cells = torch.stack(torch.meshgrid(*[torch.arange(n) for n in grid], indexing="ij"), -1).reshape(-1, 3)
    centres = (cells.float() + 0.5) * torch.tensor(patch) / torch.tensor(grid) - 0.5  # voxel at cell centre
    enc = sincos_points(grid_fraction(centres, patch, grid), d)
    assert torch.allclose(enc, sincos_3d(grid, d), atol=1e-5)


def test_interactive_checkpoint_round_trips_strictly(tmp_path):
    from sat.model.checkpoint import load_checkpoint, save_checkpoint
    from sat.volume.preprocess import PreprocessSpec

    net = _net()
    torch.nn.init.normal_(net.head.prompt.click_out.weight)
    path = save_checkpoint(tmp_path / "m.ckpt", net, model_cfg=_cfg(), text_spec={}, tree_hash="x",
                           preprocess=PreprocessSpec().to_dict(), trained_concepts=IDS)
    back, meta = load_checkpoint(path)
    assert meta.model.head.interactive is True
    x, q = torch.randn(1, 1, 16, 16, 16), torch.tensor([[0]])
    p = Prompts.empty(1, 1).with_click(0, 0, (3, 4, 5), POSITIVE)
    with torch.no_grad():
        assert torch.allclose(back(x, q, prompts=p), net(x, q, prompts=p))


def test_prompts_without_an_encoder_and_bad_shapes_are_named():
    net = _net(False)
    with pytest.raises(ValueError, match="no prompt encoder"):
        net(torch.randn(1, 1, 16, 16, 16), torch.tensor([[0]]), prompts=Prompts.empty(1, 1))
    net.head.add_prompt_encoder()  # an older checkpoint gets the untrained prior rule
    assert net(torch.randn(1, 1, 16, 16, 16), torch.tensor([[0]]), prompts=Prompts.empty(1, 1)).shape[1] == 1
    with pytest.raises(ValueError, match="prompts.boxes has shape"):
        Prompts(points=torch.zeros(1, 1, 0, 3), labels=torch.zeros(1, 1, 0), boxes=torch.zeros(1, 1, 3),
                box_kind=torch.zeros(1, 1), has_text=torch.ones(1, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs the query_decoder head"):
        build_model(ModelConfig(text_dim=16, head=HeadConfig(name="dynamic_conv", interactive=True)),
                    IDS, torch.randn(2, 16))
