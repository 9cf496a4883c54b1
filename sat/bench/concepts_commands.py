"""``sat concepts eval`` and ``sat concepts bench``: the harness's subcommands of ``sat concepts``.

The ``sat`` dispatcher hands this module to :func:`sat.infer.concepts_cli.main` (see
``sat.cli.EXTENSIONS``), so the core command lists them without importing the harness. Heavy
imports wait until a subcommand runs: ``sat concepts list`` stays fast.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from sat.errors import InputError
from sat.infer.concepts_cli import spec_from_args, tree_from_args


def _eval_arguments(p) -> None:
    p.add_argument("--finetuned", action="append",
                   help="pretrained encoder, repeatable (default: outputs/text/knowledge_minilm.safetensors if present)")
    p.add_argument("--raw-only", action="store_true", help="evaluate raw MiniLM only")
    p.add_argument("--out", default="docs/results/concepts_eval.md", help="Markdown report ('' for none)")
    p.add_argument("--seed", type=int, default=0, help="split seed (must match pretraining)")
    p.add_argument("--phrasings", help="phrasing set for the consistency table (default tests/knowledge/data/phrasings.jsonl)")
    p.add_argument("--no-phrasings", action="store_true", help="skip the phrasing consistency table")
    p.add_argument("--part", choices=("eval", "calib"), default="eval",
                   help="held-out part to score (calib: the threshold's own part, a second check of top-1)")
    p.add_argument("--json", action="store_true")


def _default_export() -> list[str]:
    """The default ``sat text-fit`` output, when it exists."""
    from sat.text.pretrain import DEFAULT_EXPORT

    return [DEFAULT_EXPORT] if Path(DEFAULT_EXPORT).is_file() else []


def _default_phrasings():
    from sat.knowledge.consistency import DEFAULT_PHRASINGS

    return DEFAULT_PHRASINGS if DEFAULT_PHRASINGS.is_file() else None


def _eval(args) -> int:
    from sat.bench.concepts_eval import run_eval
    from sat.text.encoder import TextEncoderSpec
    from sat.text.sidecar import read_sidecar
    from sat.text.splits import SplitConfig

    paths = [] if args.raw_only else (args.finetuned or _default_export())
    specs = [("raw MiniLM", TextEncoderSpec())]
    for path in paths:
        if not Path(path).is_file():
            raise InputError(f"--finetuned file not found: {path}")
        meta = read_sidecar(path)
        label = f"knowledge-pretrained ({Path(path).name})"
        if meta.get("steps"):
            label = f"knowledge-pretrained, {meta['steps']} steps" + (
                f" ({meta['fit_seconds'] / 60:.1f} min CPU fit)" if meta.get("fit_seconds") else "")
        specs.append((label, TextEncoderSpec(finetuned=path)))
    command = "sat concepts eval" + "".join(f" --finetuned {p}" for p in paths) + (
        f" --part {args.part}" if args.part != "eval" else "")
    phrasings = None if args.no_phrasings else (args.phrasings or _default_phrasings())
    reports = run_eval(tree_from_args(args), specs, args.out, SplitConfig(seed=args.seed), command, phrasings,
                       args.part)
    for r in reports:
        print(json.dumps({k: r[k] for k in ("label", "threshold", "metrics", "per_category")})
              if args.json else f"{r['label']}: {r['metrics']} (threshold {r['threshold']})")
    if args.out:
        print(f"report written to {args.out}", file=sys.stderr)
    return 0


def _bench_arguments(p) -> None:
    p.add_argument("--n", type=int, default=1000, help="prompts per workload")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per workload (median reported)")
    p.add_argument("--finetuned", help="pretrained encoder (default: raw MiniLM; same speed)")


def _bench(args) -> int:
    from sat.bench.resolver_speed import run_bench

    if args.n < 1 or args.repeats < 1:
        raise InputError(f"--n and --repeats must be >= 1, got {args.n} and {args.repeats}")
    for name, r in run_bench(tree_from_args(args), spec_from_args(args), args.n, args.repeats).items():
        lo, hi = r["range"]
        print(f"{name:<10} {r['prompts_per_s']:>9.1f} prompts/s  (median of {args.repeats}, "
              f"range {lo:.0f}-{hi:.0f}; {r['prompts']} prompts, {r['encoded_share']:.0%} encoded, "
              f"{r['seconds']:.2f} s)")
    return 0


SUBCOMMANDS = [("eval", "held-out retrieval / laterality / refusal report", _eval_arguments, _eval),
               ("bench", "resolver prompts/s on CPU", _bench_arguments, _bench)]
