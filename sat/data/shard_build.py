"""``sat shards build``: preprocess a recipe's cases into WebDataset tar shards.

Cases are split deterministically into ``num_parts`` parts (case ``i`` of the sorted list goes
to part ``i % num_parts``), so a SLURM array or any scheduler can build parts on separate
machines. A finished part leaves ``<name>-<split>-pKKK.done.json``; rebuilding skips it, and a
part that was interrupted is rebuilt from scratch. Every part merges all finished parts into
``manifest.json`` (see :mod:`sat.data.manifest`).

Memory: each worker process holds one case; at most ``2 * workers`` cases are in flight (being
processed, or finished and waiting in order to be written), so a build never holds more than two
cases per worker. Finished cases travel as encoded samples (float16 image, label code map).
"""
from __future__ import annotations

import json
import multiprocessing
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sat.data.adapters import Case, CaseRef, list_cases, read_case
from sat.data.label_codes import compact_codes
from sat.volume.label_resample import match_volumes, occupancy_edges, resample_codes
from sat.data.manifest import LABELS, add_sample, new_part, rule_record, sha256_file, write_manifest
from sat.volume.preprocess import PreprocessSpec, default_rule, preprocess_case
from sat.data.recipes import Recipe
from sat.data.shard_format import encode_sample


@dataclass
class BuildOptions:
    """Options of one build.

    Attributes:
        split: which split of the recipe to build (``None`` = every labelled case).
        workers: worker processes (0 = in-process, one case at a time).
        num_parts, part: build only part ``part`` of ``num_parts``.
        shard_size_mb: target size of one tar shard.
        max_failures: exit non-zero when more cases than this fail.
        spacing: override the recipe's preprocessing spacing (mm), e.g. to mix datasets.
        max_cases: build only the first this many cases of the split (0 = all), for smoke runs.
    """

    split: str | None = "train"
    workers: int = 0
    num_parts: int = 1
    part: int = 0
    shard_size_mb: float = 256.0
    max_failures: int = 0
    spacing: tuple[float, float, float] | None = None
    max_cases: int = 0


