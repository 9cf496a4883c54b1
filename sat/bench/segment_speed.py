"""``python -m sat.bench.segment_speed`` (``sat segment-bench``): the inference targets, measured.

(a) prompt scaling: 20 prompts vs 1 prompt on the same volume (target <= 1.3x);
(b) peak RSS segmenting (and saving) a synthetic 512 x 512 x 400 CT with 20 prompts, measured in a
    fresh subprocess with ``resource.getrusage`` (target <= 6 GB);
(c) the real CT sample: every trained concept with a loaded Segmenter (target <= 5 s) and end to end
    from the shell, imports and model load included (target <= 10 s), plus where start-up goes;
(d) the first free-text prompt, which loads the text encoder (:mod:`sat.bench.segment_speed_text`):
    resolving it on a loaded Segmenter (target <= 0.5 s), 20 vs 1 free-text prompts in the first
    call (target <= 1.3x), cold ``sat segment`` with one from the shell (target <= 5 s).

The checkpoint is ``--checkpoint``, else ``outputs/demo/model.ckpt``, else a random-weight model of
the ``make demo`` size (timings only: its masks are noise, which makes them larger than real ones).
Timings depend on what else the machine runs; the load average is printed with them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sat.resources import configs_dir, shared_dir

SAMPLE = (shared_dir() or Path("../shared")) / "samples" / "totalseg_ct" / "ct.nii.gz"
DEMO_CHECKPOINT = Path("outputs") / "demo" / "model.ckpt"


def build_random_checkpoint(path: Path, *, preset: str = "demo", extra_concepts: int = 3, seed: int = 0) -> Path:
    """A random-weight checkpoint for timings, tests and the notebook (its masks are noise).

    Args:
        preset: ``"demo"``: the ``make demo`` model, spacing (4 mm) and patch (48); ``"tiny"``: the
            test suite's tiny model at 8 mm with 32-voxel windows (builds and runs in about a second).
        extra_concepts: organs 'trained' besides the phantom concepts (so that 20 distinct concepts
            can be asked).

    Concept embeddings are random unit vectors, so no text encoder is loaded; exact and lexical
    prompts resolve as usual.
    """
    import torch
    import yaml

    from sat.data.phantoms.anatomy import CONCEPTS
    from sat.volume.preprocess import PreprocessSpec
    from sat.knowledge.tree import load_tree
    from sat.model.builder import build_model
    from sat.model.config import BackboneConfig, HeadConfig, ModelConfig
    from sat.model.checkpoint import save_checkpoint

    if preset == "demo":
        exp = yaml.safe_load((configs_dir("experiment") / "phantom_demo.yaml").read_text())
        cfg = ModelConfig.from_dict(exp["model"]["model"])
        spacing, patch = tuple(exp["model"]["spacing"]), exp["data"]["sampling"]["patch_size"]
    elif preset == "tiny":
        cfg = ModelConfig(backbone=BackboneConfig(channels=(4, 8, 16, 32), out_channels=8),
                          head=HeadConfig(d_model=32, layers=1, heads=2))
        spacing, patch = (8.0, 8.0, 8.0), [32, 32, 32]
    else:
        raise ValueError(f"unknown preset {preset!r}; expected 'demo' or 'tiny'")
    tree = load_tree()
    ids = sorted(tree.concepts)
    torch.manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(len(ids), cfg.text_dim), dim=-1)
    trained = [c for c in CONCEPTS if c in tree.concepts]
    trained += [c for c in ids if tree.get(c).kind == "organ" and c not in trained][:extra_concepts]
    net = build_model(cfg, ids, emb)
    # trained heads start from a zero mask embedding (empty masks); random ones give the benchmark
    # real, prompt-dependent masks, which is the pessimistic case for memory and save time
    torch.nn.init.normal_(net.head.mask_embed[-1].weight, std=0.5)
    torch.nn.init.constant_(net.head.bias, 0.0)
    return save_checkpoint(path, net, model_cfg=cfg, text_spec={"backend": "minilm"}, tree_hash=tree.hash,
                           preprocess=PreprocessSpec(spacing=spacing).to_dict(), trained_concepts=trained,
                           extra={"patch_size": list(patch), "random_weights": True}, tree=tree)


def synthetic_ct(shape=(512, 512, 400), spacing=(0.8, 0.8, 1.5)):
    """A CT-like Volume: air, an elliptic body of soft tissue, a spine and two 'kidneys' (float32)."""
    import numpy as np

    from sat.io.volume import Volume

    arr = np.full(shape, -1000.0, dtype=np.float32)  # (X, Y, Z)
    x, y = np.ogrid[: shape[0], : shape[1]]
    cx, cy = shape[0] / 2, shape[1] / 2
    body = ((x - cx) / (0.42 * shape[0])) ** 2 + ((y - cy) / (0.32 * shape[1])) ** 2 < 1  # (X, Y)
    spine = (x - cx) ** 2 + (y - cy - 0.2 * shape[1]) ** 2 < (0.04 * shape[0]) ** 2
    kidneys = [((x - cx - s * 0.15 * shape[0]) / (0.05 * shape[0])) ** 2
               + ((y - cy - 0.1 * shape[1]) / (0.07 * shape[1])) ** 2 < 1 for s in (-1, 1)]
    for z in range(shape[2]):  # slice by slice: no volume-sized temporaries
        plane = arr[:, :, z]
        plane[body] = 40.0
        plane[spine] = 700.0
        if 0.3 * shape[2] < z < 0.6 * shape[2]:
            for k in kidneys:
                plane[k] = 150.0
    return Volume(arr, np.diag([*spacing, 1.0]), None, "synthetic")


def bench_prompts(seg, n: int) -> list[str]:
    """``n`` distinct prompts: trained concept names, then their synonyms when there are too few."""
    names = [seg.tree.get(c).name for c in sorted(seg.trained)]
    extra = [s for c in sorted(seg.trained) for s in seg.tree.get(c).synonyms]
    return list(dict.fromkeys(names + extra))[:n]


def _timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def _peak_gb() -> float:
    """Peak resident set of this process in GB.

    ``VmHWM`` belongs to the process's own address space, so a child exec'd from a large parent
    starts from zero; ``ru_maxrss`` keeps the high-water mark of the image the child was forked
    from (Linux carries it across ``execve``) and would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # KiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def memory_child(ckpt: str, shape: list[int], n_prompts: int, threads: str) -> dict:
    """Run in a fresh process: segment then save the synthetic CT; peak RSS after each stage."""
    from sat.infer.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(ckpt, device="cpu", threads=threads)
    vol = synthetic_ct(tuple(shape))
    base = _peak_gb()
    prompts = bench_prompts(seg, n_prompts)
    t_seg, result = _timed(seg.segment, vol, prompts, "CT")
    after_segment = _peak_gb()
    with tempfile.TemporaryDirectory(prefix="sat_bench_") as tmp:
        t_save, _ = _timed(result.save, tmp, formats=("nifti",))
    return {"shape": shape, "prompts": len(prompts), "peak_gb_before": round(base, 2),
            "peak_gb_segment": round(after_segment, 2), "peak_gb_save": round(_peak_gb(), 2),
            "segment_s": round(t_seg, 2), "save_s": round(t_save, 2)}


