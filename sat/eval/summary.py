"""Aggregate per-(case, structure) scores into the tables and ``summary.json`` of ``sat evaluate``.

Averaging is per structure first: a structure's score is the mean over the cases that have it, and
a group's score (overall, a body region, a modality, a dataset) is the unweighted mean of its
structures' scores within the group, so a structure seen in many cases does not outweigh a rare
one. ``n`` counts the scored (case, structure) pairs; pairs made NaN by the ``exclude`` empty policy
are left out of means and of ``n``. Failed pairs (no usable prediction) always count, as Dice 0.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sat.eval.report import bullet_list, markdown_table, section, write_csv
from sat.knowledge.tree import REGIONS

SCORES = ("dice", "nsd", "hd95")
ROW_COLUMNS = ("dataset", "case", "modality", "concept", "name", "region", "status",
               "dice", "nsd", "hd95", "rve", "gt_ml", "pred_ml")
GROUPS = ("region", "modality", "dataset")
FAILED = ("missing", "error")  # row statuses that are scored as failures


def mean(values: Iterable[float]) -> float:
    """Mean of the non-NaN values; NaN when there are none."""
    vals = [float(v) for v in values if not math.isnan(float(v))]
    return sum(vals) / len(vals) if vals else float("nan")


def _region_order(region: str) -> int:
    return REGIONS.index(region) if region in REGIONS else len(REGIONS)


def structure_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """concept id -> {name, region, n, missing, dice, nsd, hd95}, ordered by region then name."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["concept"], []).append(row)
    out = {}
    for cid, group in sorted(by.items(), key=lambda kv: (_region_order(kv[1][0]["region"]), kv[1][0]["name"])):
        stats: dict[str, Any] = {"name": group[0]["name"], "region": group[0]["region"],
                                 "n": sum(not math.isnan(r["dice"]) for r in group),
                                 "missing": sum(r["status"] in FAILED for r in group)}
        stats.update({m: mean(r[m] for r in group) for m in SCORES})
        out[cid] = stats
    return out


def group_stats(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Group value -> {structures, n, missing, dice, nsd, hd95} (macro over structures in the group)."""
    values = sorted({r[key] for r in rows}, key=lambda v: (_region_order(v), v) if key == "region" else (0, v))
    out = {}
    for value in values:
        per = structure_stats([r for r in rows if r[key] == value])
        out[value] = {"structures": sum(s["n"] > 0 for s in per.values()), "n": sum(s["n"] for s in per.values()),
                      "missing": sum(s["missing"] for s in per.values())}
        out[value].update({m: mean(s[m] for s in per.values()) for m in SCORES})
    return out


def summarize(rows: Sequence[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """The ``summary.json`` content.

    Returns:
        ``{"mean": {dice, nsd, hd95}, "per_structure": {concept id: {dice, nsd, hd95, n}},
        "by": {region|modality|dataset: {value: {...}}}, **extra}``.
    """
    per = structure_stats(rows)
    return {
        "mean": {m: mean(s[m] for s in per.values()) for m in SCORES},
        "per_structure": {cid: {**{m: s[m] for m in SCORES}, "n": s["n"]} for cid, s in per.items()},
        "by": {g: group_stats(rows, g) for g in GROUPS},
        **extra,
    }


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def write_summary_json(summary: Mapping[str, Any], path: Path) -> Path:
    """Write JSON with NaN as ``null``."""
    path.write_text(json.dumps(_json_safe(dict(summary)), indent=1, allow_nan=True) + "\n")
    return path


def _table_rows(stats: Mapping[str, Mapping[str, Any]], index: str) -> list[dict[str, Any]]:
    return [{index: key, **dict(values)} for key, values in stats.items()]


def write_tables(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], out: Path) -> dict[str, Path]:
    """Write ``per_case.csv`` and ``by_{structure,region,modality,dataset}.csv``; return their paths."""
    paths = {"per_case": write_csv(rows, out / "per_case.csv", ROW_COLUMNS)}
    per = structure_stats(rows)
    paths["by_structure"] = write_csv(_table_rows(per, "concept"), out / "by_structure.csv",
                                      ("concept", "name", "region", "n", "missing", *SCORES))
    for g in GROUPS:
        paths[f"by_{g}"] = write_csv(_table_rows(summary["by"][g], g), out / f"by_{g}.csv",
                                     (g, "structures", "n", "missing", *SCORES))
    return paths


_HEADERS = {"dice": "Dice", "nsd": "NSD", "hd95": "HD95 (mm)", "n": "n", "missing": "missing"}


def render_markdown(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], *,
                    notes: Sequence[str] = (), plots: Sequence[Path] = (), out: Path | None = None) -> str:
    """The ``summary.md`` report: settings, counts, the four tables, failures, notes and plots."""
    c, s = summary.get("counts", {}), summary.get("settings", {})
    intro = (f"Ground truth `{s.get('gt')}`, predictions `{s.get('pred')}`; NSD tolerance {s.get('tolerance_mm')} mm; "
             f"empty-mask policy `{s.get('empty')}`. Scores average over cases per structure, then over "
             "structures (macro). `missing` = no usable prediction (absent, unreadable or on another grid), "
             "scored as Dice 0 and NSD 0 with HD95 = image diagonal.")
    counts = bullet_list(f"{k.replace('_', ' ')}: {v}" for k, v in c.items())
    parts = ["# Evaluation\n", intro + "\n", counts + "\n"]
    overall = [{"scope": "all structures", "structures": len(summary["per_structure"]),
                "n": sum(v["n"] for v in summary["per_structure"].values()),
                "missing": sum(r["status"] in FAILED for r in rows), **summary["mean"]}]
    parts.append(section("Overall", markdown_table(overall, headers=_HEADERS)))
    for g in GROUPS:
        parts.append(section(f"By {g}", markdown_table(_table_rows(summary["by"][g], g), headers=_HEADERS)))
    per = _table_rows(structure_stats(rows), "concept")
    parts.append(section("By structure", markdown_table(per, headers=_HEADERS)))
    failed = [r for r in rows if r["status"] in FAILED]
    if failed:
        parts.append(section("Failed predictions", bullet_list(
            f"{r['dataset']}/{r['case']}: {r['concept']} ({r['status']})" for r in failed)))
    errors = summary.get("errors", [])
    if errors:
        parts.append(section("Errors", bullet_list(e["error"] for e in errors)))
    if notes:
        parts.append(section("Notes", bullet_list(notes)))
    if plots:
        rel = [p.relative_to(out) if out is not None else p for p in plots]
        parts.append(section("Plots", "\n\n".join(f"![{p.stem}]({p.as_posix()})" for p in rel)))
    return "\n".join(parts)
