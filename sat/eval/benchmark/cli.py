"""``sat benchmark phantom|speed``: run a benchmark and write its results file.

    sat benchmark phantom                  # full profile: docs/results/phantom_benchmark.md (<= 45 min)
    sat benchmark phantom --profile quick  # every code path in minutes (outputs/benchmark/results_quick)
    sat benchmark speed                    # docs/results/speed.md

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

from sat.eval.benchmark.config import load_profile, resolve_path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sat benchmark", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="which", required=True)
    ph = sub.add_parser("phantom", help="universal vs specialists, prompt robustness, text ablation, baseline")
    ph.add_argument("--profile", default="full", help="quick, full or a YAML path (default: full)")
    ph.add_argument("--out", type=Path, help="results folder (default: the profile's results_dir)")
    ph.add_argument("--work", type=Path, help="phantoms, shards, checkpoints (default: the profile's work_dir)")
    ph.add_argument("--seed", type=int, help="override the profile's seed")
    sp = sub.add_parser("speed", help="inference, training-step, data-pipeline and memory timings")
    sp.add_argument("--profile", default="full", help="quick, full or a YAML path (default: full)")
    sp.add_argument("--out", type=Path, help="results folder (default: the profile's results_dir)")
    return p


def run_phantom_command(profile, out: Path, work: Path, command: str) -> Path:
    """Run the phantom benchmark and write its report; returns the Markdown path."""
    from sat.eval.benchmark.phantom import run_phantom
    from sat.eval.benchmark.phantom_report import write_phantom_report

    result = run_phantom(profile, work)
    return write_phantom_report(result, out, command)


def run_speed_command(profile, out: Path, command: str) -> Path:
    from sat.eval.benchmark.speed import run_speed
    from sat.eval.benchmark.speed_report import write_speed_report

    return write_speed_report(run_speed(profile), out, command)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("WANDB_MODE", "offline")
    command = shlex.join(["sat", "benchmark", *argv])
    profile = load_profile(args.which, args.profile)
    out = args.out if args.out is not None else resolve_path(profile.results_dir)
    if args.which == "phantom":
        if args.seed is not None:
            profile = replace(profile, seed=args.seed)
        work = args.work if args.work is not None else \
            resolve_path(profile.work_dir) / f"{profile.name}_seed{profile.seed}"
        md = run_phantom_command(profile, out, work, command)
    else:
        md = run_speed_command(profile, out, command)
    print(f"wrote {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
