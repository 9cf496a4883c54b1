"""Optimiser groups, schedule, EMA, safe checkpoint I/O, loggers and validation tables."""
from __future__ import annotations

import math
import sys

import pytest
import torch

from sat.model.builder import build_model
from sat.model.config import BackboneConfig, HeadConfig, ModelConfig
from sat.train.optim import param_groups, warmup_cosine


def _net(head: str = "query_decoder"):
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16), out_channels=8),
                      head=HeadConfig(name=head, d_model=16, layers=1, heads=2))
    return build_model(cfg, ["a", "b"], torch.randn(2, 384))


@pytest.mark.parametrize("head", ["query_decoder", "dynamic_conv"])
def test_weight_decay_is_applied_to_weights_only(head):
    net = _net(head)
    lr, wd = 0.1, 0.5
    groups = param_groups(net, lr=lr, weight_decay=wd, text_lr_mult=0.25)
    names = {id(p): n for n, p in net.named_parameters()}
    by_group = {g["name"]: [names[id(p)] for p in g["params"]] for g in groups}
    assert sum(len(v) for v in by_group.values()) == sum(1 for _ in net.parameters())
    params = dict(net.named_parameters())
    no_decay = by_group["vision_no_decay"] + by_group.get("text_no_decay", [])
    decay = by_group["vision_decay"] + by_group["text_decay"]
    # norms (LayerNorm, GroupNorm, MONAI's InstanceNorm), biases, scalars, embeddings: no decay
    assert all(params[n].ndim < 2 or "modality" in n for n in no_decay)
    assert {n for n in params if n.endswith(".bias") or "norm" in n or ".adn.N." in n} <= set(no_decay)
    assert decay and all(params[n].ndim >= 2 and "modality" not in n for n in decay)
    assert all(n.startswith("head.text_proj") for n in by_group["text_decay"])
    assert {g["name"]: g["lr"] for g in groups}["text_decay"] == pytest.approx(lr * 0.25)

    # one AdamW step with zero gradients: only the decoupled decay moves the weights
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.AdamW(groups)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in net.named_parameters():
        if n in decay:
            g_lr = lr * (0.25 if n.startswith("head.text_proj") else 1.0)
            assert torch.allclose(p, before[n] * (1 - g_lr * wd)), n
        else:
            assert torch.equal(p, before[n]), n


def test_warmup_cosine_shape():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=4, total_steps=20, min_ratio=0.01)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.25) and lrs[3] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert lrs[12] == pytest.approx(0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 8 / 16)))
    with pytest.raises(ValueError, match="total_steps"):
        warmup_cosine(opt, warmup_steps=1, total_steps=0)


def test_time_progress_runs_the_decay_ahead_of_the_steps():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    clock = {"used": 0.0}
    sched = warmup_cosine(opt, warmup_steps=0, total_steps=1000, min_ratio=0.0, progress=lambda: clock["used"])
    clock["used"] = 0.5  # half the wall-clock budget gone after one step
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    clock["used"] = 1.0
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_time_only_schedule_follows_progress_alone():
    """No step total (a run capped by ``max_time`` only): the cosine follows the time used, not
    a made-up total that would drop the rate to its floor after warm-up."""
    from sat.train.optim import warmup_cosine

    used = {"share": 0.0}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=2, total_steps=None, progress=lambda: used["share"])
    for _ in range(5):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0)  # after warm-up, nothing of the time used
    used["share"] = 0.5
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 + 0.99 * 0.5)
    with pytest.raises(ValueError, match="progress"):
        warmup_cosine(opt, warmup_steps=2, total_steps=None)


def test_time_schedule_is_validated():
    from sat.train.module import OptimConfig

    with pytest.raises(ValueError, match="'wall'"):
        OptimConfig(schedule="wall")


def test_ema_tracks_weights():
    from sat.train.ema import ModelEMA

    net = _net()
    ema = ModelEMA(net, decay=0.9)
    assert not any(p.requires_grad for p in ema.module.parameters())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ref = [p.detach().clone() for p in ema.module.parameters()]
    ema.update(net)
    d = min(0.9, 1 / 10)  # warm-up decay of the first update
    for e, r, p in zip(ema.module.parameters(), ref, net.parameters()):
        assert torch.allclose(e, d * r + (1 - d) * p, atol=1e-6)
    assert int(ema.updates) == 1
    ema.train()
    assert not ema.module.training
    with pytest.raises(ValueError, match="decay"):
        ModelEMA(net, decay=1.0)


def test_safe_checkpoint_io_is_atomic_and_refuses_code(tmp_path, monkeypatch):
    from sat.train.checkpoint_io import SafeCheckpointIO

    io, path = SafeCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 3}, path)
    assert io.load_checkpoint(path)["global_step"] == 3

    def boom(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"global_step": 4}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["global_step"] == 3  # the old checkpoint survives intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left

    import argparse  # any non-tensor class needs its code unpickled to load

    torch.save({"obj": argparse.Namespace(x=1)}, tmp_path / "evil.ckpt")
    with pytest.raises(Exception, match="[Ww]eights"):
        io.load_checkpoint(tmp_path / "evil.ckpt")


def test_default_loggers_offline_wandb_and_csv_fallback(tmp_path, monkeypatch):
    from lightning.pytorch.loggers import CSVLogger

    from sat.train.loggers import default_loggers

    monkeypatch.delenv("WANDB_MODE", raising=False)
    loggers = default_loggers(tmp_path)
    assert isinstance(loggers[0], CSVLogger)
    assert [type(lg).__name__ for lg in loggers[1:]] == ["WandbLogger"]
    assert loggers[1]._offline and __import__("os").environ["WANDB_MODE"] == "offline"
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    assert [type(lg).__name__ for lg in default_loggers(tmp_path)] == ["CSVLogger"]


def test_dice_table_groups_by_dataset_concept_and_region():
    from sat.train.val_metrics import DiceTable, dice_score

    assert dice_score(torch.tensor([True, False]), torch.tensor([True, True])) == pytest.approx(2 / 3)
    assert dice_score(torch.zeros(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)) == 1.0
    t = DiceTable({"liver": "abdomen", "lung_left": "thorax"})
    t.add("a", "liver", 0.8)
    t.add("b", "liver", 0.6)
    t.add("a", "lung_left", 0.2)
    t.gather()  # no process group: a no-op
    m = t.means()
    assert m["val/dice"] == pytest.approx(1.6 / 3)
    assert m["val/dice_dataset/a"] == pytest.approx(0.5)
    assert m["val/dice_concept/liver"] == pytest.approx(0.7)
    assert m["val/dice_region/thorax"] == pytest.approx(0.2)


def test_overlay_figure_writes_png(tmp_path):
    import numpy as np

    from sat.train.callbacks import overlay_figure

    img = np.random.default_rng(0).normal(size=(16, 16, 8)).astype(np.float32)
    gt = np.zeros((16, 16, 8), bool)
    gt[4:10, 4:10, 2:6] = True
    path = overlay_figure(img, gt, np.roll(gt, 2, axis=0), "t", tmp_path / "o" / "x.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
