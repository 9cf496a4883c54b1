"""``sat evaluate``: score a folder of predictions against ground truth, matching by concept.

    sat evaluate --pred PRED --gt GT [--recipe R] [--split test] [--out DIR]
                 [--tolerance-mm T] [--empty one|exclude] [--concepts liver,spleen]

Ground-truth layouts (``--gt``):

* a dataset folder in a recipe layout (msd, nnunet, totalseg, generic) with ``--recipe NAME|PATH``;
  the recipe maps source labels to concepts (the images must be present too: ``load_case`` reads
  them). Without ``--recipe``, a folder named after a recipe in ``data_shards/recipes`` uses it,
  and a folder holding such dataset folders (e.g. the phantom root with ``phantom_msd/``,
  ``phantom_nnunet/``, ``phantom_totalseg/``) evaluates all of them;
* otherwise one folder per case holding one mask per structure, ``GT/<case>/<name>.nii.gz`` (or
  ``GT/<case>/segmentations/<name>.nii.gz``), each ``<name>`` a concept id, name or synonym.

Prediction layouts (``--pred``), per case ``PRED/<dataset>/<case>/`` or ``PRED/<case>/``:

* the output of ``sat segment``: ``<prompt-stem>.nii.gz`` masks plus ``result.json``, whose
  ``structures`` map each prompt to its concept and mask file;
* without ``result.json``: ``<name>.nii.gz`` per structure (``segmentations/`` also accepted),
  the name a concept id, name or synonym (``*_prob`` and ``multilabel`` files are skipped).

Every ground-truth structure of every case is scored (``--concepts`` restricts the set up front).
A structure with no prediction is a failure scored Dice 0, NSD 0, HD95 = image diagonal, whatever
the empty policy; a prediction that cannot be read or lies on another grid is a failure too and
is listed as an error. A ground-truth case that cannot be read is reported and left out while the
others complete. Exit code 0, or 1 when any error was reported; bad arguments exit 2.

Outputs in ``--out`` (default ``PRED/evaluation``): ``per_case.csv``, ``by_structure.csv``,
``by_region.csv``, ``by_modality.csv``, ``by_dataset.csv``, ``summary.md``, ``summary.json``
and ``plots/box_<region>.png``. Empty-mask conventions are those of :mod:`sat.eval.metrics`.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sat.errors import InputError
from sat.eval.case_files import GTCase, PredCase, find_gt_cases, find_prediction, load_gt, load_pred_mask
from sat.eval.metrics import DEFAULT_TOLERANCE_MM, EmptyPolicy, evaluate_case
from sat.eval.summary import render_markdown, summarize, write_summary_json, write_tables
from sat.knowledge.tree import KnowledgeTree, load_tree


@dataclass
class EvalConfig:
    """Options of one evaluation run."""

    tolerance_mm: float = DEFAULT_TOLERANCE_MM  # NSD tolerance in mm
    empty: str = "one"  # empty-mask policy: "one" or "exclude" (see sat.eval.metrics)
    recipe: str | None = None  # recipe name or YAML path for the ground-truth layout
    split: str | None = None  # only cases of this split of the recipe's split file
    modality: str | None = None  # modality label for per-structure ground truth (else "unknown")
    concepts: tuple[str, ...] = ()  # restrict to these concepts (ids, names or synonyms); () = all
    plots: bool = True  # write box plots


@dataclass
class EvalRun:
    """Everything an evaluation produced."""

    rows: list[dict[str, Any]]  # one per (case, structure), columns of summary.ROW_COLUMNS
    summary: dict[str, Any]
    errors: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)


def _concept_filter(names: tuple[str, ...], tree: KnowledgeTree) -> set[str] | None:
    if not names:
        return None
    unknown = [n for n in names if tree.lookup(n) is None]
    if unknown:
        raise InputError(f"--concepts: {unknown} name no known concept")
    return {tree.lookup(n).id for n in names}


def _unmatched(pred_root: Path, cases: list[GTCase], out: str | Path | None) -> list[str]:
    """A note naming prediction folders that match no ground-truth case (they are not scored)."""
    known = {c.case_id for c in cases} | {c.dataset for c in cases} | {"evaluation"}
    skip = Path(out).resolve() if out is not None else None
    extra = sorted(d.name for d in pred_root.iterdir() if d.is_dir() and not d.name.startswith(".")
                   and d.name not in known and d.resolve() != skip)
    return [f"prediction folders with no ground-truth case (not scored): {', '.join(extra)}"] if extra else []


def _score(gt_mask: np.ndarray, pred_mask: np.ndarray | None, spacing: np.ndarray, cfg: EvalConfig) -> dict:
    """Metrics of one structure; a missing prediction (``None``) is a failure under any policy."""
    res = evaluate_case({} if pred_mask is None else {"s": pred_mask}, {"s": gt_mask}, spacing,
                        cfg.tolerance_mm, cfg.empty)["s"]
    if pred_mask is None:
        res.update(dice=0.0, nsd=0.0, hd95=float(np.linalg.norm(np.asarray(gt_mask.shape) * spacing)))
    return res


def _case_rows(case: GTCase, pc: PredCase, tree: KnowledgeTree, wanted: set[str] | None,
               cfg: EvalConfig) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Rows and prediction errors of one case; raises InputError when its ground truth is unreadable."""
    masks, affine = load_gt(case)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)  # (3,) mm along the array axes
    rows, errors = [], []
    for cid, g in masks.items():  # g: (X, Y, Z) bool
        if wanted is not None and cid not in wanted:
            continue
        path, status, p = pc.files.get(cid), "missing", None
        if path is not None and path.is_file():  # listed in result.json but absent on disk = missing
            try:
                p, status = load_pred_mask(path, g.shape, affine), "ok"
            except InputError as exc:
                status = "error"
                errors.append({"dataset": case.dataset, "case": case.case_id, "concept": cid,
                               "error": f"pred {case.dataset}/{case.case_id}: {exc}"})
        concept = tree.concepts.get(cid)
        rows.append({"dataset": case.dataset, "case": case.case_id, "modality": case.modality, "concept": cid,
                     "name": concept.name if concept else cid, "region": concept.region if concept else "unknown",
                     "status": status, **_score(g, p, spacing, cfg)})
    return rows, errors


