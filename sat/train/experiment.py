"""``fit(ExperimentConfig) -> Path``: train one experiment and export its inference checkpoint.

The typed way for code (the demo, the benchmarks, a notebook) to run what ``sat fit`` runs::

    from sat.train import ExperimentConfig, fit
    ckpt = fit(ExperimentConfig(configs=("configs/experiment/phantom_nano.yaml",),
                                export="outputs/run/model.ckpt", root="outputs/run",
                                overrides={"trainer.max_steps": 50}))

The experiment YAML files compose as on the command line (later ones override earlier ones);
``overrides`` set single dotted keys on top. The translation into LightningCLI arguments happens
here (and in :mod:`sat.lightning_args`) and nowhere else. The step count of a run travels in the
exported checkpoint (:func:`trained_steps`), never in a file name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sat.lightning_args import override_args, run_args


@dataclass
class ExperimentConfig:
    """One training run.

    Attributes:
        configs: experiment YAML files (``configs/experiment/*.yaml``), composed in order.
        export: the self-contained inference checkpoint written after training.
        root: the run folder (Lightning checkpoints, a CSV log in ``root/csv``); ``None`` keeps
            what the configs say.
        overrides: dotted keys -> values on top of the configs, e.g.
            ``{"trainer.max_steps": 50, "data.train": {"name": "shards/name-train-*.tar"}}``.
        max_minutes: wall-clock budget (``trainer.max_time``); ``None`` keeps the configs'.
        cli_overrides: overrides as a user typed them on a command line
            (``"--trainer.max_steps=50"``), applied last; for commands that pass them through.
        trainer: a trainer config (``configs/trainer/*.yaml``: where to run), read before
            ``configs``; ``None``: the configs say.
    """

    configs: tuple[Path, ...]
    export: Path
    root: Path | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    max_minutes: float | None = None
    cli_overrides: tuple[str, ...] = ()
    trainer: Path | None = None

    def __post_init__(self) -> None:
        configs = (self.configs,) if isinstance(self.configs, (str, Path)) else self.configs
        self.configs = tuple(Path(c) for c in configs)
        if not self.configs:
            raise ValueError("an experiment needs at least one config file, got none")
        self.export = Path(self.export)
        self.root = Path(self.root) if self.root is not None else None
        self.trainer = Path(self.trainer) if self.trainer is not None else None
        self.cli_overrides = tuple(self.cli_overrides)
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")

    def cli_args(self) -> list[str]:
        """The ``sat fit`` command line that runs this experiment."""
        args = ["fit"] + (["--trainer", str(self.trainer)] if self.trainer is not None else [])
        for c in self.configs:
            args += ["--config", str(c)]
        args += override_args({**run_args(self.root, self.max_minutes), **self.overrides})
        return [*args, *self.cli_overrides, f"--export={self.export}"]


def fit(cfg: ExperimentConfig) -> Path:
    """Train ``cfg`` and export its inference checkpoint.

    Returns:
        ``cfg.export``, the checkpoint (its metadata carries the steps taken, :func:`trained_steps`).
    """
    from sat.train.cli import cli

    cli(cfg.cli_args())
    return cfg.export


def trained_steps(checkpoint: str | Path) -> int | None:
    """Optimiser steps the model in ``checkpoint`` was trained for (``None`` when not recorded)."""
    from sat.model.checkpoint import load_checkpoint

    _, meta = load_checkpoint(checkpoint)
    steps = meta.extra.get("steps")
    return int(steps) if steps is not None else None
