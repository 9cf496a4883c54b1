"""Training-step measurements for ``sat benchmark gpu``: time, peak memory, FLOPs, largest batch.

A step is what training does per batch: forward with ``Q`` text queries, BCE on the logits,
backward, AdamW. FLOPs are counted once per model with :class:`torch.utils.flop_counter.FlopCounterMode`
(convolutions, matrix products and attention, forward and backward) and scale linearly with the
batch; achieved TFLOP/s is that count over the measured step time.
"""
from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from sat.model.config import BackboneConfig, HeadConfig, ModelConfig, load_model_config

# a model small enough for the CPU test of the command (``--profile quick``)
TINY = ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16, 32), out_channels=8),
                   head=HeadConfig(d_model=32, layers=1, heads=2))


def variant_config(name: str) -> ModelConfig:
    """``tiny`` (:data:`TINY`) or a variant of ``configs/model`` (name or YAML path)."""
    return TINY if name == "tiny" else load_model_config(name)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device: torch.device) -> float | None:
    """Peak allocated device memory since :func:`reset_peak` (CUDA only; ``None`` elsewhere)."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


class _ConvHead(nn.Module):
    """The variant's backbone with a plain 1x1x1 convolution to ``k`` class logits."""

    def __init__(self, backbone: nn.Module, k: int) -> None:
        super().__init__()
        self.backbone, self.out = backbone, nn.Conv3d(backbone.out_channels, k, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.backbone(x).pixel)  # (B, K, D, H, W)


def build_net(cfg: ModelConfig, queries: int, device: torch.device, plain_head: bool = False) -> nn.Module:
    """The text-query model with a ``queries``-row concept table, or (``plain_head``) the same
    backbone with a 1x1x1 conv head of ``queries`` outputs, in training mode on ``device``."""
    from sat.model.builder import build_backbone, build_model

    torch.manual_seed(0)
    if plain_head:
        net = _ConvHead(build_backbone(cfg), queries)
    else:
        net = build_model(cfg, [f"c{i}" for i in range(queries)], torch.randn(queries, cfg.text_dim))
    return net.to(device).train()


def make_step(net: nn.Module, *, batch: int, queries: int, patch: int, device: torch.device, bf16: bool,
              plain_head: bool = False, channels_last: bool = False,
              opt: torch.optim.Optimizer | None = None) -> Callable[[], None]:
    """One training step of ``net`` on random data (batch x 1 x patch³, ``queries`` targets)."""
    opt = opt or torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, 1, patch, patch, patch, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    target = (torch.rand(batch, queries, patch, patch, patch, device=device) > 0.5).float()
    q = torch.arange(queries, device=device).expand(batch, queries)
    modality = torch.ones(batch, dtype=torch.long, device=device)

    def step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x) if plain_head else net(x, q, modality)
            logits = out[0] if isinstance(out, tuple) else out
            loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def time_step(step: Callable[[], None], device: torch.device, warmup: int, steps: int) -> float:
    """Median seconds per call over ``steps`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(max(1, steps)):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def count_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of ``step`` (forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def fits(make: Callable[[int], Callable[[], None]], batch: int) -> bool:
    """Whether one step at ``batch`` runs without running out of device memory."""
    step = None
    try:
        step = make(batch)
        step()
        return True
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        if not is_oom(exc):
            raise
        return False
    finally:
        del step
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def largest_batch(make: Callable[[int], Callable[[], None]], limit: int) -> int:
    """Largest batch in [1, limit] whose step fits: doubling, then bisection (0 if batch 1 does not)."""
    if not fits(make, 1):
        return 0
    lo, hi = 1, None
    b = 2
    while b <= limit:
        if not fits(make, b):
            hi = b
            break
        lo, b = b, 2 * b
    if hi is None:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(make, mid) else (lo, mid)
    return lo


def measure_step(net: nn.Module, opt: torch.optim.Optimizer, *, batch: int, queries: int, patch: int,
                 device: torch.device, bf16: bool, warmup: int, steps: int, plain_head: bool = False,
                 channels_last: bool = False, flops_per_sample: int | None = None) -> dict:
    """Step time, peak memory and FLOPs of ``net`` at one batch size (FLOPs counted when not given)."""
    reset_peak(device)
    step = make_step(net, batch=batch, queries=queries, patch=patch, device=device, bf16=bf16,
                     plain_head=plain_head, channels_last=channels_last, opt=opt)
    if flops_per_sample is None:
        flops_per_sample = count_flops(step) // batch
    step_s = time_step(step, device, warmup, steps)
    row = {"batch": batch, "queries": queries, "patch": patch, "step_s": step_s, "peak_gb": peak_gb(device),
           "flops_per_sample": flops_per_sample,
           "tflops": flops_per_sample * batch / step_s / 1e12 if step_s > 0 else None}
    del step
    reset_peak(device)
    return row


def measure_config(cfg: ModelConfig, *, queries: int, device: torch.device, plain_head: bool = False,
                   channels_last: bool = False, **kw) -> dict:
    """:func:`measure_step` of a freshly built model of ``cfg`` (keywords as there)."""
    net = build_net(cfg, queries, device, plain_head)
    if channels_last:
        net = net.to(memory_format=torch.channels_last_3d)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    try:
        return measure_step(net, opt, queries=queries, device=device, plain_head=plain_head,
                            channels_last=channels_last, **kw)
    finally:
        del net, opt
        reset_peak(device)
