"""``sat shards build``: preprocess a recipe's cases into WebDataset tar shards.

Cases are split deterministically into ``num_parts`` parts (case ``i`` goes to part
``i % num_parts``), so a SLURM array or any scheduler can build parts on separate machines. A
finished part leaves ``<name>-<split>-pKKK.done.json``; rebuilding skips it. Each worker holds one
case at a time; the writer holds one more, so memory stays at about two cases per worker.
"""
from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sat.data.adapters import CaseRef, list_cases, load_case
from sat.data.preprocess import PreprocessSpec, preprocess_case
from sat.data.recipes import Recipe
from sat.data.shard_format import encode_sample


@dataclass
class BuildOptions:
    """Options of one build.

    Attributes:
        split: which split of the recipe to build (``None`` = every case).
        workers: worker processes (0 = in-process).
        num_parts, part: build only part ``part`` of ``num_parts``.
        shard_size_mb: target size of one tar shard.
        max_failures: exit non-zero when more cases than this fail.
    """

    split: str | None = "train"
    workers: int = 0
    num_parts: int = 1
    part: int = 0
    shard_size_mb: float = 256.0
    max_failures: int = 0


def _process(args: tuple[CaseRef, Recipe]) -> tuple[str, dict | None, str | None]:
    ref, recipe = args
    try:
        case = load_case(ref, recipe)
        spec = PreprocessSpec(spacing=recipe.spacing)
        mods = (recipe.channels * len(case["image"]))[: len(case["image"])]
        pre = preprocess_case(case["image"], case["affine"], mods, spec, case["masks"], crop=True)
        spacing = np.asarray(recipe.spacing)
        meta = {
            "case_id": ref.case_id, "dataset": recipe.name, "modality": recipe.modality,
            "channels": recipe.channels, "spacing": list(map(float, spacing)),
            "affine": pre["affine"].tolist(), "original_affine": case["affine"].tolist(),
            "original_shape": list(case["image"].shape[1:]), "concepts": case["concepts"],
            "annotated": case["concepts"],
            "original_ml": [float(m.sum() * abs(np.linalg.det(case["affine"][:3, :3])) / 1000)
                            for m in case["masks"]],
        }
        key = f"{recipe.name}__{ref.case_id}".replace(".", "_")
        return ref.case_id, encode_sample(key, pre["image"], pre["masks"], meta), None
    except Exception as exc:  # recorded as a failure with its reason; the build continues
        return ref.case_id, None, f"{type(exc).__name__}: {exc}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_shards(recipe: Recipe, input_dir: str | Path, output_dir: str | Path,
                 opts: BuildOptions | None = None, progress: bool = True) -> dict:
    """Build (one part of) a dataset's shards and return its manifest.

    The manifest (also written to ``manifest.json`` beside the shards, merged over parts) lists
    cases, per-concept case counts and voxel volumes in ml, failures with reasons, and checksums.
    """
    import webdataset as wds
    from tqdm import tqdm

    opts = opts or BuildOptions()
    if not 0 <= opts.part < opts.num_parts:
        raise ValueError(f"--part must be in [0, {opts.num_parts}), got {opts.part}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{recipe.name}-{opts.split or 'all'}-p{opts.part:03d}"
    done = out / f"{stem}.done.json"
    if done.exists():
        return json.loads(done.read_text())
    refs = list_cases(recipe, input_dir, opts.split)[opts.part::opts.num_parts]
    part = {"dataset": recipe.name, "split": opts.split, "part": opts.part, "cases": [],
            "failures": {}, "concepts": {}, "shards": {}}
    pattern = str(out / f"{stem}-%05d.tar")
    jobs = [(r, recipe) for r in refs]
    pool = ProcessPoolExecutor(opts.workers) if opts.workers > 0 else None
    results = pool.map(_process, jobs) if pool else map(_process, jobs)
    with wds.ShardWriter(pattern, maxsize=int(opts.shard_size_mb * 2**20), verbose=0) as sink:
        for case_id, sample, err in tqdm(results, total=len(jobs), desc=stem, disable=not progress,
                                         file=sys.stderr):
            if err is not None:
                part["failures"][case_id] = err
                continue
            sink.write(sample)
            meta = json.loads(sample["json"])
            part["cases"].append(case_id)
            vox_ml = float(np.prod(meta["spacing"])) / 1000.0
            for cid, n, present in zip(meta["concepts"], meta["voxels"], meta["present"]):
                entry = part["concepts"].setdefault(cid, {"annotated": 0, "present": 0, "ml": 0.0})
                entry["annotated"] += 1
                entry["present"] += int(present)
                entry["ml"] += n * vox_ml
    if pool:
        pool.shutdown()
    for tar in sorted(out.glob(f"{stem}-*.tar")):
        part["shards"][tar.name] = _sha256(tar)
    done.write_text(json.dumps(part, indent=1))
    write_manifest(out)
    return part


def write_manifest(out: Path) -> dict:
    """Merge every finished part in ``out`` into ``manifest.json``."""
    manifest = {"parts": [], "cases": 0, "failures": {}, "concepts": {}, "shards": {}}
    for done in sorted(out.glob("*.done.json")):
        part = json.loads(done.read_text())
        manifest["parts"].append(done.name)
        manifest["cases"] += len(part["cases"])
        manifest["failures"].update({f"{part['dataset']}/{k}": v for k, v in part["failures"].items()})
        manifest["shards"].update(part["shards"])
        for cid, e in part["concepts"].items():
            m = manifest["concepts"].setdefault(cid, {"annotated": 0, "present": 0, "ml": 0.0})
            for k in m:
                m[k] += e[k]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
