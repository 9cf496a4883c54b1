"""``sat text-fit``: knowledge pretraining of the text encoder as a LightningCLI run.

``sat text-fit --config configs/text/knowledge.yaml`` fine-tunes the top layers of MiniLM with
multi-positive InfoNCE over texts generated from the knowledge tree (names, training synonyms,
definitions, relation sentences), with laterality mirrors and siblings as in-batch hard
negatives. After fitting it writes the encoder's state dict as safetensors (``--export``), which
``TextEncoderSpec(finetuned=path)`` loads, and a sidecar JSON with the resolver threshold
calibrated on the calibration split (:mod:`sat.text.calibrate`). The evaluation split is never
trained on.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LightningCLI
from torch import nn

from sat.atomic import atomic_path
from sat.text.contrastive import multi_positive_infonce
from sat.text.encoder import TextEncoderSpec, build_text_encoder
from sat.text.pretrain_data import KnowledgeDataModule

DEFAULT_EXPORT = "outputs/text/knowledge_minilm.safetensors"


def transformer_blocks(encoder: nn.Module) -> list[nn.Module]:
    """The stacked transformer layers of a text encoder, bottom first (empty if unknown)."""
    model = getattr(encoder, "model", encoder)
    for path in ("encoder.layer", "transformer.resblocks", "text.transformer.resblocks"):
        obj = model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
        if isinstance(obj, nn.ModuleList):
            return list(obj)
    return []


class KnowledgePretrainModule(pl.LightningModule):
    """Contrastive fine-tuning of a text encoder on the knowledge tree.

    Args:
        text: the encoder to start from (default MiniLM); ``finetuned`` continues a run.
        train_layers: top transformer layers to train; ``-1`` trains every parameter.
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        temperature: InfoNCE temperature.
        warmup_steps: linear warm-up steps, then cosine decay to 10% at ``trainer.max_steps``.
    """

    def __init__(self, text: TextEncoderSpec | None = None, train_layers: int = 2, lr: float = 2e-4,
                 weight_decay: float = 0.01, temperature: float = 0.05, warmup_steps: int = 10) -> None:
        super().__init__()
        self.text_spec = text or TextEncoderSpec()
        self.save_hyperparameters({"text": asdict(self.text_spec), "train_layers": train_layers,
                                   "lr": lr, "weight_decay": weight_decay,
                                   "temperature": temperature, "warmup_steps": warmup_steps})
        self.encoder = build_text_encoder(self.text_spec).train()  # dropout on while fitting
        self.lr, self.wd, self.temperature, self.warmup = lr, weight_decay, temperature, warmup_steps
        blocks = transformer_blocks(self.encoder)
        if train_layers >= 0 and blocks:
            self.encoder.requires_grad_(False)
            for block in blocks[len(blocks) - train_layers:] if train_layers else []:
                block.requires_grad_(True)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        texts, labels = batch
        # (B, D) L2-normalised, with gradients; the encoder batches by token count, so short
        # names are not padded to the length of a definition
        emb = self.encoder(texts)
        terms = multi_positive_infonce(emb, labels.to(emb.device), self.temperature)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=True, batch_size=len(texts))
        return terms["loss"]

    def configure_optimizers(self):
        params = [p for p in self.encoder.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.wd)
        total = max(int(self.trainer.max_steps or 0), self.warmup + 1) if self.trainer else 1000

        def factor(step: int) -> float:
            if step < self.warmup:
                return (step + 1) / self.warmup
            progress = min(1.0, (step - self.warmup) / max(1, total - self.warmup))
            return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def export_encoder(module: KnowledgePretrainModule, path: str | Path) -> Path:
    """Write the encoder's full state dict as safetensors (loadable with strict=True)."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in module.encoder.state_dict().items()}
    with atomic_path(path, mkdir=True) as tmp:
        save_file(state, str(tmp), metadata={"format": "sat-text-encoder/1"})
    return path


class TextFitCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--export", default=DEFAULT_EXPORT, help="safetensors file for the encoder")
        parser.add_argument("--calibrate", type=bool, default=True,
                            help="calibrate the resolver threshold and store it beside --export")
        parser.add_argument("--threads", type=int | None, default=None,
                            help="torch CPU threads (1 avoids thread thrashing on a shared machine)")

    def before_fit(self) -> None:
        threads = self.config.get(self.subcommand, {}).get("threads")
        if threads:
            torch.set_num_threads(int(threads))
        self._fit_start = time.perf_counter()

    def after_fit(self) -> None:
        cfg = self.config.get(self.subcommand, {}) if self.subcommand else {}
        if not self.trainer.is_global_zero or not cfg.get("export"):
            return
        from sat.text.sidecar import write_sidecar

        path = export_encoder(self.model, cfg["export"])
        dm: KnowledgeDataModule = self.datamodule
        meta = {"base": asdict(self.model.text_spec), "tree_hash": dm.tree.hash,
                "split": asdict(dm.split_cfg), "steps": int(self.trainer.global_step),
                "train_layers": self.model.hparams["train_layers"], "threads": torch.get_num_threads(),
                "fit_seconds": round(time.perf_counter() - getattr(self, "_fit_start", time.perf_counter()), 1)}
        if cfg.get("calibrate", True):
            from sat.text.calibrate import calibrate

            spec = replace(self.model.text_spec, finetuned=str(path))
            meta.update(calibrate(dm.tree, spec, dm.split_cfg))
        side = write_sidecar(path, meta)
        print(f"text encoder written to {path} (threshold and provenance in {side})")


def cli(args: list[str] | None = None, run: bool = True) -> TextFitCLI:
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return TextFitCLI(KnowledgePretrainModule, KnowledgeDataModule, args=args, run=run,
                      save_config_kwargs={"overwrite": True}, parser_kwargs={"default_env": True},
                      seed_everything_default=0)


def main(argv: list[str] | None = None) -> int:
    """``sat text-fit [fit] --config ...``: the ``fit`` subcommand is implied."""
    argv = list(argv or [])
    if not argv or argv[0] not in ("fit", "-h", "--help"):
        argv = ["fit", *argv]
    cli(argv)
    return 0