def evaluate_folders(pred: str | Path, gt: str | Path, out: str | Path | None = None,
                     config: EvalConfig | None = None, *, write: bool = True) -> EvalRun:
    """Score every ground-truth structure of every case and write the report files.

    Args:
        pred: predictions folder (layouts in the module docstring).
        gt: ground-truth folder (layouts in the module docstring).
        out: output folder; ``None`` = ``pred/evaluation``.
        config: options (defaults: 1 mm tolerance, empty policy ``one``).
        write: write the report files (``False``: only return the results).

    Returns:
        The rows, the summary dict (``summary.json`` content), errors, notes and written paths.

    Raises:
        InputError: missing folders, unknown recipe or concepts, no ground-truth case, or no
            prediction folder matching any ground-truth case.
    """
    cfg = config or EvalConfig()
    try:
        cfg = replace(cfg, empty=EmptyPolicy(cfg.empty).value, concepts=tuple(cfg.concepts))
    except ValueError:
        raise InputError(f"--empty {cfg.empty!r}: expected one of {[e.value for e in EmptyPolicy]}") from None
    if not (np.isfinite(cfg.tolerance_mm) and cfg.tolerance_mm >= 0):
        raise InputError(f"--tolerance-mm {cfg.tolerance_mm}: expected a finite distance >= 0 in mm")
    pred_root = Path(pred)
    if not pred_root.is_dir():
        raise InputError(f"--pred {pred_root}: predictions folder not found")
    tree = load_tree()
    wanted = _concept_filter(cfg.concepts, tree)
    cases, notes = find_gt_cases(gt, tree, cfg.recipe, split=cfg.split, modality=cfg.modality)
    preds = {(c.dataset, c.case_id): find_prediction(pred_root, c, tree) for c in cases}
    if not any(p.folder is not None for p in preds.values()):
        raise InputError(f"--pred {pred_root}: no prediction folder matches any of the {len(cases)} ground-truth "
                         f"cases (expected PRED/<case>/ or PRED/<dataset>/<case>/, e.g. {cases[0].case_id})")
    notes += _unmatched(pred_root, cases, out)
    rows, errors = [], []
    for case in cases:
        pc = preds[(case.dataset, case.case_id)]
        notes += pc.notes
        try:
            case_rows, case_errors = _case_rows(case, pc, tree, wanted, cfg)
        except InputError as exc:  # unreadable ground truth: reported, the other cases go on
            errors.append({"dataset": case.dataset, "case": case.case_id, "concept": "", "error": str(exc)})
            continue
        rows += case_rows
        errors += case_errors
    if not rows:
        raise InputError(f"--gt {gt}: no structure could be scored ({len(errors)} unreadable cases, "
                         f"first: {errors[0]['error'] if errors else 'none'})")
    counts = {"cases": len({(r["dataset"], r["case"]) for r in rows}), "pairs": len(rows),
              "missing_predictions": sum(r["status"] == "missing" for r in rows),
              "bad_predictions": sum(r["status"] == "error" for r in rows),
              "unreadable_gt_cases": sum(not e["concept"] for e in errors)}
    settings = {"gt": str(gt), "pred": str(pred_root), **{k: v for k, v in asdict(cfg).items() if k != "plots"}}
    summary = summarize(rows, counts=counts, settings=settings, errors=errors)
    run = EvalRun(rows, summary, errors, notes)
    if write:
        _write(run, Path(out) if out is not None else pred_root / "evaluation", cfg.plots)
    return run


