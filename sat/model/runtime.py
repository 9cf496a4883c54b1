"""GPU-path switches of a model config, applied to a built model (see ``docs/training.md``).

None of them changes the math; each only changes how the backbone runs on a CUDA device, so
checkpoints and state dicts are unaffected and CPU inference never pays for them:

* ``channels_last`` (ModelConfig): backbone weights and inputs in ``torch.channels_last_3d``
  (NDHWC), the layout cuDNN's 3D tensor-core convolutions prefer;
* ``compile`` (ModelConfig): ``torch.compile`` of the backbone, from its second CUDA training call
  on (the first runs eagerly while the switch is applied);
* ``checkpoint_min_patch`` (BackboneConfig): with ``checkpointing`` on, recompute activations only
  for inputs of at least this many voxels per side on average (e.g. 160 for ``pro``): smaller
  patches fit without it and train faster.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def apply_runtime(model: nn.Module, *, channels_last: bool = False, compile: bool = False,
                  checkpointing: bool = False, checkpoint_min_patch: int = 0) -> nn.Module:
    """Register the switches on ``model.backbone`` (a pre-forward hook); returns ``model``."""
    if checkpoint_min_patch < 0:
        raise ValueError(f"checkpoint_min_patch must be >= 0, got {checkpoint_min_patch}")
    backbone = model.backbone
    gate = checkpointing and checkpoint_min_patch > 0 and hasattr(backbone, "checkpointing")
    if not (channels_last or compile or gate):
        return model
    state = {"layout_done": False, "compiled": False}

    def hook(module: nn.Module, args: tuple):
        x = args[0]
        if gate:  # voxels of one sample against the threshold cube
            module.checkpointing = math.prod(x.shape[2:]) >= checkpoint_min_patch ** 3
        if not x.is_cuda:
            return None
        if compile and module.training and not state["compiled"]:
            module.compile()  # takes effect from the next call
            state["compiled"] = True
        if channels_last and x.ndim == 5:
            if not state["layout_done"]:
                module.to(memory_format=torch.channels_last_3d)
                state["layout_done"] = True
            return (x.contiguous(memory_format=torch.channels_last_3d), *args[1:])
        return None

    backbone.register_forward_pre_hook(hook)
    return model
