"""`sat.train.fit(ExperimentConfig) -> Path`: the typed training call of the demo and benchmarks."""
from __future__ import annotations

from pathlib import Path

import pytest

from sat.train import ExperimentConfig, fit, trained_steps

REPO = Path(__file__).resolve().parents[2]


def test_cli_args_compose_configs_then_typed_values_then_user_overrides(tmp_path):
    cfg = ExperimentConfig(configs=("a.yaml", "b.yaml"), export=tmp_path / "m.ckpt", root=tmp_path / "run",
                           overrides={"trainer.max_steps": 5, "data.train": {"x": "s/x-*.tar"}},
                           max_minutes=1.5, cli_overrides=("--trainer.max_steps=7",), trainer="cpu.yaml")
    args = cfg.cli_args()
    assert args[:7] == ["fit", "--trainer", "cpu.yaml", "--config", "a.yaml", "--config", "b.yaml"]
    assert f"--trainer.default_root_dir={tmp_path / 'run'}" in args
    assert "--trainer.max_time=00:00:01:30" in args
    assert '--data.train={"x": "s/x-*.tar"}' in args
    logger = next(a for a in args if a.startswith("--trainer.logger="))
    assert "CSVLogger" in logger and str(tmp_path / "run") in logger
    # the user's own overrides come after the typed ones, so they win
    assert args.index("--trainer.max_steps=7") > args.index("--trainer.max_steps=5")
    assert args[-1] == f"--export={tmp_path / 'm.ckpt'}"


def test_a_single_config_path_and_bad_budgets(tmp_path):
    assert ExperimentConfig(configs="a.yaml", export="m.ckpt").configs == (Path("a.yaml"),)
    with pytest.raises(ValueError, match="at least one config"):
        ExperimentConfig(configs=(), export="m.ckpt")
    with pytest.raises(ValueError, match="max_minutes must be positive, got 0"):
        ExperimentConfig(configs="a.yaml", export="m.ckpt", max_minutes=0)


def test_fit_returns_the_exported_checkpoint_and_its_steps(tmp_path, tiny_shards, concept_table):
    s = tiny_shards
    cfg = ExperimentConfig(
        configs=(REPO / "configs" / "experiment" / "phantom_nano.yaml",),
        trainer=REPO / "configs" / "trainer" / "cpu.yaml",
        export=tmp_path / "model.ckpt", root=tmp_path / "run",
        overrides={"model.model.backbone.channels": [4, 8, 16], "model.model.backbone.out_channels": 8,
                   "model.model.head.d_model": 16, "model.model.head.layers": 1, "model.model.head.heads": 2,
                   "model.spacing": [8.0, 8.0, 8.0], "data.train": {"phantom_msd": str(s / "phantom_msd-train-*.tar")},
                   "data.val": None, "trainer.limit_val_batches": 0, "trainer.callbacks": [],
                   "data.sampling.patch_size": [16, 16, 16], "data.sampling.max_queries": 4,
                   "data.num_workers": 0, "data.shuffle_buffer": 2, "data.batch_size": 2,
                   "data.steps_per_epoch": 2, "trainer.max_steps": 2, "trainer.enable_progress_bar": False})
    ckpt = fit(cfg)
    assert ckpt == tmp_path / "model.ckpt" and ckpt.is_file()
    assert trained_steps(ckpt) == 2  # from the checkpoint's metadata, not a file name
    assert list((tmp_path / "run" / "csv").glob("version_*"))  # the CSV log went to the run folder
