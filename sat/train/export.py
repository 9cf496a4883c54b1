"""Export a trained :class:`SATModule` to a self-contained inference checkpoint."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from sat.knowledge.tree import KnowledgeTree, load_tree
from sat.model.checkpoint import save_checkpoint
from sat.data.shard_rules import training_spec

log = logging.getLogger(__name__)


def export_module(module, datamodule, path: str | Path, net=None) -> Path:
    """Write ``model.ckpt`` (weights, configs, tree hash, concept table, trained concepts).

    Args:
        module: the trained :class:`SATModule`. datamodule: its data module (for the patch size).
        path: output file (written atomically).
        net: weights to export; default :meth:`SATModule.export_net` (the EMA average when enabled).
    """
    patch = list(datamodule.sampling.patch_size) if datamodule is not None else [48, 48, 48]
    from sat.text.bundle import encoder_delta

    net = net if net is not None else module.export_net()
    return save_checkpoint(path, net, model_cfg=module.model_cfg, text_spec=asdict(module.text_spec),
                           tree_hash=module.tree_hash, preprocess=training_spec(
                               module.spacing, getattr(module, "modality_spacing", {}),
                               dict(getattr(datamodule, "train", {}) or {})).to_dict(),
                           trained_concepts=sorted(module.trained_concepts),
                           extra={"patch_size": patch, "ema": net is not module.net,
                                  "steps": int(getattr(module, "global_step", 0)), **training_facts(datamodule),
                                  **getattr(module, "inherited_extra", {})},
                           text_delta=encoder_delta(module.text_spec), tree=training_tree(module))


def training_tree(module) -> KnowledgeTree | None:
    """The knowledge tree the module was built with, for the checkpoint's vocabulary snapshot;
    ``None`` (no snapshot, with a warning) when the tree's files changed during training."""
    tree = load_tree(getattr(module, "tree_dir", None))
    if tree.hash == module.tree_hash:
        return tree
    log.warning("knowledge tree changed during training (%s -> %s); the checkpoint carries no vocabulary snapshot",
                module.tree_hash, tree.hash)
    return None


def training_facts(datamodule) -> dict:
    """What inference must know about the training data: whether crops were left-right flipped
    (``lr_flip_prob``; test-time mirroring is only trusted when they were), which datasets it saw
    (``trained_on``; a phantom-only model says so) and per-concept volume and intensity ranges
    (``concept_stats``, see :mod:`sat.data.concept_stats`) for the plausibility checks."""
    if datamodule is None:
        return {}
    from sat.data.concept_stats import concept_stats

    datasets = sorted(getattr(datamodule, "train", {}) or {})
    groups, _ = datamodule._tree_maps() if hasattr(datamodule, "_tree_maps") else ({}, {})
    flip = float(getattr(datamodule.sampling, "lr_flip_prob", 0.0))
    return {"lr_flip_prob": flip,
            "inference": {"tta": flip > 0},  # a model trained on mirrored crops is asked both ways
            "trained_on": {"datasets": datasets,
                           "phantom_only": bool(datasets) and all(d.startswith("phantom") for d in datasets)},
            "concept_stats": concept_stats(dict(getattr(datamodule, "train", {}) or {}), groups)}
