"""Fixtures for training tests: tiny shards built from the ``tiny_phantoms`` fixture."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_shards(tiny_phantoms, tmp_path_factory) -> Path:
    """One case per shard at 8 mm: training shards of unequal, odd counts (phantom_totalseg: all
    3 cases, phantom_msd: 2 train cases) and 3 validation cases (one per source)."""
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards

    out = tmp_path_factory.mktemp("shards")
    builds = [("phantom_totalseg", None), ("phantom_msd", "train"),
              ("phantom_msd", "test"), ("phantom_nnunet", "test"), ("phantom_totalseg", "test")]
    for name, split in builds:
        build_shards(load_recipe(name), tiny_phantoms / name, out,
                     BuildOptions(split=split, workers=0, shard_size_mb=0.001, spacing=(8.0, 8.0, 8.0)),
                     progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_fit_args(tiny_shards, concept_table):
    """``sat fit`` arguments: the real cpu trainer and phantom_nano experiment configs, shrunk to a
    tiny model on the tiny shards (``concept_table`` warms the concept-embedding cache)."""

    def make(root: Path, trainer: str = "cpu.yaml", **trainer_overrides) -> list[str]:
        s = tiny_shards
        train = {"phantom_totalseg": str(s / "phantom_totalseg-all-*.tar"),
                 "phantom_msd": str(s / "phantom_msd-train-*.tar")}
        val = {n: str(s / f"{n}-test-*.tar") for n in ("phantom_msd", "phantom_nnunet", "phantom_totalseg")}
        args = ["fit", "--trainer", str(REPO / "configs" / "trainer" / trainer),
                "--config", str(REPO / "configs" / "experiment" / "phantom_nano.yaml"),
                "--model.model.backbone.channels=[4, 8, 16]", "--model.model.backbone.out_channels=8",
                "--model.model.head.d_model=16", "--model.model.head.layers=1", "--model.model.head.heads=2",
                "--model.spacing=[8.0, 8.0, 8.0]",
                f"--data.train={json.dumps(train)}", f"--data.val={json.dumps(val)}",
                "--data.sampling.patch_size=[16, 16, 16]", "--data.sampling.max_queries=4",
                "--data.num_workers=0", "--data.shuffle_buffer=2", "--data.batch_size=2",
                f"--trainer.default_root_dir={root}", "--trainer.enable_progress_bar=false",
                "--trainer.logger=lightning.pytorch.loggers.CSVLogger", f"--trainer.logger.save_dir={root}",
                "--trainer.log_every_n_steps=1"]
        return args + [f"--trainer.{k}={v}" for k, v in trainer_overrides.items()]

    return make
