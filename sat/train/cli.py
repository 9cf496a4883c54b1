"""``sat fit`` / ``sat validate``: LightningCLI over :class:`SATModule` and :class:`ShardDataModule`.

Configs compose: ``sat fit --config configs/trainer/cpu.yaml --config configs/experiment/phantom_demo.yaml``.
``PL_*`` environment variables are read (``default_env``). Wandb logs offline unless the user sets
``WANDB_MODE=online``.
"""
from __future__ import annotations

import os

from lightning.pytorch.cli import LightningCLI

from sat.data.datamodule import ShardDataModule
from sat.train.module import SATModule


class SATCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--export", default=None, help="write a self-contained model.ckpt here after fit")

    def after_fit(self) -> None:
        export = self.config.get(self.subcommand, {}).get("export") if self.subcommand else None
        if export and self.trainer.is_global_zero:
            from sat.train.export import export_module

            export_module(self.model, self.datamodule, export)


def cli(args: list[str] | None = None, run: bool = True) -> SATCLI:
    os.environ.setdefault("WANDB_MODE", "offline")
    return SATCLI(SATModule, ShardDataModule, args=args, run=run, save_config_kwargs={"overwrite": True},
                  parser_kwargs={"default_env": True}, seed_everything_default=0)


def main(argv: list[str] | None = None) -> int:
    cli(argv)
    return 0
