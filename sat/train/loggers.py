"""Default experiment loggers: Weights & Biases offline (unless the user goes online) plus CSV."""
from __future__ import annotations

import os
from pathlib import Path


def default_loggers(save_dir: str | Path, *, project: str | None = None) -> list:
    """A CSV logger, plus a WandbLogger when ``wandb`` imports.

    W&B runs offline unless ``WANDB_MODE=online`` is set (``wandb sync`` uploads later); the CSV
    logger (``save_dir/csv/version_N/metrics.csv``) always runs, so metrics stay readable without
    W&B, and it is the only logger when ``wandb`` is not installed.

    Args:
        save_dir: root folder of the logs. project: W&B project (default ``$WANDB_PROJECT`` or ``sat``).
    """
    from lightning.pytorch.loggers import CSVLogger

    save_dir = str(save_dir)
    loggers = [CSVLogger(save_dir, name="csv")]
    try:
        import wandb  # noqa: F401
        from lightning.pytorch.loggers import WandbLogger
    except ImportError:
        return loggers
    mode = os.environ.setdefault("WANDB_MODE", "offline")
    loggers.append(WandbLogger(save_dir=save_dir, project=project or os.environ.get("WANDB_PROJECT", "sat"),
                               offline=mode != "online"))
    return loggers
