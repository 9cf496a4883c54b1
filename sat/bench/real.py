"""``sat benchmark real``: one universal text-prompted model against per-dataset specialists on
real multi-patient data, scored on the validation patients in their original files.

1. Shards of every dataset's ``train`` and ``val`` splits through its recipe.
2. The universal model: ``sat fit`` on the profile's experiment, all datasets at once, within the
   profile's budget; its self-contained checkpoint is what ``sat segment`` and ``Segmenter`` use.
3. One DynUNet specialist per dataset, sharing the same total budget by dataset weight.
4. Dice, NSD and HD95 per structure on the validation patients (original files), prompt
   robustness (canonical names, the tree's synonyms, paraphrases) and a laterality check.

:func:`run_real` returns every per-case row with the timings; :mod:`.real_report` writes them up.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from sat.bench.config import resolve_path
from sat.bench.real_profile import RealProfile
from sat.errors import InputError
from sat.train.experiment import ExperimentConfig, fit, trained_steps

log = logging.getLogger(__name__)


def build_real_shards(profile: RealProfile, shards: Path) -> dict[str, dict]:
    """Shards of each dataset's train and val splits (a finished part is reused); build records."""
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards

    records = {}
    for name, ds in profile.datasets.items():
        recipe = load_recipe(ds.recipe)
        for split in ("train", "val"):
            opts = BuildOptions(split=split, workers=profile.shard_workers, max_cases=profile.max_cases)
            part = build_shards(recipe, resolve_path(ds.root), shards / name, opts, progress=False)
            records[f"{name}/{split}"] = {"cases": len(part["cases"]), "failures": part["failures"]}
    return records


def grids(profile: RealProfile) -> tuple[list[float], dict[str, list[float]]]:
    """The universal model's default spacing and its per-modality spacings, from the recipes."""
    from sat.data.recipes import load_recipe

    per: dict[str, list[float]] = {}
    for ds in profile.datasets.values():
        recipe = load_recipe(ds.recipe)
        sp = [float(v) for v in recipe.spacing]
        if per.setdefault(recipe.modality.upper(), sp) != sp:
            raise ValueError(f"two {recipe.modality} datasets with different spacings ({per[recipe.modality.upper()]} "
                             f"and {sp}); one model grid per modality")
    first = next(iter(per.values()))
    return first, per


def experiment(profile: RealProfile, shards: Path, out: Path) -> ExperimentConfig:
    """The universal run: the profile's base config, datasets, budget and overrides; run folder
    ``out/run``, checkpoint ``out/model.ckpt``."""
    from sat.data.recipes import load_recipe

    spacing, per = grids(profile)
    train = {n: str(shards / n / f"{load_recipe(d.recipe).name}-train-*.tar") for n, d in profile.datasets.items()}
    budget = ({"trainer.max_steps": -1} if profile.minutes > 0 else
              {"trainer.max_time": None, "trainer.max_steps": profile.steps, "model.optim.schedule": "steps"})
    o = {"data.train": train, "data.weights": {n: d.weight for n, d in profile.datasets.items()},
         "data.dataset_sampling": {n: {"patch_size": list(d.patch_size)} for n, d in profile.datasets.items()},
         "data.batch_size": profile.batch_size, "data.num_workers": profile.loader_workers,
         "data.seed": profile.seed, "seed_everything": profile.seed, "model.spacing": spacing,
         "model.modality_spacing": per, "trainer.enable_progress_bar": False,
         **budget, **profile.fit_overrides}
    return ExperimentConfig(configs=(resolve_path(profile.base_config),), export=out / "model.ckpt",
                            root=out / "run", max_minutes=profile.minutes if profile.minutes > 0 else None,
                            overrides=o)


def train_universal(profile: RealProfile, shards: Path, out: Path) -> dict:
    """Train the universal model with :func:`sat.train.fit`; returns its checkpoint, steps and wall time."""
    t0 = time.perf_counter()
    ckpt = fit(experiment(profile, shards, out))
    return {"checkpoint": str(ckpt), "steps": trained_steps(ckpt), "train_s": time.perf_counter() - t0}


def specialist_sampling(base: dict, overrides: dict) -> dict:
    """The universal run's sampling fields for the specialists: the base config's
    ``data.sampling``, then any ``data.sampling.<field>`` of the profile's ``fit_overrides``
    (a run with ``data.sampling.soft_targets: true`` trains both families on soft targets)."""
    prefix = "data.sampling."
    sampling = dict(base.get("data", {}).get("sampling") or {})
    sampling.update({k[len(prefix):]: v for k, v in overrides.items() if k.startswith(prefix)})
    return sampling


def train_specialists(profile: RealProfile, shards: Path, base: dict, universal_s: float) -> dict:
    """One specialist per dataset; together they get the universal model's budget."""
    from sat.data.manifest import rule_record
    from sat.data.recipes import load_recipe
    from sat.bench.real_specialist import train_specialist
    from sat.losses.partial_label import LossConfig

    model = base.get("model", {})
    loss = LossConfig(**(model.get("loss") or {}))
    wd = float((model.get("optim") or {}).get("weight_decay", 1e-4))
    sampling = specialist_sampling(base, profile.fit_overrides)
    out = {}
    for name, ds in profile.datasets.items():
        recipe = load_recipe(ds.recipe)
        share = profile.share(name)
        seconds = universal_s * share if profile.minutes > 0 else 0.0
        steps = max(1, int(round(profile.steps * share)))
        log.info("training specialist %s (%s)", name, f"{seconds:.0f} s" if seconds else f"{steps} steps")
        out[name] = train_specialist(name, str(shards / name / f"{recipe.name}-train-*.tar"), list(recipe.concepts),
                                     spacing=recipe.spacing, patch=ds.patch_size, filters=profile.specialist_filters,
                                     sampling=sampling, loss=loss, batch_size=profile.batch_size, lr=profile.lr,
                                     weight_decay=wd, seconds=seconds, steps=steps, seed=profile.seed,
                                     loader_workers=profile.loader_workers,
                                     intensity={recipe.modality.upper(): rule_record(recipe)} if recipe.intensity else None)
    return out


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_average_1min": round(os.getloadavg()[0], 2), "cuda": torch.cuda.is_available()}


