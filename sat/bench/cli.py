"""``sat benchmark phantom|speed|gpu|real|interactive``: run a benchmark and write its results file.

    sat benchmark phantom                  # full profile: docs/results/phantom_benchmark.md (<= 45 min)
    sat benchmark phantom --profile quick  # every code path in minutes (outputs/benchmark/results_quick)
    sat benchmark speed                    # docs/results/speed.md
    sat benchmark real                     # docs/results/real_benchmark.md (<= 90 min, real patients)
    sat benchmark gpu                      # one GPU, <= 5 min: docs/results/gpu.md + gpu.json
    sat benchmark gpu --device cpu --profile quick   # every section on a tiny model, seconds
    sat benchmark interactive              # docs/results/interactive.md (simulated clicks, real patients)
    sat benchmark grid                     # docs/results/grid_ceiling.md (labels through the training grid)

Profiles are ``configs/benchmark/<phantom|speed>_<name>.yaml`` (or a YAML path).
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from sat.bench.config import load_profile, resolve_path
from sat.errors import InputError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sat benchmark", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="which", required=True)
    ph = sub.add_parser("phantom", help="universal vs specialists, prompt robustness, text ablation, baseline")
    ph.add_argument("--profile", default="full", help="quick, full or a YAML path (default: full)")
    ph.add_argument("--out", type=Path, help="results folder (default: the profile's results_dir)")
    ph.add_argument("--work", type=Path, help="phantoms, shards, checkpoints (default: the profile's work_dir)")
    ph.add_argument("--seed", type=int, help="override the profile's seed")
    rl = sub.add_parser("real", help="universal vs specialists on real patients (OpenKBP, MSD hippocampus)")
    rl.add_argument("--profile", default="full", help="quick, full or a YAML path (default: full)")
    rl.add_argument("--out", type=Path, help="results folder (default: the profile's results_dir)")
    rl.add_argument("--work", type=Path, help="shards and runs (default: the profile's work_dir)")
    rl.add_argument("--checkpoint", type=Path, help="score this universal checkpoint instead of training one")
    rl.add_argument("--no-specialists", action="store_true", help="skip the per-dataset specialists")
    rl.add_argument("--rescore", action="store_true",
                    help="score the models of the finished run in the work folder again, without training")
    rl.add_argument("--max-cases", type=int, help="cases per split and dataset (default: the profile's)")
    it = sub.add_parser("interactive", help="a simulated user refines masks: Dice and NSD per click")
    it.add_argument("--checkpoint", type=Path, default=Path("outputs/real/universal.ckpt"),
                    help="model checkpoint (default: outputs/real/universal.ckpt)")
    it.add_argument("--data", default="real", help="real (validation patients), phantom (held-out phantoms) or both")
    it.add_argument("--phantoms", type=Path, help="phantom folder (generated when missing)")
    it.add_argument("--max-cases", type=int, default=3, help="cases per dataset (0: all; default 3)")
    it.add_argument("--clicks", type=int, default=5, help="corrective clicks per structure (default 5)")
    it.add_argument("--threads", default="auto", help="CPU threads: a number or auto")
    it.add_argument("--out", type=Path, help="Markdown file (default: docs/results/interactive.md)")
    it.add_argument("--global-clicks", action="store_true",
                    help="take the whole clicked answer (default: only changes connected to a click)")
    it.add_argument("--generic-boxes", action="store_true",
                    help="box protocol: the text-less box answer (default: a box names the known structure it fits)")
    gr = sub.add_parser("grid", help="the Dice the training grid allows: reference labels to the grid and back")
    gr.add_argument("--profile", default="full", help="real profile naming the datasets (default: full)")
    gr.add_argument("--spacing", action="append", default=[], metavar="X,Y,Z",
                    help="a grid (mm) to measure besides each dataset's recipe grid; repeatable")
    gr.add_argument("--max-cases", type=int, default=0, help="validation cases per dataset (0: all)")
    gr.add_argument("--out", type=Path, help="Markdown file (default: docs/results/grid_ceiling.md)")
    sp = sub.add_parser("speed", help="inference, training-step, data-pipeline and memory timings")
    sp.add_argument("--profile", default="full", help="quick, full or a YAML path (default: full)")
    sp.add_argument("--out", type=Path, help="results folder (default: the profile's results_dir)")
    gp = sub.add_parser("gpu", help="training steps, MFU, text-query overhead, sliding window, data streaming")
    gp.add_argument("--profile", default="full", choices=("full", "quick"))
    gp.add_argument("--device", default="cuda", help="cuda[:N] or cpu (default: cuda)")
    gp.add_argument("--peak-tflops", type=float, help="bf16 peak for MFU (default: from the device name)")
    gp.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                    help="bf16 autocast (default: on CUDA, off on CPU)")
    gp.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    gp.add_argument("--out", type=Path, help="Markdown file (default: docs/results/gpu.md on CUDA, none on CPU)")
    gp.add_argument("--json", type=Path, help="JSON file (default: outputs/benchmark/gpu.json)")
    return p


def run_gpu_command(args, command: str) -> Path:
    """``sat benchmark gpu``: run the profile on the device, print the Markdown, write the files."""
    import torch

    from sat.errors import InputError
    from sat.bench.gpu import PROFILES, run_gpu_benchmark, write_results

    try:
        device = torch.device(args.device)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {args.device!r}; expected cuda[:N] or cpu") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("CUDA is not available here; pass --device cpu (with --profile quick for a smoke run)")
    if device.type not in ("cuda", "cpu"):
        raise InputError(f"unsupported device {args.device!r}; expected cuda[:N] or cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    bf16 = device.type == "cuda" if args.bf16 is None else args.bf16
    result = run_gpu_benchmark(PROFILES[args.profile], device, bf16=bf16, peak_tflops=args.peak_tflops)
    md = args.out if args.out is not None else (resolve_path("docs/results/gpu.md") if device.type == "cuda" else None)
    json_path = args.json if args.json is not None else resolve_path("outputs/benchmark/gpu.json")
    print(write_results(result, md, json_path, command))
    return md if md is not None else json_path


def run_interactive_command(args, command: str) -> Path:
    """``sat benchmark interactive``: simulate the user, print and write the Markdown tables."""
    from sat.bench.interactive import run_benchmark
    from sat.bench.interactive_report import write_report
    from sat.infer.click_cut import CUT_BOUND, CUT_STEP
    from sat.infer.click_locality import EXTEND_MARGIN, EXTEND_RADIUS

    if not args.checkpoint.is_file():
        raise InputError(f"checkpoint not found: {args.checkpoint}")
    if args.clicks < 1 or args.max_cases < 0:
        raise InputError(f"--clicks must be >= 1 and --max-cases >= 0, got {args.clicks} and {args.max_cases}")
    threads = args.threads
    if threads != "auto":
        if not str(threads).isdigit() or int(threads) < 1:
            raise InputError(f"--threads must be a positive integer or auto, got {threads!r}")
        threads = int(threads)
    curves, trained = run_benchmark(args.checkpoint, data=args.data, phantoms=args.phantoms,
                                    max_cases=args.max_cases, clicks=args.clicks, threads=threads,
                                    log=lambda m: print(m, file=sys.stderr), local=not args.global_clicks,
                                    name_boxes=not args.generic_boxes)
    if not curves:
        raise InputError("no structure was scored (no cases found, or none the checkpoint can answer)")
    out = args.out if args.out is not None else resolve_path("docs/results/interactive.md")
    note = ("Clicks: the whole clicked answer is taken (`--global-clicks`)." if args.global_clicks else
            "Clicks are taken one at a time: each keeps only what it changed in regions connected to itself, "
            "a positive click only adding foreground and a negative one only removing it; the rest keeps "
            "the answer before that click (`Segmenter.refine(local=True)`, the default; `--global-clicks` "
            "takes the network's whole answer to all clicks). Where the answer still contradicts a click at "
            "the click's own position, the click's label goes to that position and the voxels around it "
            "that the answer rates about as likely (`sat.infer.click_locality.honour_click`). "
            f"Within {EXTEND_RADIUS} voxels of the model grid around a click, the voxels connected to it whose "
            f"probability is within {EXTEND_MARGIN:g} of the cut take the click's label "
            "(`sat.infer.click_locality.extend_click`). "
            f"The whole mask's cut then moves by {CUT_STEP:g} per click, down for a positive click and up "
            f"for a negative one (at most {CUT_BOUND:g}, never past a clicked voxel; `sat.infer.click_cut`).")
    note += (" Boxes: the text-less box answer (`--generic-boxes`)." if args.generic_boxes else
             " Boxes: a box without text names the known structure whose answer fits it and is answered as "
             "that name plus the box (`sat/infer/box_naming.py`; `--generic-boxes` takes the text-less box answer).")
    note += (" A box answer stays inside the box grown by a tenth of its extent, unless a positive click lies "
             "outside it (`sat.infer.refine.confine_to_box`).")
    return write_report(curves, out, command=command, checkpoint=str(args.checkpoint), trained_clicks=trained,
                        note=note)


def _spacing(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(v > 0 for v in values):
        raise InputError(f"--spacing must be three positive numbers X,Y,Z in mm, got {text!r}")
    return values


def run_grid_command(args, command: str) -> Path:
    """``sat benchmark grid``: every validation reference through each grid and back."""
    from sat.bench.grid_ceiling import render, run_ceiling
    from sat.bench.real_cases import validation_cases
    from sat.data.recipes import load_recipe

    extra = [_spacing(s) for s in args.spacing]
    if args.max_cases < 0:
        raise InputError(f"--max-cases must be >= 0, got {args.max_cases}")
    rows = []
    for ds in load_profile("real", args.profile).datasets.values():
        root = resolve_path(ds.root)
        if not root.is_dir():
            print(f"{ds.recipe}: {root} not found, skipped", file=sys.stderr)
            continue
        own = tuple(float(v) for v in load_recipe(ds.recipe).spacing)
        grids = list(dict.fromkeys([own, *extra]))
        cases = validation_cases(ds.recipe, root, args.max_cases)
        rows += run_ceiling(cases, grids, log=lambda m: print(m, file=sys.stderr))
    if not rows:
        raise InputError("no structure was measured (no dataset folder found)")
    out = args.out if args.out is not None else resolve_path("docs/results/grid_ceiling.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(rows, command)
    out.write_text(text)
    print(text)
    return out


def run_phantom_command(profile, out: Path, work: Path, command: str) -> Path:
    """Run the phantom benchmark and write its report; returns the Markdown path."""
    from sat.bench.phantom import run_phantom
    from sat.bench.phantom_report import write_phantom_report

    result = run_phantom(profile, work)
    return write_phantom_report(result, out, command)


def run_speed_command(profile, out: Path, command: str) -> Path:
    from sat.bench.speed import run_speed
    from sat.bench.speed_report import write_speed_report

    return write_speed_report(run_speed(profile), out, command)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("WANDB_MODE", "offline")
    command = shlex.join(["sat", "benchmark", *argv])
    if args.which == "gpu":
        print(f"wrote {run_gpu_command(args, command)}")
        return 0
    if args.which == "interactive":
        print(f"wrote {run_interactive_command(args, command)}")
        return 0
    if args.which == "grid":
        print(f"wrote {run_grid_command(args, command)}")
        return 0
    profile = load_profile(args.which, args.profile)
    out = args.out if args.out is not None else resolve_path(profile.results_dir)
    if args.which == "phantom":
        if args.seed is not None:
            profile = replace(profile, seed=args.seed)
        work = args.work if args.work is not None else \
            resolve_path(profile.work_dir) / f"{profile.name}_seed{profile.seed}"
        md = run_phantom_command(profile, out, work, command)
    elif args.which == "real":
        from sat.bench.real import run_real
        from sat.bench.real_report import write_real_report

        if args.max_cases is not None:
            profile = replace(profile, max_cases=args.max_cases)
        if args.checkpoint is not None and not args.checkpoint.is_file():
            raise InputError(f"checkpoint not found: {args.checkpoint}")
        if args.rescore and args.checkpoint is not None:
            raise InputError("--rescore scores the work folder's trained models; leave out --checkpoint")
        work = args.work if args.work is not None else resolve_path(profile.work_dir) / profile.name
        md = write_real_report(run_real(profile, work, args.checkpoint, not args.no_specialists, args.rescore),
                               out, command)
    else:
        md = run_speed_command(profile, out, command)
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
