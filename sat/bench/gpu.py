"""``sat benchmark gpu``: training and inference near the hardware, in at most 5 minutes on one GPU.

Sections (each a list of rows in the JSON, a table in the Markdown):

* ``variants``: every variant at 128³, bf16, batch 1 and the largest batch that fits (doubling
  then bisection, out-of-memory caught; CUDA only): step time, peak memory, achieved TFLOP/s
  (:class:`torch.utils.flop_counter.FlopCounterMode`) and MFU against the device's bf16 peak;
* ``text_overhead``: the same backbone with the text-query head vs a plain 1x1x1 conv head, at
  8, 32 and 128 prompts;
* ``sliding_window``: a 512 x 512 x 400 CT resampled to 1.5 mm, 20 and 100 prompts
  (:mod:`sat.bench.gpu_io`);
* ``data``: phantom shards streamed through the training data module with the configured workers;
* ``click``: one refinement click on cached features of a 128³ CT (the interactive checkpoint;
  :mod:`sat.bench.gpu_click`);
* ``options``: the GPU-path switches of ``docs/training.md`` (channels_last_3d, torch.compile,
  activation checkpointing; pinned memory is in ``data``), each against the default. Attention
  needs no switch: the decoder's ``nn.MultiheadAttention`` calls with ``need_weights=False``,
  which runs ``F.scaled_dot_product_attention`` (the fused kernels) already.

``--device cpu --profile quick`` runs every section on a tiny model in seconds (the test suite
does, so the command never rots).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

# dense bf16 tensor-core peaks (TFLOP/s, without sparsity), matched against the device name
PEAK_BF16_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("GH200", 989.0), ("B200", 2250.0),
                    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10", 125.0), ("RTX 4090", 165.0))


def default_peak_tflops(device: torch.device) -> float | None:
    """The bf16 peak of a known CUDA device; ``None`` (MFU left blank) for a CPU or unknown one."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


@dataclass
class GpuProfile:
    """What ``sat benchmark gpu`` measures (``full``: the GPU command; ``quick``: the CPU test)."""

    name: str = "full"
    variants: tuple[str, ...] = ("nano", "base", "pro")
    patch: int = 128
    queries: int = 8
    warmup: int = 2
    steps: int = 5
    max_batch: int = 64
    overhead_variant: str = "base"
    overhead_prompts: tuple[int, ...] = (8, 32, 128)
    sw_variant: str = "base"
    sw_shape: tuple[int, int, int] = (512, 512, 400)
    sw_spacing: tuple[float, float, float] = (0.8, 0.8, 1.5)
    sw_target_mm: float = 1.5
    sw_prompts: tuple[int, ...] = (20, 100)
    data_variant: str = "base"
    data_workers: int = 8  # num_workers of configs/experiment/abdomen_ct_base.yaml
    data_batch: int = 2
    data_patch: int = 128
    data_steps: int = 10
    data_cases: int = 2
    data_phantom_scale: float = 1.0
    data_spacing: tuple[float, float, float] = (1.5, 1.5, 1.5)
    options_variant: str = "base"
    checkpoint_variant: str = "pro"
    checkpoint_patch: int = 160
    compile: bool = True
    click_checkpoint: str = "outputs/real/interactive.ckpt"  # relative to the repository
    click_shape: tuple[int, int, int] = (128, 128, 128)
    click_spacing: tuple[float, float, float] = (3.9, 3.9, 2.5)  # the OpenKBP grid
    click_prompt: str = "brainstem"
    click_sequences: int = 4
    click_count: int = 5
    budget_s: float = 270.0  # optional trials (compile, checkpointing, pinned memory) start only before this


