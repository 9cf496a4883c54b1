"""Box plots of per-case scores by body region (matplotlib Agg canvas, PNG files).

One figure per region with a box per structure (Dice and NSD side by side), and one overview
figure with a box per region. Failed pairs are included (as Dice 0); NaN pairs are left out.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sat.knowledge.tree import REGIONS

PANELS = (("dice", "Dice"), ("nsd", "NSD"))


def finish_dice_figure(fig, ax, path: Path, title: str, ylabel: str = "Dice", dpi: int = 90) -> Path:
    """Label, grid, legend, lay out and save a Dice chart as PNG, then close it; returns ``path``."""
    import matplotlib.pyplot as plt

    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _values(rows: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    return [float(r[metric]) for r in rows if not math.isnan(float(r[metric]))]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "unknown"


def _boxes(ax, groups: Mapping[str, list[float]], title: str) -> None:
    labels = [k for k, v in groups.items() if v]
    ax.boxplot([groups[k] for k in labels], showmeans=True, whis=1.5)
    ticks = [f"{k} (n={len(groups[k])})" for k in labels]
    ax.set_xticks(range(1, len(labels) + 1), ticks, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{title} (triangle = mean)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)


def region_box_plots(rows: Sequence[Mapping[str, Any]], out_dir: str | Path, *, dpi: int = 100) -> list[Path]:
    """Write ``box_<region>.png`` per region and ``box_regions.png``; return the paths written.

    Args:
        rows: per-(case, structure) rows with ``region``, ``name``, ``dice`` and ``nsd``.
        out_dir: folder for the PNG files (created if needed).
        dpi: resolution of the PNG files.
    """
    from matplotlib.figure import Figure  # object API with the Agg canvas: no pyplot global state

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    regions = sorted({r["region"] for r in rows}, key=lambda g: (REGIONS.index(g) if g in REGIONS else 99, g))
    paths = []
    for region in regions:
        sub = [r for r in rows if r["region"] == region]
        names = sorted({r["name"] for r in sub})
        fig = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(names)) * 1.6, 3.8))
        axes = fig.subplots(1, 2)
        for ax, (metric, label) in zip(axes, PANELS):
            _boxes(ax, {n: _values([r for r in sub if r["name"] == n], metric) for n in names}, f"{region}: {label}")
        fig.tight_layout()
        paths.append(out / f"box_{_safe(region)}.png")
        fig.savefig(paths[-1], dpi=dpi)
    fig = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(regions)) * 1.6, 3.8))
    axes = fig.subplots(1, 2)
    for ax, (metric, label) in zip(axes, PANELS):
        per_region = {g: _values([r for r in rows if r["region"] == g], metric) for g in regions}
        _boxes(ax, per_region, f"all regions: {label}")
    fig.tight_layout()
    paths.append(out / "box_regions.png")
    fig.savefig(paths[-1], dpi=dpi)
    return paths
