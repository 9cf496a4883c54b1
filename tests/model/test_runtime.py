"""GPU-path switches (sat.model.runtime): checkpointing gated by patch size, CUDA-only layout and
compile switches that leave CPU models and state dicts untouched."""
from __future__ import annotations

import pytest
import torch

from sat.model.builder import build_model
from sat.model.config import BackboneConfig, HeadConfig, ModelConfig
from sat.model.runtime import apply_runtime


def _cfg(**kw) -> ModelConfig:
    backbone = dict(channels=(4, 8, 16, 32), out_channels=8, checkpointing=True, checkpoint_min_patch=24)
    backbone.update(kw.pop("backbone", {}))
    return ModelConfig(backbone=BackboneConfig(**backbone), head=HeadConfig(d_model=32, layers=1, heads=2), **kw)


def _net(cfg: ModelConfig):
    torch.manual_seed(0)
    return build_model(cfg, ["a", "b"], torch.randn(2, cfg.text_dim))


def test_checkpointing_only_from_the_threshold_patch_on():
    net = _net(_cfg()).train()
    q = torch.tensor([[0, 1]])
    net(torch.randn(1, 1, 16, 16, 16), q)
    assert net.backbone.checkpointing is False  # 16³ < 24³: no recomputation
    out = net(torch.randn(1, 1, 32, 32, 32), q)
    assert net.backbone.checkpointing is True
    out.float().mean().backward()  # the checkpointed backward runs
    assert all(p.grad is not None for p in net.backbone.stem.parameters())


def test_gate_off_leaves_the_configured_flag():
    net = _net(_cfg(backbone={"checkpoint_min_patch": 0})).train()
    net(torch.randn(1, 1, 16, 16, 16), torch.tensor([[0]]))
    assert net.backbone.checkpointing is True


def test_cuda_switches_change_nothing_on_cpu():
    plain, fast = _net(_cfg()), _net(_cfg(channels_last=True, compile=True))
    assert plain.state_dict().keys() == fast.state_dict().keys()
    x, q = torch.randn(1, 1, 32, 32, 32), torch.tensor([[0, 1]])
    with torch.no_grad():
        torch.testing.assert_close(fast.eval()(x, q), plain.eval()(x, q), rtol=0, atol=0)
    conv = next(m for m in fast.backbone.modules() if isinstance(m, torch.nn.Conv3d))
    assert conv.weight.is_contiguous()  # not converted to channels_last_3d on the CPU


def test_config_round_trip_and_validation():
    cfg = _cfg(channels_last=True, compile=True)
    back = ModelConfig.from_dict(cfg.to_dict())
    assert back.channels_last and back.compile and back.backbone.checkpoint_min_patch == 24
    with pytest.raises(ValueError, match="checkpoint_min_patch"):
        apply_runtime(_net(_cfg(backbone={"checkpoint_min_patch": 0})), checkpointing=True, checkpoint_min_patch=-1)
