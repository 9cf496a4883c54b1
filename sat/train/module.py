"""The LightningModule: text-prompted segmentation with partial labels.

Precision (e.g. ``bf16-mixed`` on GPUs), gradient clipping, devices and strategy are trainer
settings in ``configs/trainer/*.yaml``; nothing here depends on them.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import lightning as L
import torch

from sat.losses.partial_label import LossConfig, PartialLabelLoss
from sat.model.builder import build_model
from sat.model.config import ModelConfig
from sat.text.encoder import TextEncoderSpec
from sat.train.ema import ModelEMA
from sat.train.interaction import InteractionConfig, interactive_logits

# what interaction.train_decoder trains beside the prompt encoder: the query decoder's layers, its
# output norm, mask embedding and deep-supervision heads (not the text projection or side vectors)
DECODER_PARTS = ("head.prompt.", "head.layers.", "head.norm.", "head.mask_embed.", "head.aux.")
from sat.train.optim import param_groups, warmup_cosine
from sat.train.val_metrics import DiceTable, dice_score


@dataclass
class OptimConfig:
    """Attributes:
        lr: peak learning rate. weight_decay: AdamW decay on matrices (really applied).
        text_lr_mult: learning-rate multiplier of the text projection.
        warmup_steps, total_steps: schedule length (``total_steps`` <= 0: use the trainer's).
        schedule: ``steps`` (cosine over the step budget) or ``time`` (cosine over whichever of the
            step budget and the trainer's ``max_time`` runs out first: for wall-clock-bounded runs;
            the clock is Lightning's ``Timer``, which resumes with the run).
        ema_decay: keep an exponential moving average of weights (0 disables); when enabled the
            average is used for validation and export.
    """

    lr: float = 2e-3
    weight_decay: float = 1e-4
    text_lr_mult: float = 1.0
    warmup_steps: int = 50
    total_steps: int = 0
    ema_decay: float = 0.0
    schedule: str = "steps"

    def __post_init__(self) -> None:
        if self.schedule not in ("steps", "time"):
            raise ValueError(f"optim.schedule must be 'steps' or 'time', got {self.schedule!r}")


class SATModule(L.LightningModule):
    """Trains a :class:`UniversalSegmenter` on shard batches from :class:`ShardDataModule`.

    Args:
        model: network configuration. text: text encoder spec for concept embeddings.
        optim: optimiser and schedule. loss: partial-label loss terms (:class:`LossConfig`).
        spacing: preprocessing spacing (stored for inference).
        modality_spacing: preprocessing spacing per modality where it differs from ``spacing``
            (stored for inference, see :class:`~sat.volume.preprocess.PreprocessSpec`).
        tree_dir: knowledge tree folder (``None`` = default tree).
        concept_table: ``text`` (rows = ``text`` encoder embeddings of the concept names) or
            ``onehot`` (rows = one-hot vectors, :mod:`sat.text.onehot`; needs ``model.text_dim``
            >= the number of tree concepts). ``onehot`` is the text-side ablation.
        interaction: training with simulated clicks and boxes (:class:`InteractionConfig`).
    """

    def __init__(self, model: ModelConfig | None = None, text: TextEncoderSpec | None = None,
                 optim: OptimConfig | None = None, loss: LossConfig | None = None,
                 spacing: tuple[float, float, float] = (4.0, 4.0, 4.0),
                 tree_dir: str | None = None, concept_table: str = "text",
                 modality_spacing: dict[str, tuple[float, float, float]] | None = None,
                 interaction: InteractionConfig | None = None) -> None:
        super().__init__()
        from sat.knowledge.tree import load_tree
        from sat.text.cache import term_table

        self.model_cfg, self.text_spec = model or ModelConfig(), text or TextEncoderSpec()
        self.optim_cfg, self.spacing, self.tree_dir = optim or OptimConfig(), tuple(spacing), tree_dir
        self.loss_cfg = loss or LossConfig()
        self.modality_spacing = {str(k).upper(): tuple(float(x) for x in v) for k, v in (modality_spacing or {}).items()}
        self.save_hyperparameters({"model": self.model_cfg.to_dict(), "text": asdict(self.text_spec),
                                   "optim": asdict(self.optim_cfg),
                                   "loss": asdict(self.loss_cfg), "spacing": list(self.spacing),
                                   "tree_dir": tree_dir, "concept_table": concept_table,
                                   "modality_spacing": {k: list(v) for k, v in self.modality_spacing.items()},
                                   "interaction": asdict(interaction or InteractionConfig())})
        tree = load_tree(tree_dir)
        self.interaction = interaction or InteractionConfig()
        if self.interaction.init_checkpoint:  # the checkpoint brings its own table: see _setup_interaction
            ids, emb = ["none"], torch.zeros(1, self.model_cfg.text_dim)
        elif concept_table == "text":
            ids, _, emb = term_table(tree, self.text_spec, kind="names")
        elif concept_table == "onehot":
            from sat.text.onehot import onehot_table

            ids = list(tree.concepts)
            emb = onehot_table(len(ids), self.model_cfg.text_dim)
        else:
            raise ValueError(f"concept_table must be 'text' or 'onehot', got {concept_table!r}")
        self.tree_hash = tree.hash
        self.net = build_model(self.model_cfg, ids, emb, [tree.get(c).laterality if c in tree.concepts else None
                                                          for c in ids])
        if self.interaction.enabled or self.interaction.init_checkpoint:
            self._setup_interaction()
        self.ema = ModelEMA(self.net, self.optim_cfg.ema_decay) if self.optim_cfg.ema_decay > 0 else None
        self.loss_fn = PartialLabelLoss(self.loss_cfg)
        self.trained_concepts: set[str] = set()
        self.val_dice = DiceTable({c.id: c.region for c in tree.concepts.values()})
        self._t_batch_end: float | None = None
        self._t_start = 0.0
        self._data_wait = self._step_time = 0.0
        self._samples = self._batches = 0

    def _setup_interaction(self) -> None:
        """Start from ``interaction.init_checkpoint`` if given, add a prompt encoder, freeze the rest
        with ``freeze_base`` (the model config then records ``head.interactive``)."""
        it = self.interaction
        if it.init_checkpoint:
            from sat.model.checkpoint import load_checkpoint

            net, meta = load_checkpoint(it.init_checkpoint)
            self.net, self.tree_hash = net.train(), meta.tree_hash
            self.model_cfg = ModelConfig.from_dict(meta.model.to_dict())  # a copy: interactive is set below
            self.text_spec = TextEncoderSpec(**meta.text)
            # export keeps the grid the backbone was trained on
            self.spacing = tuple(float(x) for x in meta.preprocess.spacing)
            self.modality_spacing = {str(k).upper(): tuple(float(x) for x in v)
                                     for k, v in meta.preprocess.modality_spacing.items()}
            self.init_rules = dict(meta.preprocess.rules)  # checked against the shards in on_fit_start
            if it.freeze_base:  # the text path stays the checkpoint's: so do its flips and inference advice
                self.inherited_extra = {k: meta.extra[k] for k in ("lr_flip_prob", "inference") if k in meta.extra}
        if it.enabled:
            if not hasattr(self.net.head, "add_prompt_encoder"):
                raise ValueError(f"interaction needs the query_decoder head, not {type(self.net.head).__name__}")
            self.net.head.add_prompt_encoder()
            self.model_cfg.head.interactive = True
        if it.freeze_base:
            trained = DECODER_PARTS if it.train_decoder else ("head.prompt.",)
            for name, p in self.net.named_parameters():
                p.requires_grad_(name.startswith(trained))

    def on_fit_start(self) -> None:
        """A fine-tune from ``interaction.init_checkpoint`` must see images normalised as that
        checkpoint's were: shards built with another intensity rule are refused, naming both."""
        rules = getattr(self, "init_rules", None)
        dm = getattr(self.trainer, "datamodule", None)
        if not rules or dm is None:
            return
        from sat.data.shard_rules import shard_rules

        for modality, rule in shard_rules(dict(getattr(dm, "train", {}) or {})).items():
            if modality in rules and rules[modality] != rule:
                raise ValueError(f"the training shards normalise {modality} with {rule}, but "
                                 f"{self.interaction.init_checkpoint} was trained with {rules[modality]}; "
                                 "rebuild the shards with the recipe that checkpoint was trained on")

    def forward(self, image, queries, modality=None, pad=None):
        return self.net(image, queries, modality, pad)

    def export_net(self) -> torch.nn.Module:
        """The weights to validate and ship: the EMA average when enabled, else the trained net."""
        return self.ema.module if self.ema is not None else self.net

    # ----------------------------------------------------------------------------- training
    def _queries(self, batch: dict) -> torch.Tensor:
        """(B, Q) concept-table indices of the batch's query ids (padding -> row 0, masked later)."""
        idx = torch.zeros(batch["valid"].shape, dtype=torch.long)
        for b, ids in enumerate(batch["concepts"]):
            idx[b, : len(ids)] = self.net.query_indices(ids)
            self.trained_concepts.update(ids)
        return idx.to(self.device)

    def on_train_batch_start(self, batch, batch_idx):
        now = time.perf_counter()
        if self._t_batch_end is not None:
            self._data_wait += now - self._t_batch_end
        self._t_start = now

    def training_step(self, batch, batch_idx):
        queries = self._queries(batch)
        it = self.interaction
        only_prompts = it.freeze_base and not it.train_decoder  # a text-only step would train nothing
        if it.enabled and (only_prompts or torch.rand(()) < it.prob):
            out, _ = interactive_logits(self.net, batch["image"], queries, batch["modality"], batch["valid"],
                                        batch["target"], it)
        else:
            out = self(batch["image"], queries, batch["modality"], ~batch["valid"])
        terms = self.loss_fn(out, batch["target"], batch["valid"])
        bs = batch["image"].shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, prog_bar=True, batch_size=bs)
        if not terms["loss"].requires_grad:  # frozen base and no prompt to learn from: skip the step
            return None
        return terms["loss"]

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        # here, not in on_train_batch_end: checkpoint callbacks run before that hook, and a
        # checkpoint must hold the average of the very step it records
        if self.ema is not None:
            self.ema.update(self.net)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        now = time.perf_counter()
        self._step_time += now - self._t_start
        self._t_batch_end = now
        bs = batch["image"].shape[0]
        self._samples += bs * self.trainer.world_size
        self._batches += 1
        total = self._step_time + self._data_wait
        every = max(1, self.trainer.log_every_n_steps)
        if total > 0 and self.global_step % every == 0:
            perf = {"perf/data_wait_frac": self._data_wait / total, "perf/samples_per_s": self._samples / total,
                    "perf/step_s": self._step_time / self._batches,
                    "lr": self.trainer.optimizers[0].param_groups[0]["lr"]}
            if self.device.type == "cuda":
                perf["perf/max_mem_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
            self.log_dict(perf, batch_size=bs)

    def on_train_epoch_start(self):
        self._t_batch_end, self._data_wait, self._step_time = None, 0.0, 0.0
        self._samples = self._batches = 0

    def on_train_epoch_end(self):
        self._sync_trained_concepts()

    def on_train_end(self):
        self._sync_trained_concepts()

    def _sync_trained_concepts(self) -> None:
        """Union of the concepts every DDP rank has trained on (a collective call)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            parts: list[list[str] | None] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(parts, sorted(self.trained_concepts))
            self.trained_concepts = {c for p in parts for c in (p or [])}

    # ----------------------------------------------------------------------------- validation
    def on_validation_epoch_start(self):
        self.val_dice.reset()

    def validation_step(self, sample, batch_idx):
        """Sliding-window prediction of one whole case; returns arrays for the overlay callback."""
        from sat.model.sliding_window import predict_preprocessed

        meta = sample["meta"]
        concepts = [c for c in meta["annotated"] if c in self.net.index]
        image = torch.from_numpy(sample["image"])
        dm = self.trainer.datamodule
        patch = (dm.sampling_for(meta["dataset"]) if hasattr(dm, "sampling_for") else dm.sampling).patch_size
        prob = predict_preprocessed(self.export_net(), image, concepts, meta["modality"], patch_size=patch)
        gts = [sample["masks"][meta["concepts"].index(cid)] for cid in concepts]
        for k, (cid, gt) in enumerate(zip(concepts, gts)):
            self.val_dice.add(meta["dataset"], cid, dice_score(prob[k] > 0.5, torch.from_numpy(gt)))
        return {"image": sample["image"], "prob": prob, "gt": gts, "concepts": concepts,
                "dataset": meta["dataset"], "case": meta.get("case_id") or sample.get("key") or str(batch_idx)}

    def on_validation_epoch_end(self):
        self.val_dice.gather()
        means = self.val_dice.means()
        if means:
            # identical on every rank after the gather, so no further sync is needed
            self.log("val/dice", means.pop("val/dice"), prog_bar=True, batch_size=1)
            self.log_dict(means, batch_size=1)

    # ----------------------------------------------------------------------------- optimisation
    def configure_optimizers(self):
        o = self.optim_cfg
        opt = torch.optim.AdamW(param_groups(self.net, lr=o.lr, weight_decay=o.weight_decay,
                                             text_lr_mult=o.text_lr_mult))
        est = float(self.trainer.estimated_stepping_batches)  # inf for a run capped by time only
        total = o.total_steps if o.total_steps > 0 else (int(est) if math.isfinite(est) else 0)
        if total <= 0 and o.schedule != "time":
            raise ValueError("optim.schedule 'steps' needs optim.total_steps or trainer.max_steps (got neither; "
                             "a run capped only by trainer.max_time takes optim.schedule 'time')")
        sched = warmup_cosine(opt, warmup_steps=o.warmup_steps, total_steps=total if total > 0 else None,
                              progress=self._time_progress() if o.schedule == "time" else None)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _time_progress(self):
        """A callable giving the share of the trainer's ``max_time`` used so far."""
        from lightning.pytorch.callbacks import Timer

        timer = next((c for c in self.trainer.callbacks if isinstance(c, Timer)), None)
        if timer is None or timer.time_remaining("train") is None:
            raise ValueError("optim.schedule 'time' needs trainer.max_time")

        def progress() -> float:
            used, left = timer.time_elapsed("train"), timer.time_remaining("train")
            return used / max(used + left, 1e-9)

        return progress

    def on_save_checkpoint(self, checkpoint):
        checkpoint["trained_concepts"] = sorted(self.trained_concepts)

    def on_load_checkpoint(self, checkpoint):
        self.trained_concepts = set(checkpoint.get("trained_concepts", []))
