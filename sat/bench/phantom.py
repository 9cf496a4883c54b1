"""``sat benchmark phantom``: the four phantom studies at one fixed compute budget.

1. Universal text-prompted model vs one MONAI BasicUNet specialist per source, equal total steps.
2. Prompt robustness of the universal models (canonical, synonym, definition, paraphrase, modality).
3. Text-side ablation: one-hot, raw MiniLM and knowledge-pretrained concept tables.
4. The intensity-only baseline.

Everything is a pure function of the profile and the seed, up to floating-point scheduling.
:func:`run_phantom` returns every per-case row with its timings; :mod:`.phantom_tables` and
:mod:`.phantom_report` turn them into tables, plots and Markdown.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from sat.bench.config import PhantomProfile, resolve_path

log = logging.getLogger(__name__)


def recipe_spacing() -> tuple[float, ...]:
    """The grid of the phantom shards, shared by the three recipes (``ValueError`` if they differ)."""
    from sat.data.phantoms.layouts import SOURCES
    from sat.data.recipes import load_recipe

    grids = {tuple(load_recipe(s).spacing) for s in SOURCES}
    if len(grids) != 1:
        raise ValueError(f"the phantom recipes disagree on spacing: {sorted(grids)}")
    return grids.pop()


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_average_1min": round(os.getloadavg()[0], 2), "cuda": torch.cuda.is_available()}


def run_universal_models(profile: PhantomProfile, work: Path, phantoms: Path, shards: Path,
                         spacing: tuple[float, ...]) -> dict:
    """Train and evaluate one universal model per concept table; skipped tables say why."""
    from sat.bench.universal import evaluate_universal, knowledge_weights, train_universal

    models: dict[str, dict] = {}
    for table in profile.table_sources:
        finetuned, source, fit_s = None, {"onehot": "one-hot rows", "minilm": "raw MiniLM"}.get(table, ""), 0.0
        if table == "knowledge":
            finetuned, source, fit_s = knowledge_weights(profile, work)
            if finetuned is None:
                models[table] = {"skipped": source}
                log.warning("knowledge table skipped: %s", source)
                continue
        out = work / f"universal_{table}"
        log.info("training universal model (%s table, %d steps)", table, profile.steps)
        trained = train_universal(profile, table, shards, out, spacing, finetuned)
        t0 = time.perf_counter()
        rows = evaluate_universal(trained, phantoms, profile, out)
        models[table] = {"source": source, "checkpoint": str(trained.checkpoint), "steps": trained.steps,
                         "train_s": trained.train_s, "text_fit_s": fit_s, "eval_s": time.perf_counter() - t0,
                         "rows": rows}
    return models


def run_specialists(profile: PhantomProfile, phantoms: Path, shards: Path, spacing: tuple[float, ...],
                    base: dict) -> dict:
    """Train and evaluate the three per-source specialists (``steps / 3`` each)."""
    from sat.data.phantoms.layouts import SOURCES
    from sat.bench.specialist import evaluate_specialist, train_specialist

    out = {}
    for source in SOURCES:
        log.info("training specialist %s (%d steps)", source, profile.specialist_steps)
        net, plan, info = train_specialist(profile, source, shards, base, profile.seed)
        t0 = time.perf_counter()
        rows = evaluate_specialist(net, plan, phantoms, spacing, tuple(profile.patch_size))
        for r in rows:
            r.update(model="specialist", table=None)
        out[source] = {**info, "eval_s": time.perf_counter() - t0, "classes": plan.classes, "rows": rows}
    return out


def run_phantom(profile: PhantomProfile, work: Path) -> dict:
    """Run every study; returns the profile, timings, machine facts and every per-case row.

    Args:
        profile: the benchmark profile. work: folder for phantoms, shards and checkpoints.
    """
    threads = torch.get_num_threads()
    try:
        return _run_phantom(profile, work)
    finally:
        torch.set_num_threads(threads)  # the profile's thread count is for this run only


def _run_phantom(profile: PhantomProfile, work: Path) -> dict:
    import yaml

    from sat.bench.intensity_baseline import intensity_baseline
    from sat.bench.demo import build_data

    t_start = time.perf_counter()
    torch.set_num_threads(profile.threads)
    machine = _machine()
    work.mkdir(parents=True, exist_ok=True)
    phantoms, shards = build_data(work, profile.cases, profile.seed, profile.shard_workers, profile.spacing_scale)
    data_s = time.perf_counter() - t_start
    spacing = recipe_spacing()
    base = yaml.safe_load(resolve_path(profile.base_config).read_text()) or {}
    universal = run_universal_models(profile, work, phantoms, shards, spacing)
    specialists = run_specialists(profile, phantoms, shards, spacing, base)
    t0 = time.perf_counter()
    baseline = intensity_baseline(phantoms)
    baseline["wall_s"] = time.perf_counter() - t0
    machine["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    return {"profile": asdict(profile), "spacing": list(spacing), "machine": machine, "data_s": data_s,
            "universal": universal, "specialists": specialists, "baseline": baseline,
            "total_s": time.perf_counter() - t_start}
