"""Write ``sat benchmark real``: ``real_benchmark.md``, a box plot per structure, an overlay of a
median validation patient and a JSON of every row.

Layout under the results folder::

    real_benchmark.md            tables, run facts, figures linked
    real_benchmark/rows.json     profile, timings, summary tables and every per-case row
    real_benchmark/box_<dataset>.png, real_benchmark/overlay_<dataset>.png
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from sat.bench.real_tables import (IMPLAUSIBLE, implausible_references, laterality, median_case, per_structure,
                                   robustness, without)
from sat.eval.plots import finish_dice_figure
from sat.eval.report import bullet_list, markdown_table, section
from sat.infer.postprocess import MAJOR_FRACTION

FOLDER = "real_benchmark"
HEADERS = {"universal_dice": "universal Dice", "specialist_dice": "specialist Dice", "difference": "difference",
           "difference_ci": "difference, 95 % CI",
           "universal_nsd": "universal NSD", "specialist_nsd": "specialist NSD",
           "universal_hd95": "universal HD95 mm", "specialist_hd95": "specialist HD95 mm",
           "mean_dice": "mean Dice", "loss_vs_canonical": "loss vs canonical",
           "resolved_correctly": "answers the intended structure", "mean_dice_own": "Dice vs own reference",
           "max_dice_mirror": "max Dice vs mirror reference", "swapped": "swapped cases",
           "reference_ml": "reference ml", "median_ml": "median ml", "ratio": "ratio"}


def _ci_cells(rows: list[dict]) -> list[dict]:
    """The rows with each ``difference_ci`` (low, high) written as one cell, ``[-0.020, -0.004]``."""
    def cell(ci) -> str:
        lo, hi = ci
        return "-" if math.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"

    return [{**r, "difference_ci": cell(r["difference_ci"])} if "difference_ci" in r else r for r in rows]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def box_plot(rows: list[dict], dataset: str, path: Path) -> Path:
    """Per-case Dice per structure, universal and specialist side by side."""
    plt = _plt()
    concepts = list(dict.fromkeys(r["concept"] for r in rows if r["dataset"] == dataset and r["style"] == "label"))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(concepts) + 1.5), 4.0))
    for i, (model, color) in enumerate((("universal", "tab:blue"), ("specialist", "tab:orange"))):
        data = [[r["dice"] for r in rows if r["dataset"] == dataset and r["concept"] == c and r["model"] == model
                 and r["style"] == "label"] for c in concepts]
        pos = [k + (i - 0.5) * 0.35 for k in range(len(concepts))]
        if any(data):
            bp = ax.boxplot([d or [math.nan] for d in data], positions=pos, widths=0.3, patch_artist=True,
                            showmeans=True)
            for b in bp["boxes"]:
                b.set_facecolor(color)
            ax.plot([], [], color=color, label=model, linewidth=6)
    ax.set_xticks(range(len(concepts)), concepts, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(-0.03, 1.03)
    return finish_dice_figure(fig, ax, path, f"{dataset}: Dice per structure (triangle = mean)",
                              "Dice per validation case")


def overlay(checkpoint: Path, recipe_name: str, root: Path, case_id: str, path: Path) -> Path:
    """An axial slice of one validation case in RAS, reference contours (solid) against the
    universal model's masks (dashed), shown radiologically (patient right on the left)."""
    import nibabel as nib

    from sat.bench.real_cases import validation_cases
    from sat.infer.segmenter import Segmenter

    case = next(c for c in validation_cases(recipe_name, root) if c.case_id == case_id)
    seg = Segmenter.from_checkpoint(checkpoint, device="cpu")
    result = seg.segment(case.volume, [seg.tree.get(c).name for c in case.concepts], modality=case.modality)
    pred = {s.concept: s.mask for s in result.structures}
    ornt = nib.orientations.io_orientation(case.volume.affine)  # array axes -> RAS
    to_ras = lambda a: nib.orientations.apply_orientation(a, ornt)  # noqa: E731
    image = to_ras(case.volume.array)
    refs = [to_ras(m) for m in case.masks]
    z = int(np.argmax(sum(r.sum(axis=(0, 1)) for r in refs)))  # the slice with most reference voxels
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 6))
    lo, hi = (-200, 300) if case.modality == "CT" else np.percentile(image, [1, 99])
    ax.imshow(image[:, :, z].T, cmap="gray", origin="lower", vmin=lo, vmax=hi)
    colors = plt.get_cmap("tab10")
    for k, cid in enumerate(case.concepts):
        ref = refs[k][:, :, z].T
        if ref.any():
            ax.contour(ref, levels=[0.5], colors=[colors(k)], linewidths=1.5)
        if cid in pred and to_ras(pred[cid])[:, :, z].any():
            ax.contour(to_ras(pred[cid])[:, :, z].T, levels=[0.5], colors=[colors(k)], linewidths=1.2,
                       linestyles="dashed")
        ax.plot([], [], color=colors(k), label=cid)
    union = sum(r.any(axis=2) for r in refs)  # (X, Y): zoom to the structures with a margin
    xs, ys = np.nonzero(union)
    if xs.size:
        pad = max(8, int(0.4 * max(np.ptp(xs), np.ptp(ys))))
        ax.set_xlim(max(xs.min() - pad, 0), min(xs.max() + pad, image.shape[0] - 1))
        ax.set_ylim(max(ys.min() - pad, 0), min(ys.max() + pad, image.shape[1] - 1))
    ax.invert_xaxis()  # RAS x grows towards the patient's right: show it on the viewer's left
    ax.text(0.02, 0.5, "R", transform=ax.transAxes, color="yellow", fontsize=12)
    ax.text(0.95, 0.5, "L", transform=ax.transAxes, color="yellow", fontsize=12)
    ax.set_title(f"{recipe_name} {case_id}, axial slice {z}: reference solid, universal model dashed", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_real_report(result: dict, out: Path, command: str) -> Path:
    """Write the Markdown report, figures and ``rows.json``; returns the Markdown path."""
    from sat.data.recipes import load_recipe
    from sat.bench.config import resolve_path

    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rows, prof = result["rows"], result["profile"]
    tables = {"per_structure": per_structure(rows), "robustness": robustness(rows),
              "laterality": laterality(result["laterality"], prof["laterality_max_dice"]),
              "implausible_references": implausible_references(rows)}
    tables["without_implausible"] = without(rows, tables["implausible_references"])
    figures = []
    for name, ds in prof["datasets"].items():
        dataset = load_recipe(ds["recipe"]).name  # rows name the dataset as its recipe does
        figures.append(box_plot(rows, dataset, folder / f"box_{name}.png"))
        case = median_case(rows, dataset)
        if case is not None:
            figures.append(overlay(resolve_path(result["universal"]["checkpoint"]), ds["recipe"],
                                   resolve_path(ds["root"]), case, folder / f"overlay_{name}.png"))
    (folder / "rows.json").write_text(json.dumps({**result, "tables": tables}, indent=1, default=str), encoding="utf-8")
    specs, post = result["specialists"], result.get("postprocessing")
    facts = bullet_list([
        f"command: `{command}` (profile `{prof['name']}`, seed {prof['seed']})",
        (f"universal model: {result['universal']['steps']} steps in {result['universal']['train_s']:.0f} s; "
         if result["universal"].get("train_s") is not None else
         f"universal model: the given checkpoint, trained for {result['universal']['steps']} steps; ")
        + f"checkpoint `{result['checkpoint']}`",
        *([] if specs else ["specialists: not run (`--no-specialists`)"]),
        *(f"specialist {n}: {s['steps']} steps in {s['train_s']:.0f} s (DynUNet {s['filters']})"
          for n, s in specs.items()),
        *([f"test-time mirroring (lateral queries swapped): {'on' if post.get('tta') else 'off'} for both families; "
           "post-processing chosen per structure on the validation patients (nnU-Net's rule, extended to the "
           f"foreground threshold, to major components, those of at least {MAJOR_FRACTION:.0%} of the largest's size, "
           "and, for structures without a side, to dropping first the pieces that stay away from the body's midline "
           "(`+midline`); "
           "plain = 0.5 with every component), written into the universal checkpoint: "
           + "; ".join(f"{m}: " + (", ".join(f"{c} {v}" for c, v in sorted(cs.items()) if v != "0.5") or "all plain")
                       for m, cs in sorted(post.get("chosen", {}).items()))
           + " (plain-mask Dice: `raw` in rows.json)"] if post else []),
        f"sliding-window overlap {prof.get('overlap', 0.25)} for both families (recommended by the universal checkpoint)",
        f"wall time: data {result['data_s']:.0f} s, evaluation {result['eval_s']:.0f} s, total {result['total_s']:.0f} s"
        + (" (rescored with `--rescore`: the trained models of the run in the work folder, scored again; "
           "the total is that run's time before evaluation plus this evaluation)" if result.get("rescored") else ""),
        f"machine: {result['machine']}",
        "validation patients only (OpenKBP validation-pats; a fixed 20 % hash hold-out of MSD Task04); "
        "scored on each case's original file grid; uncontoured organs are not scored",
    ])
    md = "\n".join([
        "# Real patients: universal text-prompted model vs per-dataset specialists\n",
        section("Run", facts),
        section("Per structure (validation patients)",
                "The interval is a paired bootstrap over the validation cases (universal minus specialist "
                "on the same case and structure); one that holds the target's -0.01 does not tell the two "
                "sides of it apart.",
                markdown_table(_ci_cells(tables["per_structure"]), headers=HEADERS,
                               columns=["dataset", "structure", "cases", "universal_dice", "specialist_dice",
                                        "difference", "difference_ci", "universal_nsd", "specialist_nsd", "universal_hd95",
                                        "specialist_hd95"])),
        section("Reference masks of implausible size",
                f"A reference mask more than {IMPLAUSIBLE:g} times above or below its structure's median volume over "
                "the validation cases is listed here; it stays in every other table. Means without them follow "
                "(the structures concerned and the dataset means).",
                markdown_table(tables["implausible_references"], headers=HEADERS) if tables["implausible_references"]
                else "None.",
                *([markdown_table(tables["without_implausible"], headers=HEADERS,
                                  columns=["dataset", "structure", "cases", "universal_dice", "specialist_dice",
                                           "difference"])] if tables["without_implausible"] else [])),
        section("Prompt robustness (universal model)",
                "Synonyms are the knowledge tree's; paraphrases are the profile's. The loss is the mean "
                "drop in Dice against the canonical name on the same case and structure.",
                markdown_table(tables["robustness"], headers=HEADERS)),
        section("Laterality",
                f"The mask asked for one side, scored against the other side's reference; the check passes "
                f"when that Dice is at most {prof['laterality_max_dice']} on every case.",
                markdown_table(tables["laterality"], headers=HEADERS)),
        section("Figures", "\n".join(f"![{p.stem}]({FOLDER}/{p.name})" for p in figures)),
    ])
    path = out / "real_benchmark.md"
    path.write_text(md, encoding="utf-8")
    return path
