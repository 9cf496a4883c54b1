"""train stage: :func:`fit` runs one :class:`ExperimentConfig` (what ``sat fit`` runs) and returns
its exported checkpoint; :mod:`sat.train.cli` is the command line over the same LightningCLI."""
from __future__ import annotations

__all__ = ["ExperimentConfig", "fit", "trained_steps"]


def __getattr__(name: str):
    if name in __all__:
        from sat.train import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'sat.train' has no attribute {name!r}")
