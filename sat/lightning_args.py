"""Typed values -> LightningCLI arguments, for the typed training calls of ``sat.train`` and ``sat.text``.

The two LightningCLI entry points (``sat fit`` and ``sat text-fit``) are driven from code only
through :func:`sat.train.experiment.fit` and :func:`sat.text.text_fit.text_fit`; both translate
their dataclass into command-line arguments here, so no caller builds argument lists or JSON
logger specs.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def max_time(minutes: float) -> str:
    """Minutes as Lightning's ``max_time`` string ``DD:HH:MM:SS``.

    Raises:
        ValueError: ``minutes`` is not positive.
    """
    if not minutes > 0:
        raise ValueError(f"a wall-clock budget must be positive minutes, got {minutes}")
    whole = int(minutes * 60)
    return f"00:{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def csv_logger(root: str | Path) -> list[dict]:
    """The logger spec of a CSV log under ``root/csv`` (Lightning's ``CSVLogger``)."""
    return [{"class_path": "lightning.pytorch.loggers.CSVLogger",
             "init_args": {"save_dir": str(root), "name": "csv"}}]


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """``{"trainer.max_steps": 50, "data.train": {...}}`` -> ``["--trainer.max_steps=50", ...]``.

    Strings go as they are, everything else as JSON (lists, mappings, numbers, booleans, ``None``).
    """
    return [f"--{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in overrides.items()]


def run_args(root: str | Path | None, minutes: float | None) -> dict[str, Any]:
    """Overrides of a run folder (``trainer.default_root_dir`` with a CSV log in it) and a
    wall-clock budget; empty for ``None``."""
    out: dict[str, Any] = {}
    if root is not None:
        out["trainer.default_root_dir"] = str(root)
        out["trainer.logger"] = csv_logger(root)
    if minutes is not None:
        out["trainer.max_time"] = max_time(minutes)
    return out