def startup_breakdown(stderr: str) -> dict[str, float]:
    """Seconds of the first import of heavy packages from ``python -X importtime`` output."""
    seen: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and m.group(3) in ("torch", "monai", "transformers", "nibabel", "SimpleITK", "scipy",
                                "matplotlib", "sat.infer.segmenter", "sat.model.builder") and m.group(3) not in seen:
            seen[m.group(3)] = round(int(m.group(1)) / 1e6, 2)
    return seen


def _shell(args: list[str], importtime: bool = False) -> tuple[float, subprocess.CompletedProcess]:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "sat.cli", *args]
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    return time.perf_counter() - t, proc


def run(args) -> dict:
    from sat.io.volume import load_volume
    from sat.infer.segmenter import Segmenter

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    seg = Segmenter.from_checkpoint(args.checkpoint, device=args.device, threads=args.threads)
    vol = load_volume(args.sample) if Path(args.sample).exists() else synthetic_ct((122, 101, 30), (3.0, 3.0, 3.0))
    prompts = bench_prompts(seg, args.prompts)
    seg.segment(vol, prompts[:1], "CT")  # warm-up: thread pools, allocator, first-call costs
    t1, tn, tall = [], [], []
    for _ in range(args.repeats):
        seg.clear_cache()
        t1.append(_timed(seg.segment, vol, prompts[:1], "CT")[0])
        seg.clear_cache()
        tn.append(_timed(seg.segment, vol, prompts, "CT")[0])
        seg.clear_cache()
        tall.append(_timed(seg.segment, vol, None, "CT", all_concepts=True)[0])
    out = {"checkpoint": str(args.checkpoint), "volume": list(vol.shape), "threads": args.threads,
           "load_average": round(os.getloadavg()[0], 1),
           "a_prompt_scaling": {"prompts": len(prompts), "one_s": round(statistics.median(t1), 3),
                                "many_s": round(statistics.median(tn), 3),
                                "ratio": round(statistics.median(tn) / statistics.median(t1), 2)},
           "c_loaded_all_s": round(statistics.median(tall), 3), "c_trained_concepts": len(seg.trained)}
    print(json.dumps(out["a_prompt_scaling"]), flush=True)
    with tempfile.TemporaryDirectory(prefix="sat_bench_") as tmp:
        shell_args = ["segment", "-i", str(args.sample), "-o", tmp, "--all", "--checkpoint", str(args.checkpoint),
                      "--quiet", "--threads", str(args.threads)]
        if not args.skip_shell and Path(args.sample).exists():
            walls = [_shell(shell_args)[0] for _ in range(args.repeats)]
            out["c_shell_s"] = round(min(walls), 2)
            out["c_shell_runs_s"] = [round(w, 2) for w in walls]
            _, proc = _shell(shell_args, importtime=True)
            out["startup_import_s"] = startup_breakdown(proc.stderr)
    if not args.skip_first_prompt:
        from sat.bench.segment_speed_text import bench_first_prompt

        out["d_first_free_text"] = bench_first_prompt(str(args.checkpoint), str(args.sample), args.prompts,
                                                      args.threads, shell=not args.skip_shell)
        print(json.dumps(out["d_first_free_text"]), flush=True)
    if not args.skip_memory:
        cmd = [sys.executable, "-m", "sat.bench.segment_speed", "--memory-child", "--checkpoint", str(args.checkpoint),
               "--prompts", str(args.prompts), "--threads", str(args.threads), "--shape", *map(str, args.shape)]
        proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
        out["b_memory"] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 \
            else {"error": proc.stderr.strip().splitlines()[-1:]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat segment-bench", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="model checkpoint (default: outputs/demo/model.ckpt or a random one)")
    p.add_argument("--sample", default=str(SAMPLE), help="CT used for (a) and (c)")
    p.add_argument("--prompts", type=int, default=20)
    p.add_argument("--shape", type=int, nargs=3, default=[512, 512, 400], help="memory test volume")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", default="auto")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-shell", action="store_true")
    p.add_argument("--skip-first-prompt", action="store_true", help="skip (d), the first free-text prompt")
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--first-prompt-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--resolve-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--warm-text", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.first_prompt_child:
        from sat.bench.segment_speed_text import first_prompt_child

        print(json.dumps(first_prompt_child(args.checkpoint, args.sample, args.prompts, args.threads,
                                            args.resolve_only, args.warm_text)))
        return 0
    if args.memory_child:
        print(json.dumps(memory_child(args.checkpoint, args.shape, args.prompts, args.threads)))
        return 0
    with tempfile.TemporaryDirectory(prefix="sat_bench_ckpt_") as tmp:
        if args.checkpoint is None:
            args.checkpoint = DEMO_CHECKPOINT if DEMO_CHECKPOINT.is_file() else \
                build_random_checkpoint(Path(tmp) / "random.ckpt")
        out = run(args)
    targets = {"a ratio (<= 1.3)": out["a_prompt_scaling"]["ratio"],
               "b peak GB (<= 6)": out.get("b_memory", {}).get("peak_gb_save"),
               "c loaded s (<= 5)": out["c_loaded_all_s"], "c shell s (<= 10)": out.get("c_shell_s"),
               "d first free-text resolve s (<= 0.5)": out.get("d_first_free_text", {}).get("first_resolve_s"),
               "d same after warm_text warm-up s": out.get("d_first_free_text", {}).get("warm_first_resolve_s"),
               "d 20 vs 1 free-text, first call (<= 1.3)": out.get("d_first_free_text", {}).get("ratio"),
               "d shell free-text s (<= 5)": out.get("d_first_free_text", {}).get("shell_s")}
    print(json.dumps(out, indent=1))
    for name, value in targets.items():
        print(f"{name:42} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
