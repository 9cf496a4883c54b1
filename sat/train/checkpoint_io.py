"""Lightning checkpoint I/O that writes atomically and loads without unpickling code."""
from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from sat.atomic import atomic_path


class SafeCheckpointIO(TorchCheckpointIO):
    """Training checkpoints written to a temporary file and renamed into place, read with
    ``torch.load(weights_only=True)``.

    A crash while saving leaves the previous checkpoint intact (never a truncated file), and a
    checkpoint can only hold tensors and plain containers, so loading one executes no code.
    Remote URLs (``s3://`` ...) fall back to Lightning's own writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"SafeCheckpointIO takes no storage_options, got {storage_options!r}")
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path)
        with atomic_path(path, mkdir=True) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        if map_location is None:
            return super().load_checkpoint(path, weights_only=True)
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)
