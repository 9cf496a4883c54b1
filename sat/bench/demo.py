"""``sat demo`` (``make demo``): phantoms -> shards -> training -> text-prompted segmentation -> metrics.

Writes ``OUT/model.ckpt``, ``OUT/metrics.json``, ``OUT/predictions/*.nii.gz`` and ``OUT/preview.png``
and prints the results table. Every number comes from this run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from sat.resources import configs_dir
from sat.text.ensure import add_text_encoder_args, text_encoder
from sat.train.experiment import ExperimentConfig, fit

LESIONS = ("liver_tumor", "kidney_cyst")
RECIPES = ("phantom_msd", "phantom_nnunet", "phantom_totalseg")


def synonym_for(concept) -> str:
    """A synonym that differs from the canonical name (not a mere case/underscore variant)."""
    from sat.knowledge.normalize import normalize

    taken = {normalize(concept.name), normalize(concept.id), normalize(concept.id.replace("_", " "))}
    for s in concept.synonyms:
        if normalize(s) not in taken and normalize(" ".join(reversed(s.split("_")))) not in taken:
            return s
    return concept.synonyms[0] if concept.synonyms else concept.name


def build_data(out: Path, cases: int, seed: int, workers: int, spacing_scale: float = 1.0) -> tuple[Path, Path]:
    from sat.data.phantoms.generate import PhantomConfig, generate_phantoms
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards

    phantoms, shards = out / "data" / "phantoms", out / "data" / "shards"
    if not (phantoms / "splits.json").exists():
        generate_phantoms(phantoms, cases, seed, PhantomConfig(spacing_scale=spacing_scale))
    for name in RECIPES:
        part = build_shards(load_recipe(name), phantoms / name, shards,
                            BuildOptions(split="train", workers=workers), progress=False)
        if part["failures"]:
            raise RuntimeError(f"shard build failures in {name}: {part['failures']}")
    return phantoms, shards


def experiment(out: Path, shards: Path, config: Path, overrides: dict | None = None,
               cli_overrides: tuple[str, ...] = ()) -> ExperimentConfig:
    """The demo's training run: ``config`` on the phantom shards, run folder ``out/run``,
    checkpoint ``out/model.ckpt``; ``overrides`` (dotted keys) and then ``cli_overrides`` (as typed
    by the user) on top."""
    train_urls = {n: str(shards / f"{n}-train-*.tar") for n in RECIPES}
    return ExperimentConfig(configs=(config,), export=out / "model.ckpt", root=out / "run",
                            overrides={"data.train": train_urls, **(overrides or {})},
                            cli_overrides=tuple(cli_overrides))


def evaluate(out: Path, phantoms: Path, ckpt: Path) -> dict:
    """Segment every held-out case by canonical names and by synonyms; Dice and NSD per structure."""
    from sat.data.adapters import list_cases, load_case
    from sat.data.recipes import load_recipe
    from sat.eval.metrics import dice, nsd
    from sat.io.volume import load_volume
    from sat.io.writers import save_mask
    from sat.infer.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    seg.warn_domain = False  # phantoms are this model's own domain: no "only knows phantoms" note here
    pred_dir = out / "predictions"
    pred_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    preview_case = None
    for name in RECIPES:
        recipe = load_recipe(name)
        for ref in list_cases(recipe, phantoms / name, split="test"):
            case = load_case(ref, recipe)
            vol = load_volume(ref.images[0])
            concepts = [seg.tree.get(c) for c in case["concepts"]]
            for style, prompts in (("canonical", [c.name for c in concepts]),
                                   ("synonym", [synonym_for(c) for c in concepts])):
                res = seg.segment(vol, prompts, modality=recipe.modality)
                by_prompt = {s.prompt: s for s in res.structures}
                for c, prompt, gt in zip(concepts, prompts, case["masks"]):
                    s = by_prompt.get(prompt)
                    pred = s.mask if s is not None else np.zeros_like(gt)
                    rows.append({"dataset": name, "case": ref.case_id, "concept": c.id, "style": style,
                                 "prompt": prompt, "resolved": s.concept if s else None,
                                 "dice": dice(pred, gt), "nsd": nsd(pred, gt, vol.spacing, 2.0 * float(min(vol.spacing)))})
                    if style == "canonical":
                        save_mask(pred, vol.affine, pred_dir / f"{ref.case_id}_{c.id}.nii.gz")
                if style == "canonical" and preview_case is None and name == "phantom_totalseg":
                    preview_case = res
    if preview_case is not None:
        from sat.io.preview import render_preview

        v = preview_case.volume
        render_preview(v.array, v.affine, {s.name: s.mask for s in preview_case.structures},
                       out / "preview.png", title=f"{Path(str(v.source)).name}: text-prompted masks")
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    def mean(vals):
        return float(np.mean(vals)) if vals else float("nan")

    per = {}
    for style in ("canonical", "synonym"):
        for r in (r for r in rows if r["style"] == style):
            e = per.setdefault(r["concept"], {}).setdefault(style, {"dice": [], "nsd": []})
            e["dice"].append(r["dice"])
            e["nsd"].append(r["nsd"])
    per_structure = {c: {"dice": mean(v["canonical"]["dice"]), "nsd": mean(v["canonical"]["nsd"]),
                         "dice_synonym": mean(v["synonym"]["dice"]), "n": len(v["canonical"]["dice"])}
                     for c, v in sorted(per.items())}
    organs = [c for c in per_structure if c not in LESIONS]
    return {"mean_dice": mean([per_structure[c]["dice"] for c in organs]),
            "mean_dice_synonyms": mean([per_structure[c]["dice_synonym"] for c in organs]),
            "mean_nsd": mean([per_structure[c]["nsd"] for c in organs]),
            "lesion_mean_dice": mean([per_structure[c]["dice"] for c in per_structure if c in LESIONS]),
            "per_structure": per_structure, "rows": rows}


def print_table(m: dict, file=None) -> None:
    file = file or sys.stdout  # the stream of the time of the call, not of the import
    print(f"{'structure':24} {'n':>3} {'Dice':>6} {'NSD':>6} {'Dice(syn)':>9}", file=file)
    for c, v in m["per_structure"].items():
        print(f"{c:24} {v['n']:>3} {v['dice']:6.3f} {v['nsd']:6.3f} {v['dice_synonym']:9.3f}", file=file)
    print(f"mean organ Dice {m['mean_dice']:.3f} | synonyms {m['mean_dice_synonyms']:.3f} | "
          f"NSD {m['mean_nsd']:.3f} | lesions {m['lesion_mean_dice']:.3f} | "
          f"intensity baseline {m['intensity_baseline_mean_dice']:.3f}", file=file)
    t = m["timing_s"]
    print(f"wall time: data {t['data']:.0f}s, text encoder {t.get('text', 0):.0f}s, training {t['train']:.0f}s, "
          f"evaluation {t['evaluate']:.0f}s, total {t['total']:.0f}s ({m.get('text_encoder', 'raw MiniLM')})",
          file=file)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat demo", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("outputs/demo"))
    p.add_argument("--cases", type=int, default=60, help="phantom cases over the three sources")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--spacing-scale", type=float, default=1.0, help="coarser phantoms (tests use 3)")
    p.add_argument("--config", type=Path, default=configs_dir("experiment") / "phantom_demo.yaml")
    add_text_encoder_args(p)
    p.add_argument("overrides", nargs="*", help="extra LightningCLI overrides, e.g. --trainer.max_steps=50")
    args, extra = p.parse_known_args(argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    phantoms, shards = build_data(out, args.cases, args.seed, args.workers, args.spacing_scale)
    t_text = time.perf_counter()
    encoder = text_encoder(args.text_encoder, args.text_minutes)
    t1 = time.perf_counter()
    text = {"model.text.finetuned": encoder} if encoder else {}
    ckpt = fit(experiment(out, shards, args.config, text, (*args.overrides, *extra)))
    t2 = time.perf_counter()
    metrics = evaluate(out, phantoms, ckpt)
    from sat.bench.intensity_baseline import intensity_baseline

    base = intensity_baseline(phantoms)
    metrics["intensity_baseline_mean_dice"] = base["mean_dice"]
    metrics["intensity_baseline_per_structure"] = base["per_structure"]
    t3 = time.perf_counter()
    metrics["timing_s"] = {"data": t_text - t0, "text": t1 - t_text, "train": t2 - t1, "evaluate": t3 - t2, "total": t3 - t0}
    metrics["text_encoder"] = encoder or "raw MiniLM"
    rows = metrics.pop("rows")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out / "metrics_rows.json").write_text(json.dumps(rows, indent=1))
    print_table(metrics)
    return 0
