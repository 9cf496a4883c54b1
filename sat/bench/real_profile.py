"""Typed profile of ``sat benchmark real``; the numbers live in ``configs/benchmark/real_*.yaml``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sat.errors import InputError
from sat.yaml_io import from_mapping


@dataclass
class RealDataset:
    """One real dataset of the benchmark.

    Attributes:
        recipe: recipe name in ``data_shards/recipes``.
        root: the dataset folder (relative paths: against the repository root).
        weight: sampling weight in the universal model, and the share of the specialists' total
            budget that this dataset's specialist gets (equal total compute).
        patch_size: crop size in voxels at the recipe's spacing (universal and specialist alike).
    """

    recipe: str
    root: str
    weight: float = 1.0
    patch_size: tuple[int, int, int] = (64, 64, 48)


@dataclass
class RealProfile:
    """Everything the real-data benchmark runs with.

    Attributes:
        name: profile name (shown in the report). seed: training and sampling seed.
        datasets: the datasets (see :class:`RealDataset`).
        max_cases: cap on cases per split and dataset (0 = all); the quick profile uses a few.
        shard_workers: processes building shards. threads: torch CPU threads.
        loader_workers: data-loader worker processes while training.
        minutes: wall-clock training budget of the universal model; the specialists share the
            same budget in proportion to the dataset weights (equal total compute). 0 = use ``steps``.
        steps: step budget instead of ``minutes`` (universal); specialists get ``steps * share``.
        batch_size: crops per step (both model families).
        base_config: the LightningCLI experiment of the universal model.
        fit_overrides: extra LightningCLI ``key: value`` overrides of the universal run.
        specialist_filters: MONAI DynUNet filters per level of every specialist (nnU-Net style).
        lr: peak learning rate of the specialists (AdamW, warm-up then cosine); the universal
            model's comes from its experiment.
        paraphrases: concept id -> extra prompts of the robustness study, besides the tree's
            synonyms; ``{name}`` is the canonical name.
        overlap: sliding-window overlap of both model families on the validation patients,
            written into the universal checkpoint as its recommended inference overlap.
        laterality_max_dice: the laterality check passes when the mask for one side scores at most
            this Dice against the other side's reference, on every case.
        checkpoint: where the universal model's self-contained checkpoint is copied.
        work_dir: shards and runs. results_dir: where ``real_benchmark.md`` and its folder go.
    """

    name: str = "custom"
    seed: int = 0
    datasets: dict[str, RealDataset] = field(default_factory=dict)
    max_cases: int = 0
    shard_workers: int = 1
    threads: int = 2
    loader_workers: int = 1
    minutes: float = 0.0
    steps: int = 300
    batch_size: int = 2
    base_config: str = "configs/experiment/real_universal.yaml"
    fit_overrides: dict[str, Any] = field(default_factory=dict)
    specialist_filters: tuple[int, ...] = (16, 32, 64, 128, 256)
    lr: float = 2e-3
    paraphrases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    overlap: float = 0.25
    laterality_max_dice: float = 0.05
    checkpoint: str = "outputs/real/universal.ckpt"
    work_dir: str = "outputs/benchmark/real"
    results_dir: str = "docs/results"

    def __post_init__(self) -> None:
        self.datasets = {k: v if isinstance(v, RealDataset) else from_mapping(RealDataset, v, "real profile",
                                                                               f"datasets.{k}")
                         for k, v in (self.datasets or {}).items()}
        if not self.datasets:
            raise InputError("a real profile needs at least one dataset")
        if self.minutes <= 0 and self.steps < 1:
            raise InputError(f"set minutes > 0 or steps >= 1, got minutes={self.minutes}, steps={self.steps}")
        if any(d.weight <= 0 for d in self.datasets.values()):
            raise InputError("dataset weights must be > 0")
        if not 0.0 <= float(self.overlap) < 1.0:
            raise InputError(f"overlap must be in [0, 1), got {self.overlap!r}")
        self.paraphrases = {k: tuple(v) for k, v in (self.paraphrases or {}).items()}

    def share(self, name: str) -> float:
        """The fraction of the total budget that dataset ``name``'s specialist gets."""
        total = sum(d.weight for d in self.datasets.values())
        return self.datasets[name].weight / total
