"""Benchmark: the cost of text queries over a plain multi-class U-Net, on CPU.

``sat train-bench`` (or ``python -m sat.bench.train_overhead``) times full training steps (forward, loss,
backward, AdamW) of

* a model variant (default ``nano``: U-Net backbone + query decoder) asked ``K`` text queries with
  the partial-label Dice + BCE loss, and
* MONAI's ``BasicUNet`` with the same encoder/decoder widths and ``K + 1`` output channels
  (background + one per class) trained with softmax Dice + cross-entropy, and
* the variant's own backbone with a 1x1x1 convolution to ``K + 1`` channels and the same softmax
  loss (exactly the same backbone, so the difference is the text-query head and loss alone),

on the same patch and batch, alternating the two so machine load affects both alike, and prints
the median step times and their ratio (the project target is <= 1.3).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def _blobs(batch: int, k: int, patch: int, gen: torch.Generator) -> torch.Tensor:
    """(B, P, P, P) integer label maps with ``k`` classes as random boxes (0 = background)."""
    lab = torch.zeros(batch, patch, patch, patch, dtype=torch.long)
    for b in range(batch):
        for c in range(1, k + 1):
            lo = torch.randint(0, patch // 2, (3,), generator=gen)
            size = torch.randint(patch // 8, patch // 2, (3,), generator=gen)
            hi = (lo + size).clamp(max=patch)
            lab[b, lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = c
    return lab


def text_query_step(variant: str, batch: int, k: int, patch: int):
    """A closure running one training step of ``variant`` with ``k`` queries per image."""
    from sat.losses.partial_label import PartialLabelLoss
    from sat.model.builder import build_model
    from sat.model.config import load_model_config
    from sat.train.optim import param_groups

    cfg = load_model_config(variant)
    net = build_model(cfg, [f"c{i}" for i in range(k)], torch.randn(k, cfg.text_dim)).train()
    opt = torch.optim.AdamW(param_groups(net, lr=1e-3, weight_decay=1e-4))
    loss_fn = PartialLabelLoss()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.in_channels, patch, patch, patch, generator=gen)
    lab = _blobs(batch, k, patch, gen)
    target = torch.stack([lab == c for c in range(1, k + 1)], dim=1)  # (B, K, P, P, P)
    queries = torch.arange(k).expand(batch, k)
    valid = torch.ones(batch, k, dtype=torch.bool)
    modality = torch.ones(batch, dtype=torch.long)

    def step() -> float:
        loss = loss_fn(net(x, queries, modality, ~valid), target, valid)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step, sum(p.numel() for p in net.parameters() if p.requires_grad)


class _ConvHead(torch.nn.Module):
    """A backbone's full-resolution features -> ``k + 1`` class logits."""

    def __init__(self, backbone: torch.nn.Module, k: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.out = torch.nn.Conv3d(backbone.out_channels, k + 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.backbone(x).pixel)  # (B, K + 1, D, H, W)


def multiclass_step(variant: str, batch: int, k: int, patch: int, *, same_backbone: bool = False):
    """A closure running one softmax training step with ``k + 1`` outputs: MONAI's BasicUNet with
    the variant's widths, or (``same_backbone``) the variant's backbone plus a 1x1x1 convolution."""
    from monai.losses import DiceCELoss
    from monai.networks.nets import BasicUNet

    from sat.model.builder import build_backbone
    from sat.model.config import load_model_config

    cfg = load_model_config(variant)
    b = cfg.backbone
    if same_backbone:
        net = _ConvHead(build_backbone(cfg), k).train()
    else:
        if b.name != "unet" or len(b.channels) != 5:
            raise ValueError(f"the BasicUNet baseline mirrors a 5-scale 'unet' backbone; {variant!r} has "
                             f"{b.name} with {len(b.channels)} scales")
        net = BasicUNet(spatial_dims=3, in_channels=cfg.in_channels, out_channels=k + 1,
                        features=(*b.channels, b.out_channels)).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.in_channels, patch, patch, patch, generator=gen)
    lab = _blobs(batch, k, patch, gen)[:, None]  # (B, 1, P, P, P)

    def step() -> float:
        loss = loss_fn(net(x), lab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step, sum(p.numel() for p in net.parameters())


def benchmark(variant: str = "nano", *, batch: int = 2, classes: int = 16, patch: int = 48,
              steps: int = 8, warmup: int = 2) -> dict:
    """Step times (s) of the three models, measured round-robin, and the text-query cost ratios.

    Each round times one step of every model back to back (in a rotating order); the ratio of a
    round compares steps taken seconds apart, so slow drifts of machine load cancel. ``ratio`` is
    the median over rounds of text / BasicUNet, ``ratio_same_backbone`` of text / same backbone;
    ``ratio_min`` compares the fastest steps (the least disturbed by other processes).
    """
    models = {"text": text_query_step(variant, batch, classes, patch),
              "basicunet": multiclass_step(variant, batch, classes, patch),
              "same_backbone": multiclass_step(variant, batch, classes, patch, same_backbone=True)}
    times: dict[str, list[float]] = {name: [] for name in models}
    order = list(models)
    for i in range(warmup + steps):
        for name in order[i % 3:] + order[:i % 3]:  # rotate the order so load drifts hit all alike
            t0 = time.perf_counter()
            models[name][0]()
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    t = times
    return {"variant": variant, "patch": patch, "batch": batch, "classes": classes, "steps": steps,
            "params": {name: m[1] for name, m in models.items()},
            "step_s": {name: statistics.median(v) for name, v in t.items()},
            "ratio": statistics.median(a / b for a, b in zip(t["text"], t["basicunet"])),
            "ratio_same_backbone": statistics.median(a / b for a, b in zip(t["text"], t["same_backbone"])),
            "ratio_min": min(t["text"]) / min(t["basicunet"])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat train-bench", description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="nano", help="model variant in configs/model (a 5-scale unet)")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--classes", type=int, default=16, help="queries per image = classes of the baseline")
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--steps", type=int, default=10, help="timed rounds (after 2 warm-up rounds)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = benchmark(args.variant, batch=args.batch, classes=args.classes, patch=args.patch, steps=args.steps)
    print(f"patch {r['patch']}^3, batch {r['batch']}, {r['classes']} classes/queries, "
          f"{torch.get_num_threads()} threads, {r['steps']} rounds (medians)")
    n, t = r["params"], r["step_s"]
    print(f"text queries ({r['variant']}, {n['text'] / 1e6:.1f}M params): {t['text']:.3f} s/step")
    print(f"MONAI BasicUNet, softmax ({n['basicunet'] / 1e6:.1f}M params): {t['basicunet']:.3f} s/step")
    print(f"same backbone + 1x1 conv, softmax ({n['same_backbone'] / 1e6:.1f}M params): "
          f"{t['same_backbone']:.3f} s/step")
    print(f"ratio vs BasicUNet: {r['ratio']:.2f}x (median of per-round ratios; fastest steps: "
          f"{r['ratio_min']:.2f}x); vs same backbone: {r['ratio_same_backbone']:.2f}x (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
