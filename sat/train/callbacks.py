"""Training callbacks: validation overlay images."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np


def overlay_figure(image: np.ndarray, gt: np.ndarray, pred: np.ndarray, title: str, path: Path) -> Path:
    """Write a PNG of the axial slice through the structure's centre: ground truth green, prediction red.

    Args:
        image: (X, Y, Z) intensities on the RAS grid. gt, pred: (X, Y, Z) bool.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    zs = np.flatnonzero(gt.any(axis=(0, 1)))
    z = int(zs[len(zs) // 2]) if zs.size else image.shape[2] // 2
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    # RAS axis 0 runs to the patient's right: show it leftwards as radiologists do
    ax.imshow(image[::-1, :, z].T, cmap="gray", origin="lower")
    for mask, color in ((gt, "lime"), (pred, "red")):
        if mask[:, :, z].any():
            ax.contour(mask[::-1, :, z].T.astype(float), levels=[0.5], colors=color, linewidths=1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


class ValidationOverlays(L.Callback):
    """Every ``every_n_batches`` validation batches (rank 0 only), save an overlay of the largest
    annotated structure of the case under ``<log_dir>/overlays/`` and send it to W&B when a
    WandbLogger is attached.

    Args:
        every_n_batches: validation batches between two overlays. max_per_epoch: cap per epoch.
    """

    def __init__(self, every_n_batches: int = 10, max_per_epoch: int = 4) -> None:
        if every_n_batches < 1:
            raise ValueError(f"every_n_batches must be >= 1, got {every_n_batches}")
        self.every_n_batches, self.max_per_epoch = every_n_batches, max_per_epoch
        self._written = 0
        self._dir: Path | None = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._written = 0
        # on every rank: Trainer.log_dir is a collective (a broadcast from rank 0) under DDP
        self._dir = Path(trainer.log_dir or trainer.default_root_dir) / "overlays"

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if (not trainer.is_global_zero or not isinstance(outputs, dict) or "prob" not in outputs
                or batch_idx % self.every_n_batches or self._written >= self.max_per_epoch):
            return
        gt = np.asarray(outputs["gt"])
        if gt.shape[0] == 0:
            return
        k = int(gt.reshape(gt.shape[0], -1).sum(1).argmax())
        pred = np.asarray(outputs["prob"][k] > 0.5)
        name = f"{outputs['dataset']}_{outputs['case']}_{outputs['concepts'][k]}"
        path = overlay_figure(np.asarray(outputs["image"])[0], gt[k], pred, f"step {trainer.global_step}: {name}",
                              self._dir / f"step{trainer.global_step:07d}_{name}.png")
        self._written += 1
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                logger.log_image(key="val/overlay", images=[str(path)], caption=[name])
