"""Summary tables of ``sat benchmark real`` from its per-case rows (pure functions)."""
from __future__ import annotations

import math
from collections import defaultdict
from statistics import mean, median

import numpy as np

BOOTSTRAP = 10_000  # resamples of the validation cases for the difference's interval


def _mean(values) -> float:
    vals = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return mean(vals) if vals else float("nan")


def paired_interval(diffs: dict[str, dict[str, float]], resamples: int = BOOTSTRAP, seed: int = 0
                    ) -> tuple[float, float]:
    """95 % percentile bootstrap interval of a mean paired difference, resampling cases.

    Args:
        diffs: ``{case: {structure: universal Dice - specialist Dice}}``; a case holds the structures
            contoured in it. The statistic is the mean over structures of each structure's mean over
            the drawn cases that hold it (one structure: its mean difference; a dataset: its mean row).

    Returns:
        (low, high); NaNs when there are fewer than two cases.
    """
    cases = list(diffs)
    if len(cases) < 2:
        return float("nan"), float("nan")
    structures = sorted({s for d in diffs.values() for s in d})
    table = np.array([[diffs[c].get(s, np.nan) for s in structures] for c in cases])  # (cases, structures)
    held = ~np.isnan(table)
    values = np.nan_to_num(table)
    draws = np.random.default_rng(seed).integers(0, len(cases), size=(resamples, len(cases)))
    counts = held[draws].sum(1)  # (resamples, structures)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = np.nanmean(values[draws].sum(1) / np.where(counts > 0, counts, np.nan), axis=1)  # (resamples,)
    low, high = np.nanpercentile(stat, [2.5, 97.5])
    return float(low), float(high)


def _paired(rows: list[dict], dataset: str) -> dict[str, dict[str, float]]:
    """``{case: {concept: universal - specialist Dice}}`` over the canonical rows both families scored."""
    dice: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["style"] == "label" and r["dataset"] == dataset:
            dice[(r["case"], r["concept"])][r["model"]] = r["dice"]
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (case, concept), by_model in dice.items():
        if {"universal", "specialist"} <= set(by_model):
            out[case][concept] = by_model["universal"] - by_model["specialist"]
    return dict(out)


def per_structure(rows: list[dict]) -> list[dict]:
    """Per dataset and structure: universal and specialist Dice / NSD / HD95 (means over cases),
    then one mean row per dataset (the mean of its structures' means). Each row's difference
    carries a 95 % paired bootstrap interval over the validation cases (``difference_ci``)."""
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["style"] == "label":
            groups[(r["dataset"], r["concept"])][r["model"]].append(r)
    out = []
    for dataset in dict.fromkeys(d for d, _ in groups):
        block, paired = [], _paired(rows, dataset)
        for (d, concept), by_model in groups.items():
            if d != dataset:
                continue
            row = {"dataset": d, "structure": concept, "cases": len(by_model.get("universal", []))}
            for model in ("universal", "specialist"):
                for m in ("dice", "nsd", "hd95"):
                    row[f"{model}_{m}"] = _mean(r[m] for r in by_model.get(model, []))
            row["difference"] = row["universal_dice"] - row["specialist_dice"]
            row["difference_ci"] = paired_interval({c: {concept: v[concept]} for c, v in paired.items()
                                                    if concept in v})
            block.append(row)
        summary = {"dataset": dataset, "structure": "mean", "cases": max(r["cases"] for r in block)}
        for key in block[0]:
            if key not in summary and key != "difference_ci":
                summary[key] = _mean(r[key] for r in block)
        summary["difference_ci"] = paired_interval(paired)
        out += block + [summary]
    return out


IMPLAUSIBLE = 5.0  # a reference this many times above or below its structure's median volume is flagged
MIN_CASES = 5  # structures with fewer validation references are not checked