PROFILES = {
    "full": GpuProfile(),
    "quick": GpuProfile(name="quick", variants=("tiny",), patch=16, queries=4, warmup=0, steps=1, max_batch=4,
                        overhead_variant="tiny", overhead_prompts=(4, 8, 16), sw_variant="tiny",
                        sw_shape=(64, 56, 32), sw_spacing=(2.0, 2.0, 4.0), sw_target_mm=6.0, sw_prompts=(2, 4),
                        data_variant="tiny", data_workers=0, data_batch=1, data_patch=16, data_steps=2,
                        data_cases=1, data_phantom_scale=3.0, data_spacing=(6.0, 6.0, 6.0),
                        options_variant="tiny", checkpoint_variant="tiny", checkpoint_patch=16, compile=False,
                        click_shape=(40, 40, 32), click_sequences=1, click_count=2),
}


def _mfu(tflops: float | None, peak: float | None) -> float | None:
    return tflops / peak if tflops is not None and peak else None


def variants_section(p: GpuProfile, device: torch.device, bf16: bool, peak: float | None) -> list[dict]:
    from sat.bench.gpu_steps import build_net, largest_batch, make_step, measure_step, variant_config

    rows = []
    for v in p.variants:
        cfg = variant_config(v)
        net = build_net(cfg, p.queries, device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        common = dict(queries=p.queries, patch=p.patch, device=device, bf16=bf16, warmup=p.warmup, steps=p.steps)
        try:
            one = measure_step(net, opt, batch=1, **common)
        except RuntimeError as exc:
            rows.append({"variant": v, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"})
            continue
        rows.append({"variant": v, **one, "mfu": _mfu(one["tflops"], peak)})
        if device.type == "cuda":
            biggest = largest_batch(lambda b: make_step(net, batch=b, opt=opt, **{k: common[k] for k in (
                "queries", "patch", "device", "bf16")}), p.max_batch)
            if biggest > 1:
                big = measure_step(net, opt, batch=biggest, flops_per_sample=one["flops_per_sample"], **common)
                rows.append({"variant": v, **big, "mfu": _mfu(big["tflops"], peak), "largest": True})
        del net, opt
    return rows


def overhead_section(p: GpuProfile, device: torch.device, bf16: bool) -> list[dict]:
    from sat.bench.gpu_steps import measure_config, variant_config

    cfg, rows = variant_config(p.overhead_variant), []
    for q in p.overhead_prompts:
        kw = dict(batch=1, queries=q, patch=p.patch, device=device, bf16=bf16, warmup=p.warmup, steps=p.steps)
        text, plain = measure_config(cfg, **kw), measure_config(cfg, plain_head=True, **kw)
        rows.append({"variant": p.overhead_variant, "prompts": q, "text_step_s": text["step_s"],
                     "plain_step_s": plain["step_s"], "ratio": text["step_s"] / plain["step_s"],
                     "text_peak_gb": text["peak_gb"], "plain_peak_gb": plain["peak_gb"]})
    first = rows[0]["text_step_s"]
    for r in rows:
        r["vs_fewest_prompts"] = r["text_step_s"] / first
    return rows


def options_section(p: GpuProfile, device: torch.device, bf16: bool, in_budget=lambda: True) -> list[dict]:
    """Each GPU-path switch against the default, at batch 1 (see ``docs/training.md``); trials
    that would start after the time budget are reported as skipped."""
    from sat.bench.gpu_steps import measure_config, variant_config

    cfg = variant_config(p.options_variant)
    kw = dict(batch=1, queries=p.queries, patch=p.patch, device=device, bf16=bf16, warmup=p.warmup, steps=p.steps)
    trials = [("default", cfg, {}), ("channels_last_3d", replace(cfg, channels_last=True), {}),
              ("channels_last_3d (whole model)", cfg, {"channels_last": True})]
    if p.compile:  # the first step compiles; time_step's warm-up absorbs it
        trials.append(("torch_compile", replace(cfg, compile=True), {"warmup": max(3, p.warmup)}))
    rows = []
    for name, c, extra in trials:
        t0 = time.perf_counter()
        if not in_budget():
            rows.append({"option": name, "variant": p.options_variant, "error": "skipped: time budget"})
            continue
        try:
            r = measure_config(c, **{**kw, **extra})
        except Exception as exc:  # noqa: BLE001 -- a switch that fails here is reported, not fatal
            r = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        rows.append({"option": name, "variant": p.options_variant, **r, "wall_s": time.perf_counter() - t0})
    ck = variant_config(p.checkpoint_variant)
    for on in (False, True):
        c = replace(ck, backbone=replace(ck.backbone, checkpointing=on, checkpoint_min_patch=0))
        if not in_budget():
            rows.append({"option": f"checkpointing={on}", "variant": p.checkpoint_variant,
                         "error": "skipped: time budget"})
            continue
        try:
            r = measure_config(c, **{**kw, "patch": p.checkpoint_patch})
        except RuntimeError as exc:
            r = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        rows.append({"option": f"checkpointing={on}", "variant": p.checkpoint_variant, **r})
    return rows


def run_gpu_benchmark(p: GpuProfile, device: torch.device, *, bf16: bool = True,
                      peak_tflops: float | None = None) -> dict:
    """Every section; returns the JSON-ready result."""
    from sat.bench.config import resolve_path
    from sat.bench.gpu_click import click_latency
    from sat.bench.gpu_io import shard_streaming, sliding_window
    from sat.bench.gpu_steps import variant_config

    t_start = time.perf_counter()
    peak = peak_tflops if peak_tflops is not None else default_peak_tflops(device)
    out = {"profile": asdict(p), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "bf16": bf16, "peak_tflops": peak, "cpus": os.cpu_count(),
           "load_average_1min": round(os.getloadavg()[0], 2), "sections_s": {}}

    def section(name, fn, *args, **kw):
        t0 = time.perf_counter()
        out[name] = fn(*args, **kw)
        out["sections_s"][name] = round(time.perf_counter() - t0, 1)

    section("variants", variants_section, p, device, bf16, peak)
    section("text_overhead", overhead_section, p, device, bf16)
    section("sliding_window", sliding_window, variant_config(p.sw_variant), shape=p.sw_shape, spacing=p.sw_spacing,
            target_mm=p.sw_target_mm, patch=p.patch, prompts=list(p.sw_prompts), device=device, bf16=bf16)
    data = dict(patch=p.data_patch, batch=p.data_batch, workers=p.data_workers, steps=p.data_steps,
                cases=p.data_cases, phantom_scale=p.data_phantom_scale, spacing=p.data_spacing, device=device,
                bf16=bf16)
    def data_rows() -> list[dict]:
        rows = []
        for pin in (False, True) if device.type == "cuda" else (False,):
            if rows and not in_budget():
                break
            try:
                rows.append(shard_streaming(variant_config(p.data_variant), pin_memory=pin, **data))
            except ImportError as exc:  # e.g. webdataset or nibabel missing on a bare GPU machine
                rows.append({"pin_memory": pin, "error": f"ImportError: {exc}"})
                break
        return rows

    def in_budget() -> bool:
        return time.perf_counter() - t_start < p.budget_s

    section("data", data_rows)
    section("click", click_latency, resolve_path(p.click_checkpoint), device, shape=p.click_shape,
            spacing=p.click_spacing, prompt=p.click_prompt, sequences=p.click_sequences, clicks=p.click_count)
    section("options", options_section, p, device, bf16, in_budget)
    out["total_s"] = round(time.perf_counter() - t_start, 1)
    return out


def write_results(result: dict, md_path: Path | None, json_path: Path, command: str) -> str:
    """Write the JSON (always) and the Markdown (when ``md_path``); returns the Markdown."""
    from sat.bench.gpu_report import markdown

    text = markdown(result, command)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    if md_path is not None:
        md_path.parent.mkdir(parents=True, exist_ok=True)
        md_path.write_text(text, encoding="utf-8")
    return text


__all__ = ["GpuProfile", "PROFILES", "run_gpu_benchmark", "write_results", "default_peak_tflops"]
