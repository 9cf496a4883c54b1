"""Export a trained :class:`SATModule` to a self-contained inference checkpoint."""
from __future__ import annotations

from pathlib import Path

from sat.data.preprocess import PreprocessSpec
from sat.model.checkpoint import save_checkpoint


def export_module(module, datamodule, path: str | Path, net=None) -> Path:
    """Write ``model.ckpt`` (weights, configs, tree hash, concept table, trained concepts)."""
    from dataclasses import asdict

    patch = list(datamodule.sampling.patch_size) if datamodule is not None else [48, 48, 48]
    return save_checkpoint(path, net or module.net, model_cfg=module.model_cfg, text_spec=asdict(module.text_spec),
                           tree_hash=module.tree_hash, preprocess=PreprocessSpec(spacing=module.spacing).to_dict(),
                           trained_concepts=sorted(module.trained_concepts),
                           extra={"patch_size": patch})
