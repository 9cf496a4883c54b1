"""Inference and data sections of ``sat benchmark gpu``.

* :func:`sliding_window`: a 512 x 512 x 400 CT (0.8 x 0.8 x 1.5 mm) resampled to the model's 1.5 mm
  grid (273 x 273 x 400), encoded window by window and decoded for ``n`` prompts with the
  inference engine (:mod:`sat.model.sliding_window`). Resampling to the model grid and restoring masks to
  the input grid are CPU work outside this figure.
* :func:`shard_streaming`: phantom shards streamed through the training data module
  (:class:`sat.data.datamodule.ShardDataModule`) into training steps on the device: samples/s and
  the share of the step spent waiting for the next batch (including its copy to the device).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from sat.bench.gpu_steps import build_net, peak_gb, reset_peak, sync
from sat.model.config import ModelConfig


def model_grid(shape: tuple[int, int, int], spacing: tuple[float, float, float], target: float) -> tuple[int, ...]:
    """Voxel counts of ``shape`` at ``spacing`` resampled to isotropic ``target`` mm."""
    return tuple(max(1, round(n * s / target)) for n, s in zip(shape, spacing))


def sliding_window(cfg: ModelConfig, *, shape, spacing, target_mm: float, patch: int, prompts: list[int],
                   device: torch.device, bf16: bool, overlap: float = 0.25, sw_batch: int = 2) -> list[dict]:
    """Seconds to encode the resampled CT and decode it for each prompt count (features reused)."""
    from sat.model.sliding_window import decode_prompts, encode_image

    grid = model_grid(tuple(shape), tuple(spacing), target_mm)
    n = max(prompts)
    net = build_net(cfg, n, device).eval()
    concepts = list(net.concept_ids)
    torch.manual_seed(0)
    image = torch.randn(1, *grid)  # (1, X, Y, Z) on the model grid, standardised intensities
    rows = []
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        encode_image(net, image[:, :patch, :patch, :patch], "CT", (patch,) * 3, device=device)  # warm-up
        for k in prompts:
            reset_peak(device)
            t0 = time.perf_counter()
            cache = encode_image(net, image, "CT", (patch,) * 3, overlap=overlap, device=device, sw_batch=sw_batch)
            sync(device)
            t1 = time.perf_counter()
            decode_prompts(net, cache, concepts[:k], device=device)
            sync(device)
            t2 = time.perf_counter()
            rows.append({"prompts": k, "grid": list(grid), "windows": len(cache.windows), "encode_s": t1 - t0,
                         "decode_s": t2 - t1, "total_s": t2 - t0, "peak_gb": peak_gb(device)})
            del cache
    del net
    reset_peak(device)
    return rows


def _phantom_shards(root: Path, cases: int, scale: float, spacing: tuple[float, float, float]) -> str:
    """Build ``cases`` phantom CTs into shards under ``root``; returns their glob."""
    from dataclasses import replace

    from sat.bench.data_pipeline import _phantom_dataset
    from sat.data.shard_build import BuildOptions, build_shards

    recipe = _phantom_dataset(root / "data", cases, scale)
    recipe = replace(recipe, spacing=spacing)
    build_shards(recipe, root / "data", root / "shards", BuildOptions(split=None), progress=False)
    return str(root / "shards" / "*.tar")


def shard_streaming(cfg: ModelConfig, *, patch: int, batch: int, workers: int, steps: int, cases: int,
                    phantom_scale: float, spacing, device: torch.device, bf16: bool,
                    pin_memory: bool) -> dict:
    """Samples/s and waiting share of training steps fed by the shard data module."""
    from sat.data.datamodule import ShardDataModule
    from sat.data.sampling import SamplingConfig

    with tempfile.TemporaryDirectory(prefix="sat_gpu_bench_") as tmp:
        t0 = time.perf_counter()
        pattern = _phantom_shards(Path(tmp), cases, phantom_scale, tuple(spacing))
        build_s = time.perf_counter() - t0
        dm = ShardDataModule({"bench": pattern}, sampling=SamplingConfig(patch_size=(patch,) * 3),
                             batch_size=batch, num_workers=workers, steps_per_epoch=steps + 2,
                             pin_memory=pin_memory and device.type == "cuda")
        net = build_net(cfg, 1, device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        table = net.concept_embeddings
        it = iter(dm.train_dataloader())
        wait = work = 0.0
        done = 0
        for i in range(steps + 1):  # the first batch (worker start-up) is not timed
            t_a = time.perf_counter()
            b = next(it)
            image = b["image"].to(device, non_blocking=True)
            target = b["target"].to(device, non_blocking=True).float()
            sync(device)
            t_b = time.perf_counter()
            q = target.shape[1]
            if table.shape[0] < q:  # one text-table row per query slot of the batch
                net.concept_embeddings = torch.randn(q, table.shape[1], device=device)
                table = net.concept_embeddings
            queries = torch.arange(q, device=device).expand(image.shape[0], q)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                out = net(image.float(), queries, b["modality"].to(device))
                logits = out[0] if isinstance(out, tuple) else out
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync(device)
            t_c = time.perf_counter()
            if i:
                wait, work, done = wait + t_b - t_a, work + t_c - t_b, done + image.shape[0]
        del it, net, opt
    total = wait + work
    return {"workers": workers, "batch": batch, "patch": patch, "pin_memory": pin_memory and device.type == "cuda",
            "steps": steps, "cases": cases, "shard_build_s": build_s,
            "samples_per_s": done / total if total > 0 else None,
            "wait_share": wait / total if total > 0 else None, "step_s": total / max(1, steps)}
