"""Exponential moving average of a network's weights."""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA(nn.Module):
    """A frozen copy of ``net`` whose parameters track ``decay * ema + (1 - decay) * current``.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early
    averages are not dominated by the random initialisation. Buffers (e.g. the concept table) are
    copied, not averaged. Being a submodule of the LightningModule, the average is saved in and
    restored from training checkpoints; its parameters need no gradient, so DDP ignores them.

    Args:
        net: the network being trained. decay: long-run decay in (0, 1).
    """

    def __init__(self, net: nn.Module, decay: float) -> None:
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(net).requires_grad_(False).eval()
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> ModelEMA:
        """The average always stays in eval mode."""
        super().train(mode)
        self.module.eval()
        return self

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        """Move the average towards ``net``'s current weights (call once per optimiser step)."""
        n = int(self.updates)
        d = min(self.decay, (1 + n) / (10 + n))
        for e, p in zip(self.module.parameters(), net.parameters()):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.module.buffers(), net.buffers()):
            e.copy_(b)
        self.updates += 1
