"""The harness trains through sat.train.fit: its runs are ExperimentConfigs, never argv lists."""
from __future__ import annotations

from pathlib import Path

from sat.train.experiment import ExperimentConfig


def test_demo_experiment_trains_on_the_phantom_shards(tmp_path):
    from sat.bench.demo import RECIPES, experiment

    cfg = experiment(tmp_path, tmp_path / "shards", Path("exp.yaml"), {"model.text.finetuned": "w.safetensors"},
                     ("--trainer.max_steps=3",))
    assert isinstance(cfg, ExperimentConfig)
    assert (cfg.export, cfg.root) == (tmp_path / "model.ckpt", tmp_path / "run")
    assert set(cfg.overrides["data.train"]) == set(RECIPES)
    assert cfg.overrides["model.text.finetuned"] == "w.safetensors"
    assert cfg.cli_args()[-2] == "--trainer.max_steps=3"  # the user's overrides go last


def test_real_experiment_budget_in_minutes_or_steps(tmp_path):
    from dataclasses import replace

    from sat.bench.config import load_profile
    from sat.bench.real import experiment

    profile = load_profile("real", "quick")
    timed = experiment(replace(profile, minutes=75.0), tmp_path / "shards", tmp_path)
    assert timed.max_minutes == 75.0 and timed.overrides["trainer.max_steps"] == -1
    assert "--trainer.max_time=00:01:15:00" in timed.cli_args()
    stepped = experiment(replace(profile, minutes=0.0, steps=40), tmp_path / "shards", tmp_path)
    assert stepped.max_minutes is None and stepped.overrides["trainer.max_steps"] == 40
    assert stepped.overrides["trainer.max_time"] is None and stepped.overrides["model.optim.schedule"] == "steps"
    assert set(stepped.overrides["data.train"]) == set(profile.datasets)
