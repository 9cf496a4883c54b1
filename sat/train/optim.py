"""AdamW parameter groups and the warmup-then-cosine schedule."""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def param_groups(model: nn.Module, *, lr: float, weight_decay: float, text_lr_mult: float = 1.0,
                 text_prefixes: tuple[str, ...] = ("head.text_proj",)) -> list[dict]:
    """Split parameters into decay / no-decay (norms, biases, embeddings) x vision / text groups.

    Weight decay is applied to every >=2-D weight except embeddings; the text side gets
    ``lr * text_lr_mult``. Returns AdamW groups with ``name`` keys for logging.
    """
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or "norm" in name or name.endswith(".bias") or "modality" in name
        text = name.startswith(text_prefixes)
        groups.setdefault((no_decay, text), []).append(p)
    out = []
    for (no_decay, text), params in sorted(groups.items()):
        out.append({"params": params, "weight_decay": 0.0 if no_decay else weight_decay,
                    "lr": lr * (text_lr_mult if text else 1.0),
                    "name": f"{'text' if text else 'vision'}_{'no_decay' if no_decay else 'decay'}"})
    return out


def warmup_cosine(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int | None,
                  min_ratio: float = 0.01, progress: Callable[[], float] | None = None
                  ) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to each group's lr, then cosine decay to ``min_ratio`` of it.

    ``progress`` (optional, 0..1, e.g. the share of a wall-clock budget used) lets the decay run
    ahead of the step count, so a run stopped by time still ends annealed. ``total_steps=None``
    (a run capped by time only) decays by ``progress`` alone.
    """
    if total_steps is None:
        if progress is None:
            raise ValueError("total_steps=None needs a progress callable (a run capped by time)")
    elif total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        t = 0.0 if total_steps is None else min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
        if progress is not None:
            t = min(1.0, max(t, progress()))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
