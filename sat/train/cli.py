"""``sat fit`` / ``sat validate``: LightningCLI over :class:`SATModule` and :class:`ShardDataModule`.

Configs compose, later files overriding earlier ones::

    sat fit --config configs/trainer/cpu.yaml --config configs/experiment/phantom_nano.yaml

A model variant can be given on its own: ``--model.model configs/model/base.yaml``. ``PL_*``
environment variables are read (``default_env``). Unless the config names loggers, runs log to CSV
and, when ``wandb`` is installed, to W&B offline (``WANDB_MODE=online`` uploads). Training
checkpoints are written atomically and loaded with ``weights_only=True``
(:class:`SafeCheckpointIO`) unless the config names another checkpoint plugin.
"""
from __future__ import annotations

import os
import sys

from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from lightning.pytorch.cli import LightningCLI

from sat.data.datamodule import ShardDataModule
from sat.train.module import SATModule


class SATCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--export", default=None, help="write a self-contained model.ckpt here after fit")

    def instantiate_trainer(self, **kwargs):
        from sat.train.checkpoint_io import SafeCheckpointIO
        from sat.train.loggers import default_loggers

        cfg = self._get(self.config_init, "trainer", default={})
        if cfg.get("logger") in (None, True) and "logger" not in kwargs:
            kwargs["logger"] = default_loggers(cfg.get("default_root_dir") or os.getcwd())
        plugins = cfg.get("plugins") or []
        plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins) and "plugins" not in kwargs:
            kwargs["plugins"] = [*plugins, SafeCheckpointIO()]
        return super().instantiate_trainer(**kwargs)

    def after_fit(self) -> None:
        export = self.config.get(self.subcommand, {}).get("export") if self.subcommand else None
        if export and self.trainer.is_global_zero:
            from sat.train.export import export_module

            export_module(self.model, self.datamodule, export)


def cli(args: list[str] | None = None, run: bool = True) -> SATCLI:
    """Build (and with ``run`` execute) the CLI; ``args`` as on the command line."""
    os.environ.setdefault("WANDB_MODE", "offline")
    return SATCLI(SATModule, ShardDataModule, args=args, run=run, save_config_kwargs={"overwrite": True},
                  parser_kwargs={"default_env": True}, seed_everything_default=0,
                  auto_configure_optimizers=False)  # SATModule builds its own parameter groups


def main(argv: list[str] | None = None) -> int:
    # the same arguments as the command line: let LightningCLI read sys.argv (it warns otherwise)
    cli(None if argv is None or list(argv) == sys.argv[1:] else argv)
    return 0