def trained_checkpoint(path: Path) -> dict:
    """An already trained universal checkpoint, described like :func:`train_universal`'s result."""
    from sat.model.checkpoint import load_checkpoint

    _, meta = load_checkpoint(path)
    return {"checkpoint": str(path), "steps": meta.extra.get("steps"), "train_s": None,
            "given": True}


def write_trained(work: Path, record: dict) -> Path:
    """``work/trained.json``: what training left (shards, timings, checkpoint) for a later rescore."""
    path = work / "trained.json"
    path.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    return path


def read_trained(work: Path) -> dict:
    """The record :func:`write_trained` left; ``InputError`` when ``work`` holds no finished run."""
    path = work / "trained.json"
    if not path.is_file():
        raise InputError(f"nothing to rescore: {path} not found (run sat benchmark real without --rescore first)")
    record = json.loads(path.read_text(encoding="utf-8"))
    if not Path(record["universal"]["checkpoint"]).is_file():
        raise InputError(f"nothing to rescore: checkpoint {record['universal']['checkpoint']} not found")
    return record


def run_real(profile: RealProfile, work: Path, checkpoint: Path | None = None, specialists: bool = True,
             rescore: bool = False) -> dict:
    """Run the benchmark; returns the profile, timings, machine facts and every per-case row.

    Args:
        checkpoint: score this universal checkpoint instead of training one (no shards are built
            unless specialists are trained).
        specialists: train and score the per-dataset specialists (their budget is the universal
            run's wall time, or the profile's ``minutes`` when a checkpoint is given).
        rescore: score the models a finished run left in ``work`` again (``trained.json``,
            ``universal/model.ckpt``, ``specialists.pt``) without training, for example with another
            evaluation setting of the profile; the report keeps that run's training times, and its
            total is that run's time before evaluation plus this evaluation.
    """
    from sat.model.checkpoint import load_checkpoint, update_extra
    from sat.bench.real_specialist import load_specialists, save_specialists

    threads = torch.get_num_threads()
    torch.set_num_threads(profile.threads)
    try:
        t_start = time.perf_counter()
        machine = _machine()
        work.mkdir(parents=True, exist_ok=True)
        if rescore:
            record = read_trained(work)
            built, data_s, universal = record["shards"], record["data_s"], record["universal"]
            trained = load_specialists(work / "specialists.pt") if specialists and record["specialists"] else {}
            before_eval_s = record["before_eval_s"] + (time.perf_counter() - t_start)
        else:
            shards = work / "shards"
            built = build_real_shards(profile, shards) if checkpoint is None or specialists else {}
            data_s = time.perf_counter() - t_start
            base = yaml.safe_load(resolve_path(profile.base_config).read_text(encoding="utf-8")) or {}
            universal = (train_universal(profile, shards, work / "universal") if checkpoint is None
                         else trained_checkpoint(Path(checkpoint)))
            budget_s = universal["train_s"] if universal["train_s"] is not None else 60.0 * profile.minutes
            trained = train_specialists(profile, shards, base, budget_s) if specialists else {}
            if trained:  # kept so the evaluation can be rerun without training again (rescore)
                save_specialists(trained, profile.specialist_filters, work / "specialists.pt")
            before_eval_s = time.perf_counter() - t_start
            write_trained(work, {"shards": built, "data_s": data_s, "universal": universal,
                                 "specialists": sorted(trained), "before_eval_s": before_eval_s})
        from sat.bench.real_eval import evaluate_all  # the scoring stack (Segmenter, metrics) loads only now
        from sat.bench.real_postprocess import advice, key

        t0 = time.perf_counter()
        rows, extras = evaluate_all(profile, Path(universal["checkpoint"]), trained, work)
        eval_s = time.perf_counter() - t0
        chosen = extras.pop("chosen")  # on the validation patients; deployed from now on
        _, meta = load_checkpoint(universal["checkpoint"])
        inference = {**(meta.extra.get("inference") or {}), **advice(chosen.get("universal", {})),
                     "overlap": profile.overlap,
                     "chosen_on": "validation patients of sat benchmark real"}
        ckpt = resolve_path(profile.checkpoint)
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        if ckpt.resolve() != Path(universal["checkpoint"]).resolve():
            shutil.copyfile(universal["checkpoint"], ckpt)
        update_extra(ckpt, inference=inference)
        machine["load_average_1min_end"] = round(os.getloadavg()[0], 2)
        return {"profile": asdict(profile), "machine": machine, "shards": built, "data_s": data_s,
                "universal": universal, "checkpoint": str(profile.checkpoint),
                "specialists": {n: {"steps": s.steps, "train_s": s.train_s, "concepts": s.concepts,
                                    "filters": list(profile.specialist_filters)} for n, s in trained.items()},
                "postprocessing": {"tta": inference.get("tta", False),
                                   "chosen": {m: {c: key(v) for c, v in cs.items()} for m, cs in chosen.items()}},
                "rows": rows, **extras, "eval_s": eval_s, "rescored": rescore,
                "total_s": before_eval_s + (time.perf_counter() - t0)}
    finally:
        torch.set_num_threads(threads)
