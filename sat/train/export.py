"""Export a trained :class:`SATModule` to a self-contained inference checkpoint."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from sat.data.preprocess import PreprocessSpec
from sat.model.checkpoint import save_checkpoint


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
                           tree_hash=module.tree_hash, preprocess=PreprocessSpec(spacing=module.spacing).to_dict(),
                           trained_concepts=sorted(module.trained_concepts),
                           extra={"patch_size": patch, "ema": net is not module.net},
                           text_delta=encoder_delta(module.text_spec))
