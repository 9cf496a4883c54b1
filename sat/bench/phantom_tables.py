"""Summary tables of the phantom benchmark, computed from its per-case rows.

A structure's score is the mean over the held-out cases that annotate it; a model's mean is the
unweighted mean over structures (every structure counts once, however many sources annotate it).
Every table row carries the seed and the wall time of the runs behind it.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from sat.bench.prompt_styles import STYLES

LESIONS = ("liver_tumor", "kidney_cyst")  # tiny structures; also reported apart, as `sat demo` does


def _mean(values) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def per_structure(rows: list[dict], style: str | None = None) -> dict[str, dict]:
    """concept -> ``{"dice", "nsd", "n"}`` over the rows of ``style`` (all rows when ``None``)."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"dice": [], "nsd": []})
    for r in rows:
        if style is None or r["style"] == style:
            acc[r["concept"]]["dice"].append(r["dice"])
            acc[r["concept"]]["nsd"].append(r["nsd"])
    return {c: {"dice": _mean(v["dice"]), "nsd": _mean(v["nsd"]), "n": len(v["dice"])} for c, v in sorted(acc.items())}


def macro(per: dict[str, dict], key: str = "dice", organs_only: bool = False) -> float:
    return _mean([v[key] for c, v in per.items() if not (organs_only and c in LESIONS)])


def universal_table(result: dict) -> str | None:
    """The table of the study-1 universal model: the profile's choice, else ``minilm``, else any."""
    trained = [t for t, m in result["universal"].items() if "rows" in m]
    for choice in (result["profile"]["universal_table"], "minilm", *trained):
        if choice in trained:
            return choice
    return None


def study1(result: dict) -> list[dict]:
    """Universal (canonical prompts) vs specialists, per structure, with the two means."""
    seed, table = result["profile"]["seed"], universal_table(result)
    if table is None:
        return []
    u = result["universal"][table]
    uni = per_structure(u["rows"], "canonical")
    spec = per_structure([r for s in result["specialists"].values() for r in s["rows"]])
    base = result["baseline"]["per_structure"]
    wall = u["train_s"] + u["eval_s"] + sum(s["train_s"] + s["eval_s"] for s in result["specialists"].values())
    rows = [{"structure": c, "n": uni[c]["n"], "universal_dice": uni[c]["dice"],
             "specialist_dice": spec.get(c, {}).get("dice", float("nan")),
             "difference": uni[c]["dice"] - spec.get(c, {}).get("dice", float("nan")),
             "universal_nsd": uni[c]["nsd"], "specialist_nsd": spec.get(c, {}).get("nsd", float("nan")),
             "intensity_baseline_dice": base.get(c, float("nan")), "seed": seed, "wall_s": wall} for c in uni]
    for label, organs in (("mean (all structures)", False), ("mean (organs)", True)):
        um, sm = macro(uni, organs_only=organs), macro(spec, organs_only=organs)
        rows.append({"structure": label, "n": sum(v["n"] for c, v in uni.items() if not (organs and c in LESIONS)),
                     "universal_dice": um, "specialist_dice": sm, "difference": um - sm,
                     "universal_nsd": macro(uni, "nsd", organs), "specialist_nsd": macro(spec, "nsd", organs),
                     "intensity_baseline_dice": macro({c: {"dice": v} for c, v in base.items()}, organs_only=organs),
                     "seed": seed, "wall_s": wall})
    return rows


def study2(result: dict) -> list[dict]:
    """Mean Dice per prompt style and table, and the loss against canonical names."""
    seed, out = result["profile"]["seed"], []
    for table, m in result["universal"].items():
        if "rows" not in m:
            continue
        canonical = macro(per_structure(m["rows"], "canonical"))
        for style in STYLES:
            rs = [r for r in m["rows"] if r["style"] == style]
            if not rs:
                continue
            d = macro(per_structure(rs))
            out.append({"table": table, "style": style, "mean_dice": d, "loss_vs_canonical": canonical - d,
                        "resolved_correctly": _mean([float(r["resolved"] == r["concept"]) for r in rs]),
                        "refused": _mean([float(r["resolved"] is None) for r in rs]), "prompts": len(rs),
                        "seed": seed, "wall_s": m["eval_s"]})
    return out


def study3(result: dict) -> list[dict]:
    """Text-side ablation: one row per concept table (skipped tables keep their reason)."""
    seed, out = result["profile"]["seed"], []
    for table, m in result["universal"].items():
        if "rows" not in m:
            out.append({"table": table, "text_source": "skipped: " + m["skipped"], "seed": seed})
            continue
        d = {s: macro(per_structure(m["rows"], s)) for s in ("canonical", "synonym", "synonym_embedding")}
        out.append({"table": table, "text_source": m["source"], "steps": m["steps"],
                    "canonical_dice": d["canonical"], "synonym_prompt_dice": d["synonym"],
                    "synonym_only_dice": d["synonym_embedding"],
                    "synonym_only_loss": d["canonical"] - d["synonym_embedding"], "seed": seed,
                    "wall_s": m["train_s"] + m["eval_s"] + m["text_fit_s"]})
    return out


def study4(result: dict) -> list[dict]:
    """The intensity-only baseline per structure, next to the universal model."""
    seed, b = result["profile"]["seed"], result["baseline"]
    table = universal_table(result)
    uni = per_structure(result["universal"][table]["rows"], "canonical") if table else {}
    rows = [{"structure": c, "intensity_baseline_dice": v, "universal_dice": uni.get(c, {}).get("dice", float("nan")),
             "seed": seed, "wall_s": b["wall_s"]} for c, v in b["per_structure"].items()]
    rows.append({"structure": "mean", "intensity_baseline_dice": b["mean_dice"],
                 "universal_dice": macro({c: uni[c] for c in b["per_structure"] if c in uni}),
                 "seed": seed, "wall_s": b["wall_s"]})
    return rows


def all_tables(result: dict) -> dict[str, list[dict]]:
    return {"study1_universal_vs_specialists": study1(result), "study2_prompt_robustness": study2(result),
            "study3_text_ablation": study3(result), "study4_intensity_baseline": study4(result)}
