"""``text_fit(TextFitConfig) -> Path``: knowledge-pretrain the text encoder from code.

The typed form of ``sat text-fit`` (:mod:`sat.text.pretrain`) for the stages that make an encoder
on the way (``make demo``, the benchmarks)::

    from sat.text.text_fit import TextFitConfig, text_fit
    weights = text_fit(TextFitConfig(export="outputs/text/knowledge_minilm.safetensors",
                                     max_minutes=6.0))

Its calibrated threshold and provenance go to the sidecar JSON beside ``export``
(:mod:`sat.text.sidecar`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sat.lightning_args import override_args, run_args
from sat.resources import configs_dir


@dataclass
class TextFitConfig:
    """One knowledge-pretraining run.

    Attributes:
        export: the safetensors file written after training.
        config: the text-fit YAML (default ``configs/text/knowledge.yaml``).
        root: run folder (CSV log in ``root/csv``); ``None`` keeps the config's.
        max_steps: step budget; ``None`` keeps the config's.
        max_minutes: wall-clock budget; ``None`` keeps the config's.
        seed: ``seed_everything``; ``None`` keeps the config's.
        threads: torch CPU threads; ``None`` leaves torch's default.
        calibrate: calibrate the resolver threshold and store it beside ``export``.
        progress_bar: show Lightning's progress bar; ``None`` keeps the config's.
        overrides: further dotted keys -> values, e.g. ``{"model.lr": 1e-4}``.
    """

    export: Path
    config: Path | None = None
    root: Path | None = None
    max_steps: int | None = None
    max_minutes: float | None = None
    seed: int | None = None
    threads: int | None = None
    calibrate: bool = True
    progress_bar: bool | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.export = Path(self.export)
        self.config = Path(self.config) if self.config is not None else configs_dir("text") / "knowledge.yaml"
        self.root = Path(self.root) if self.root is not None else None
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")

    def cli_args(self) -> list[str]:
        """The ``sat text-fit`` command line that runs this configuration."""
        o: dict[str, Any] = run_args(self.root, self.max_minutes)
        if self.max_steps is not None:
            o["trainer.max_steps"] = self.max_steps
        if self.progress_bar is not None:
            o["trainer.enable_progress_bar"] = self.progress_bar
        if self.seed is not None:
            o["seed_everything"] = self.seed
        if self.threads is not None:
            o["threads"] = self.threads
        o.update(self.overrides)
        o.update(calibrate=self.calibrate, export=str(self.export))
        return ["fit", "--config", str(self.config), *override_args(o)]


def text_fit(cfg: TextFitConfig) -> Path:
    """Run ``cfg``; returns the exported encoder weights (``cfg.export``)."""
    from sat.text.pretrain import cli

    cli(cfg.cli_args())
    return cfg.export