def _write(run: EvalRun, out: Path, plots: bool) -> None:
    from sat.io.writers import check_writable_dir

    out = check_writable_dir(out)
    run.paths = write_tables(run.rows, run.summary, out)
    pngs = []
    if plots:
        from sat.eval.plots import region_box_plots

        pngs = region_box_plots(run.rows, out / "plots")
    run.paths["summary_json"] = write_summary_json(run.summary, out / "summary.json")
    run.paths["summary_md"] = out / "summary.md"
    run.paths["summary_md"].write_text(render_markdown(run.rows, run.summary, notes=run.notes, plots=pngs, out=out))
    run.paths.update({p.stem: p for p in pngs})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sat evaluate", description="Score predictions against ground truth by concept.")
    p.add_argument("--pred", required=True, help="predictions folder (PRED/<case>/...)")
    p.add_argument("--gt", required=True, help="ground-truth folder (recipe layout or GT/<case>/<name>.nii.gz)")
    p.add_argument("--recipe", help="recipe name or YAML path describing the ground-truth layout")
    p.add_argument("--split", help="evaluate only this split of the recipe (e.g. test)")
    p.add_argument("--out", help="output folder (default PRED/evaluation)")
    p.add_argument("--tolerance-mm", type=float, default=DEFAULT_TOLERANCE_MM, help="NSD tolerance in mm")
    p.add_argument("--empty", choices=[e.value for e in EmptyPolicy], default="one",
                   help="empty ground truth: 'one' (both empty scores 1) or 'exclude' (left out)")
    p.add_argument("--modality", help="modality label for per-structure ground truth")
    p.add_argument("--concepts", default="", help="comma list restricting the structures scored")
    p.add_argument("--no-plots", action="store_true", help="skip the box plots")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) and 2
    cfg = EvalConfig(tolerance_mm=args.tolerance_mm, empty=args.empty, recipe=args.recipe, split=args.split,
                     modality=args.modality, plots=not args.no_plots,
                     concepts=tuple(c.strip() for c in args.concepts.split(",") if c.strip()))
    run = evaluate_folders(args.pred, args.gt, args.out, cfg)
    for e in run.errors:
        print(f"sat evaluate: error: {e['error']}", file=sys.stderr)
    c, m = run.summary["counts"], run.summary["mean"]
    print(f"{c['cases']} cases, {c['pairs']} structures scored, {c['missing_predictions']} missing and "
          f"{c['bad_predictions']} bad predictions (scored as failures), {c['unreadable_gt_cases']} unreadable cases")
    print(f"mean Dice {m['dice']:.4f}  NSD@{cfg.tolerance_mm:g}mm {m['nsd']:.4f}  HD95 {m['hd95']:.2f} mm")
    print(f"report: {run.paths['summary_md']}")
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
