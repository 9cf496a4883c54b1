"""``sat benchmark speed``: inference, training-step, data-pipeline and memory timings.

Measured with the project's own benchmark functions (:mod:`sat.bench.segment_speed`,
:mod:`sat.bench.model_table`, :mod:`sat.bench.train_overhead`, ``python -m sat.bench.data_pipeline``), on a
random-weight model of the ``checkpoint_preset`` size: timings only, its masks are noise (larger
than real ones, so restoring them to the input grid is the pessimistic case). Peak memory and the
data pipeline run in fresh processes so nothing measured earlier hides their peaks.
"""
from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from sat.bench.config import SpeedProfile

log = logging.getLogger(__name__)
SEED = 0  # random checkpoint weights and synthetic data
_MEMORY_CHILD = ("import json, sys; from sat.bench.segment_speed import memory_child; "
                 "print(json.dumps(memory_child(sys.argv[1], [int(v) for v in sys.argv[2:5]], "
                 "int(sys.argv[5]), sys.argv[6])))")


def _median_time(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls, and the last call's result."""
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def open_segmenter(ckpt: Path, n_concepts: int, device: str, threads):
    """A Segmenter on the random checkpoint that answers ``n_concepts`` distinct (non-group) concepts.

    Random weights answer any concept equally well, so the first ``n_concepts`` non-group concepts
    of the table are marked as trained: every timed prompt decodes its own concept.
    """
    from sat.infer.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(ckpt, device=device, threads=threads)
    pool = [c for c in sorted(seg.net.concept_ids) if c in seg.tree.concepts and seg.tree.get(c).kind != "group"]
    seg.trained = set(sorted(seg.trained)) | set(pool[:max(0, n_concepts - len(seg.trained))])
    return seg


def prompt_scaling(seg, profile: SpeedProfile) -> list[dict]:
    """Seconds per ``segment`` call (features recomputed each call) against the prompt count."""
    from sat.bench.segment_speed import bench_prompts, synthetic_ct

    vol = synthetic_ct(tuple(profile.prompt_shape), tuple(profile.prompt_spacing))
    prompts = bench_prompts(seg, max(profile.prompt_counts))
    seg.segment(vol, prompts[:1], "CT")  # warm-up: thread pools, allocator, first-call costs
    rows = []
    for n in profile.prompt_counts:
        def call(n=n):
            seg.clear_cache()
            return seg.segment(vol, prompts[:n], "CT")

        t0 = time.perf_counter()
        s, result = _median_time(call, profile.repeats)
        concepts = len({c for st in result.structures for c in st.used_concepts})
        rows.append({"prompts": n, "concepts": concepts, "seconds": s, "volume": list(vol.shape),
                     "repeats": profile.repeats, "seed": SEED, "wall_s": time.perf_counter() - t0})
    base = rows[0]["seconds"]
    for r in rows:
        r["ratio_vs_first"] = r["seconds"] / base if base > 0 else float("nan")
    return rows


def volume_scaling(seg, profile: SpeedProfile) -> list[dict]:
    """Seconds per ``segment`` call against the input volume size (``size_prompts`` prompts)."""
    from sat.bench.segment_speed import bench_prompts, synthetic_ct

    prompts = bench_prompts(seg, profile.size_prompts)
    rows = []
    for size in profile.volume_sizes:
        shape, spacing = tuple(int(v) for v in size[:3]), tuple(float(v) for v in size[3:6])
        vol = synthetic_ct(shape, spacing)
        t0 = time.perf_counter()

        def call():
            seg.clear_cache()
            seg.segment(vol, prompts, "CT")

        s, _ = _median_time(call, profile.repeats)
        rows.append({"shape": list(shape), "spacing_mm": list(spacing), "megavoxels": vol.array.size / 1e6,
                     "prompts": len(prompts), "seconds": s, "repeats": profile.repeats, "seed": SEED,
                     "wall_s": time.perf_counter() - t0})
    return rows


def training_steps(profile: SpeedProfile, device: str = "cpu", bf16: bool = False) -> list[dict]:
    """One row per model variant: trainable parameters, peak memory and step time (:func:`sat.bench.model_table.measure`)."""
    from sat.model.config import model_variants
    from sat.bench.model_table import measure, patch_for

    rows = []
    base = profile.gpu_patch if device != "cpu" else profile.train_patch
    steps = profile.gpu_steps if device != "cpu" else profile.train_steps
    for v in profile.variants or tuple(model_variants()):
        t0 = time.perf_counter()
        try:
            r = measure(v, patch=patch_for(v, base), device=device, bf16=bf16, steps=steps)
        except (RuntimeError, ValueError) as exc:  # e.g. out of memory at this patch
            r = {"variant": v, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
        rows.append({**r, "steps": steps, "seed": SEED, "wall_s": time.perf_counter() - t0})
    return rows


def text_query_overhead(profile: SpeedProfile) -> dict:
    """Text-query model vs MONAI BasicUNet step times (:func:`sat.bench.train_overhead.benchmark`)."""
    from sat.bench.train_overhead import benchmark

    t0 = time.perf_counter()
    r = benchmark(profile.overhead_variant, classes=profile.overhead_classes, patch=profile.overhead_patch,
                  steps=profile.overhead_steps, warmup=1)
    return {**r, "seed": SEED, "wall_s": time.perf_counter() - t0}


def _run_json(cmd: list[str]) -> dict:
    """Run ``cmd`` in a fresh process; its last stdout line as JSON plus seed and wall time, or the
    last stderr line as ``error``."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1], "wall_s": wall}
    return {**_last_json(proc.stdout), "seed": SEED, "wall_s": wall}


def data_throughput(profile: SpeedProfile) -> dict:
    """Shard pipeline vs NIfTI + MONAI samples/s, via ``python -m sat.bench.data_pipeline throughput``."""
    cmd = [sys.executable, "-m", "sat.bench.data_pipeline", "throughput", "--cases", str(profile.data_cases),
           "--samples", str(profile.data_samples), "--patch", str(profile.data_patch),
           "--spacing", *map(str, profile.data_spacing), "--phantom-scale", str(profile.data_phantom_scale)]
    return _run_json(cmd)


def peak_memory(ckpt: Path, profile: SpeedProfile) -> dict:
    """Peak RSS segmenting and saving a synthetic CT in a fresh process (:func:`sat.bench.segment_speed.memory_child`)."""
    cmd = [sys.executable, "-c", _MEMORY_CHILD, str(ckpt), *map(str, profile.memory_shape),
           str(profile.memory_prompts), str(profile.threads)]
    return _run_json(cmd)


def gpu_section(ckpt: Path, profile: SpeedProfile) -> dict:
    """The same inference and training timings on CUDA (bf16 training steps)."""
    seg = open_segmenter(ckpt, max(profile.prompt_counts), "cuda", None)
    torch.cuda.reset_peak_memory_stats()
    prompts = prompt_scaling(seg, profile)
    return {"device": torch.cuda.get_device_name(0), "prompt_scaling": prompts,
            "inference_peak_gb": torch.cuda.max_memory_allocated() / 2**30,
            "training_steps": training_steps(profile, device="cuda", bf16=True)}


def run_speed(profile: SpeedProfile) -> dict:
    """Every speed study; returns a dict of rows (see :mod:`sat.bench.speed_report`)."""
    threads = torch.get_num_threads()
    try:
        return _run_speed(profile)
    finally:
        torch.set_num_threads(threads)  # the profile's thread count is for this run only


def _run_speed(profile: SpeedProfile) -> dict:
    from sat.bench.segment_speed import build_random_checkpoint

    t_start = time.perf_counter()
    torch.set_num_threads(profile.threads)
    out = {"profile": {k: getattr(profile, k) for k in profile.__dataclass_fields__},
           "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                       "load_average_1min": round(os.getloadavg()[0], 2), "cuda": torch.cuda.is_available()}}
    with tempfile.TemporaryDirectory(prefix="sat_speed_") as tmp:
        trained = bool(profile.checkpoint) and Path(profile.checkpoint).is_file()
        if trained:  # real masks; prompts beyond its concepts are their synonyms (bench_prompts)
            ckpt = Path(profile.checkpoint)
            seg = open_segmenter(ckpt, 0, "cpu", profile.threads)
        else:
            ckpt = build_random_checkpoint(Path(tmp) / "random.ckpt", preset=profile.checkpoint_preset, seed=SEED)
            seg = open_segmenter(ckpt, max(profile.prompt_counts), "cpu", profile.threads)
        out["model"] = str(ckpt) if trained else None
        log.info("prompt scaling")
        out["prompt_scaling"] = prompt_scaling(seg, profile)
        log.info("volume scaling")
        out["volume_scaling"] = volume_scaling(seg, profile)
        log.info("training steps")
        out["training_steps"] = training_steps(profile)
        out["text_query_overhead"] = text_query_overhead(profile)
        log.info("data pipeline")
        out["data_throughput"] = data_throughput(profile)
        log.info("peak memory")
        out["peak_memory"] = peak_memory(ckpt, profile)
        if torch.cuda.is_available():
            log.info("GPU section")
            out["gpu"] = gpu_section(ckpt, profile)
    out["machine"]["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    out["total_s"] = time.perf_counter() - t_start
    return out
