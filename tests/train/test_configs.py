"""Every training config in ``configs/`` parses with the LightningCLI parser and instantiates."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import sat.train.module as module_mod
from sat.data.datamodule import ShardDataModule
from sat.model.config import load_model_config
from sat.train.cli import SATCLI, cli

REPO = Path(__file__).resolve().parents[2]
TRAINERS = sorted((REPO / "configs" / "trainer").glob("*.yaml"))
EXPERIMENTS = sorted((REPO / "configs" / "experiment").glob("*.yaml"))
TINY = ["--model.model.backbone.channels=[4, 8, 16]", "--model.model.backbone.out_channels=8",
        "--model.model.head.d_model=16", "--model.model.head.layers=1", "--model.model.head.heads=2"]


@pytest.fixture
def meta_models(monkeypatch, concept_table):
    """Build networks on the meta device: full-size variants instantiate without memory or time."""
    real = module_mod.build_model

    def on_meta(cfg, ids, emb, lateralities=None):
        with torch.device("meta"):
            return real(cfg, ids, emb.to("meta"), lateralities)

    monkeypatch.setattr(module_mod, "build_model", on_meta)


class _ParseOnly(SATCLI):
    def instantiate_classes(self) -> None:  # parse and validate, build nothing
        pass


def test_trainer_and_experiment_files_exist():
    assert {p.stem for p in TRAINERS} >= {"cpu", "gpu", "ddp", "multinode"}
    assert len(EXPERIMENTS) >= 3


@pytest.mark.parametrize("trainer", TRAINERS, ids=lambda p: p.stem)
def test_trainer_config_parses_and_instantiates(trainer, tmp_path, monkeypatch, meta_models):
    monkeypatch.chdir(tmp_path)
    exp = str(REPO / "configs" / "experiment" / "phantom_nano.yaml")
    parsed = _ParseOnly(module_mod.SATModule, ShardDataModule, run=False,
                        args=["--trainer", str(trainer), "--config", exp])
    raw = yaml.safe_load(trainer.read_text())
    for key, value in raw.items():
        if not isinstance(value, dict):
            assert parsed.config["trainer"][key] == value, key
    # GPU configs are instantiated on CPU devices here: the rest of the config must be valid as is
    devices = 2 if raw.get("strategy") else 1
    built = cli(["--trainer", str(trainer), "--config", exp, "--trainer.accelerator=cpu",
                 f"--trainer.devices={devices}", *TINY], run=False)
    assert built.trainer.num_nodes == raw.get("num_nodes", 1)
    assert built.trainer.gradient_clip_val == raw["gradient_clip_val"]
    assert str(built.trainer.precision) == str(raw["precision"])
    assert type(built.trainer.strategy.checkpoint_io).__name__ == "SafeCheckpointIO"
    if isinstance(raw.get("strategy"), dict):  # DDP options reach torch's DistributedDataParallel
        for key, value in raw["strategy"]["init_args"].items():
            assert built.trainer.strategy._ddp_kwargs[key] == value, key


def _overlay_base(experiment: Path) -> Path | None:
    """The experiment an overlay is layered on: the longest other experiment whose name plus ``_``
    starts this one's (``abdomen_ct_base_dynamic_conv`` -> ``abdomen_ct_base``)."""
    bases = [p for p in EXPERIMENTS if experiment.stem.startswith(p.stem + "_")]
    return max(bases, key=lambda p: len(p.stem)) if bases else None


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_config_instantiates(experiment, tmp_path, monkeypatch, meta_models, tiny_checkpoint):
    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load(experiment.read_text())
    args = ["--config", str(experiment)]
    if "accelerator" not in raw.get("trainer", {}):  # experiments say what to train, trainers where
        args = ["--trainer", str(REPO / "configs" / "trainer" / "cpu.yaml")] + args
    base = _overlay_base(experiment)
    if base is not None:  # an overlay layered on its base experiment
        args = ["--config", str(base)] + args
    init = ((raw.get("model") or {}).get("interaction") or {}).get("init_checkpoint")
    if init:  # a fine-tune starts from a checkpoint named from the repository root: a committed one,
        # or one a command makes (the demo's), which the tiny checkpoint stands in for when absent
        start = REPO / init if (REPO / init).is_file() or init.startswith("outputs/real/") else tiny_checkpoint
        args.append(f"--model.interaction.init_checkpoint={start}")
    built = cli(args, run=False)
    variant = raw.get("model", {}).get("model")
    if isinstance(variant, str):  # a reference to configs/model/<variant>.yaml
        assert built.model.model_cfg == load_model_config(experiment.parent / variant)
    assert built.datamodule.train and built.datamodule.sampling.patch_size
    assert built.model.net.concept_embeddings.shape[1] == built.model.model_cfg.text_dim
    if built.model.optim_cfg.ema_decay > 0:
        assert built.model.ema is not None


def test_print_config(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli(["fit", "--trainer", str(REPO / "configs" / "trainer" / "gpu.yaml"),
             "--model.model", str(REPO / "configs" / "model" / "base.yaml"), "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["trainer"]["precision"] == "bf16-mixed"
    assert printed["model"]["model"]["backbone"]["channels"] == [64, 128, 256, 512, 768]
    assert {"data", "export", "ckpt_path"} <= set(printed)