def sample_key(dataset: str, case_id: str) -> str:
    """A WebDataset key (no dots or slashes) for one case."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{dataset}__{case_id}")


def preprocess_codes(case: Case, channels: list[str], spacing: tuple[float, float, float],
                     rules: dict | None = None) -> dict:
    """Preprocess a read case onto the RAS grid at ``spacing``, cropped to the foreground.

    The image goes through :func:`preprocess_case` (the same path as inference); the label code
    map is resampled onto exactly the grid it returns (consistent point sampling, then volume
    matching, see :mod:`sat.volume.label_resample`) and stays a code map: per-concept masks are
    never materialised, at the native resolution or the new one.

    Returns:
        dict with ``image`` (C, X', Y', Z') float32, ``codes`` (X', Y', Z') unsigned, ``lut``
        (K, n_codes) bool (compacted, code 0 = background), ``soft`` (the occupancy band,
        :func:`~sat.volume.label_resample.occupancy_edges`) and ``affine``.
    """
    spec = PreprocessSpec(spacing=spacing) if rules is None else PreprocessSpec(spacing=spacing, rules=rules)
    pre = preprocess_case(case.image, case.affine, channels, spec, crop=True)
    codes, lut, soft = labels_on_grid(case.codes, case.lut, case.affine, pre["affine"], pre["image"].shape[1:])
    return {"image": pre["image"], "codes": codes, "lut": lut, "soft": soft, "affine": pre["affine"]}


def labels_on_grid(codes: np.ndarray, lut: np.ndarray, src_affine: np.ndarray, dst_affine: np.ndarray,
                   shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """A code map put on another grid as shards store it: point sampled, volumes matched,
    compacted, plus each channel's occupancy band.

    Returns:
        ``(codes (X', Y', Z'), lut (K, n'), (band index (M, 2), band value (M,)))``.
    """
    out = match_volumes(resample_codes(codes, src_affine, dst_affine, shape), codes, src_affine, dst_affine)
    out, out_lut = compact_codes(out, lut)
    return out, out_lut, occupancy_edges(codes, lut, src_affine, out, out_lut, dst_affine)


def preprocess_labelled(case: Case, channels: list[str], spacing: tuple[float, float, float],
                        rules: dict | None = None) -> dict:
    """:func:`preprocess_codes` plus ``masks`` (K, X', Y', Z') bool expanded from the code map."""
    pre = preprocess_codes(case, channels, spacing, rules)
    return {**pre, "masks": np.take(pre["lut"], pre["codes"], axis=1)}


def process_case(ref: CaseRef, recipe: Recipe, spacing: tuple[float, float, float]) -> dict:
    """Read, preprocess and encode one case as a WebDataset sample dict."""
    case = read_case(ref, recipe)
    pre = preprocess_codes(case, recipe.channels, spacing, recipe.rules())
    counts = np.bincount(case.codes.ravel(), minlength=case.lut.shape[1])
    voxel_ml = abs(float(np.linalg.det(case.affine[:3, :3]))) / 1000.0
    # mean native intensity (HU for CT) per concept, before normalisation: plausibility references
    sums = np.bincount(case.codes.ravel(), weights=case.image[0].ravel(), minlength=case.lut.shape[1])
    inside = case.lut.astype(np.float64)
    native_mean = [round(float(t / n), 2) if n else None for t, n in zip(inside @ sums, inside @ counts)]
    meta = {
        "case_id": ref.case_id, "dataset": recipe.name, "split": ref.split,
        "modality": recipe.modality, "channels": recipe.channels,
        "channel_names": recipe.channel_names, "spacing": [float(s) for s in spacing],
        "affine": pre["affine"].tolist(), "original_affine": case.affine.tolist(),
        "original_shape": list(case.image.shape[1:]), "concepts": case.concepts,
        "annotated": case.concepts,
        "original_ml": [round(float(n) * voxel_ml, 4) for n in case.lut.astype(np.int64) @ counts],
        "native_mean": native_mean,
        "intensity": rule_record(recipe),  # the rule the image went through
    }
    return encode_sample(sample_key(recipe.name, ref.case_id), pre["image"], pre["codes"], pre["lut"], meta,
                         soft=pre["soft"])


def _process(args: tuple[CaseRef, Recipe, tuple]) -> tuple[str, dict | None, str | None]:
    ref, recipe, spacing = args
    try:
        return ref.case_id, process_case(ref, recipe, spacing), None
    except Exception as exc:  # recorded as a failure with its reason; the build continues
        return ref.case_id, None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"


def bounded_map(fn: Callable, items: Iterable, executor: Executor | None, window: int) -> Iterator:
    """``map(fn, items)`` in order, with at most ``window`` calls submitted and not yet consumed.

    ``Executor.map`` submits everything at once, so finished results could pile up in memory;
    here a new item is submitted only after the oldest result has been taken.
    """
    if executor is None:
        yield from map(fn, items)
        return
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    pending: deque = deque()
    for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one case per process; avoid oversubscribing the cores


def _same_preprocessing(part: dict, recipe: Recipe, spacing: tuple) -> bool:
    """Whether a finished part was built on ``spacing`` with ``recipe``'s intensity rule (a part
    from before rules were recorded was built with the modality's default rule)."""
    default = default_rule(recipe.modality)
    recorded = part["intensity"] if "intensity" in part else (asdict(default) if default else None)
    same_grid = [float(v) for v in part.get("spacing", [])] == [float(v) for v in spacing]
    return same_grid and recorded == rule_record(recipe) and part.get("labels") == LABELS


def build_shards(recipe: Recipe, input_dir: str | Path, output_dir: str | Path,
                 opts: BuildOptions | None = None, progress: bool = True) -> dict:
    """Build (one part of) a dataset's shards and return that part's record.

    Returns:
        dict with ``cases`` (key -> case info), ``failures`` (case id -> reason), ``concepts``
        (id -> annotated / present counts and ml), ``shards`` (file -> sha256, bytes, samples),
        ``skipped`` (True when the part had been finished before).
    """
    import webdataset as wds
    from tqdm import tqdm

    opts = opts or BuildOptions()
    if opts.num_parts < 1 or not 0 <= opts.part < opts.num_parts:
        raise ValueError(f"--part must be in [0, {opts.num_parts}), got {opts.part}")
    if opts.workers < 0:
        raise ValueError(f"--workers must be >= 0, got {opts.workers}")
    spacing = tuple(float(s) for s in (opts.spacing or recipe.spacing))
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{recipe.name}-{opts.split or 'all'}-p{opts.part:03d}"
    done = out / f"{stem}.done.json"
    if done.exists():
        finished = json.loads(done.read_text())
        if _same_preprocessing(finished, recipe, spacing):
            return {**finished, "skipped": True}
        done.unlink()  # built on another grid or with another intensity rule: rebuilt below
    for stale in out.glob(f"{stem}-*.tar"):  # left by an interrupted run of this part
        stale.unlink()
    refs = list_cases(recipe, input_dir, opts.split)
    refs = (refs[:opts.max_cases] if opts.max_cases > 0 else refs)[opts.part::opts.num_parts]
    part = new_part(recipe, opts.split, opts.part, opts.num_parts, spacing)
    jobs = [(r, recipe, spacing) for r in refs]
    pool = (ProcessPoolExecutor(opts.workers, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_init_worker) if opts.workers > 0 else None)
    bar = tqdm(total=len(jobs), desc=stem, unit="case", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        with wds.ShardWriter(str(out / f"{stem}-%05d.tar"), maxsize=int(opts.shard_size_mb * 2**20),
                             verbose=0) as sink:
            for case_id, sample, err in bounded_map(_process, jobs, pool, 2 * max(opts.workers, 1)):
                if err is not None:
                    part["failures"][case_id] = err
                else:
                    sink.write(sample)
                    add_sample(part, sample, Path(sink.fname).name)
                bar.update(1)
                bar.set_postfix(failed=len(part["failures"]), refresh=False)
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)
    for tar in sorted(out.glob(f"{stem}-*.tar")):
        n = sum(1 for c in part["cases"].values() if c["shard"] == tar.name)
        part["shards"][tar.name] = {"sha256": sha256_file(tar), "bytes": tar.stat().st_size, "samples": n}
    done.write_text(json.dumps(part, indent=1))
    write_manifest(out)
    return {**part, "skipped": False}