def implausible_references(rows: list[dict], factor: float = IMPLAUSIBLE) -> list[dict]:
    """Reference masks whose volume is more than ``factor`` times above or below the median of the
    same structure's references over the validation cases (a spinal cord mask of 500 ml where the
    median is 25 ml is another structure, or a planning margin, not a cord). Flagged references are
    still scored in every table; :func:`without` gives the means without them."""
    refs: dict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["model"] == "universal" and r["style"] == "label" and r.get("ref_ml") is not None:
            refs[(r["dataset"], r["concept"])][r["case"]] = r["ref_ml"]
    out = []
    for (dataset, concept), by_case in refs.items():
        if len(by_case) < MIN_CASES:
            continue
        med = median(by_case.values())
        out += [{"dataset": dataset, "structure": concept, "case": case, "reference_ml": ml, "median_ml": med,
                 "ratio": ml / med if med > 0 else float("inf")}
                for case, ml in sorted(by_case.items()) if med > 0 and not med / factor <= ml <= med * factor]
    return out


def without(rows: list[dict], flagged: list[dict]) -> list[dict]:
    """:func:`per_structure` over the rows whose reference is not flagged, for the structures with a
    flagged reference and the dataset means."""
    drop = {(f["dataset"], f["case"], f["structure"]) for f in flagged}
    hit = {(f["dataset"], f["structure"]) for f in flagged}
    kept = [r for r in rows if (r["dataset"], r["case"], r["concept"]) not in drop]
    return [r for r in per_structure(kept) if (r["dataset"], r["structure"]) in hit
            or (r["structure"] == "mean" and r["dataset"] in {d for d, _ in hit})]


def robustness(rows: list[dict]) -> list[dict]:
    """Per dataset and prompt style: mean Dice of the universal model, its loss against the
    canonical names on the same (case, structure) pairs, and how often the prompt resolved to
    the intended concept. Plain masks throughout (a label row's ``raw`` metrics where post-processing
    was chosen for it), so every style is compared before post-processing."""
    def plain(r: dict) -> float:
        return (r.get("raw") or r)["dice"]

    canonical = {(r["dataset"], r["case"], r["concept"]): plain(r)
                 for r in rows if r["model"] == "universal" and r["style"] == "label"}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["model"] == "universal":
            groups[(r["dataset"], "canonical" if r["style"] == "label" else r["style"])].append(r)
    out = []
    for (dataset, style), rs in groups.items():
        out.append({"dataset": dataset, "style": style, "prompts": len({r["prompt"] for r in rs}), "pairs": len(rs),
                    "mean_dice": _mean(plain(r) for r in rs),
                    "loss_vs_canonical": _mean(canonical[(r["dataset"], r["case"], r["concept"])] - plain(r)
                                               for r in rs),
                    # the mask is the intended structure's: resolved to it, or to a group whose one trained
                    # member it is ("lower jaw bone": UBERON's class of lower-jaw bones, answered by the mandible)
                    "resolved_correctly": _mean(float(r.get("answered", [r["resolved"]]) == [r["concept"]])
                                                for r in rs)})
    return sorted(out, key=lambda r: (r["dataset"], ["canonical", "synonym", "paraphrase"].index(r["style"])
                                      if r["style"] in ("canonical", "synonym", "paraphrase") else 9))


def laterality(rows: list[dict], max_dice: float) -> list[dict]:
    """Per lateral structure: cases, the worst Dice against the mirror's reference, swapped cases
    (more overlap with the mirror's reference than with its own) and whether the check passes."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["concept"], r["against"])].append(r)
    return [{"dataset": d, "structure": c, "against": a, "cases": len(rs),
             "mean_dice_own": _mean(r["dice_own"] for r in rs),
             "max_dice_mirror": max(r["dice_mirror"] for r in rs),
             "swapped": sum(r["dice_mirror"] > r["dice_own"] for r in rs),
             "passes": all(r["dice_mirror"] <= max_dice for r in rs)}
            for (d, c, a), rs in groups.items()]


def case_means(rows: list[dict], dataset: str, model: str = "universal") -> dict[str, float]:
    """Mean Dice per case of one dataset (the canonical prompts)."""
    by_case: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r["dataset"] == dataset and r["model"] == model and r["style"] == "label":
            by_case[r["case"]].append(r["dice"])
    return {c: mean(v) for c, v in by_case.items()}


def median_case(rows: list[dict], dataset: str) -> str | None:
    """The case whose mean Dice (universal) is the median of the dataset's cases."""
    means = sorted(case_means(rows, dataset).items(), key=lambda kv: kv[1])
    return means[len(means) // 2][0] if means else None
