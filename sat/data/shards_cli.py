"""``sat shards build|inspect``: build WebDataset shards from a recipe, and look inside them."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sat.errors import InputError


def _build(args) -> int:
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards
    from sat.knowledge.tree import load_tree

    try:
        recipe = load_recipe(args.recipe)
        recipe.validate(load_tree())
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if not Path(args.input).is_dir():
        raise InputError(f"input folder not found: {args.input}")
    opts = BuildOptions(split=None if args.split == "all" else args.split, workers=args.workers,
                        num_parts=args.num_parts, part=args.part, shard_size_mb=args.shard_size_mb,
                        max_failures=args.max_failures)
    part = build_shards(recipe, args.input, args.output, opts, progress=not args.quiet)
    n_fail = len(part["failures"])
    for case, why in part["failures"].items():
        print(f"failed {recipe.name}/{case}: {why}", file=sys.stderr)
    print(json.dumps({"dataset": recipe.name, "cases": len(part["cases"]), "failures": n_fail,
                      "shards": len(part["shards"])}))
    return 1 if n_fail > args.max_failures else 0


def _inspect(args) -> int:
    from sat.data.datamodule import ShardMapDataset, expand_urls

    urls = expand_urls(str(Path(args.dir) / "*.tar")) if Path(args.dir).is_dir() else expand_urls(args.dir)
    for s in ShardMapDataset(urls):
        m = s["meta"]
        vox_ml = float(m["spacing"][0] * m["spacing"][1] * m["spacing"][2]) / 1000.0
        print(json.dumps({"key": s["key"], "dataset": m["dataset"], "modality": m["modality"],
                          "spacing": m["spacing"], "shape": m["shape"],
                          "concepts": {c: round(n * vox_ml, 3) for c, n in zip(m["concepts"], m["voxels"])}}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat shards")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="preprocess a dataset into shards")
    b.add_argument("--recipe", required=True, help="recipe name or YAML path")
    b.add_argument("--input", required=True, help="dataset folder")
    b.add_argument("--output", required=True, help="shard folder")
    b.add_argument("--split", default="train", help="train, test, ... or all")
    b.add_argument("--workers", type=int, default=0)
    b.add_argument("--num-parts", type=int, default=1)
    b.add_argument("--part", type=int, default=0)
    b.add_argument("--shard-size-mb", type=float, default=256.0)
    b.add_argument("--max-failures", type=int, default=0)
    b.add_argument("--quiet", action="store_true")
    i = sub.add_parser("inspect", help="one JSON line per sample")
    i.add_argument("dir")
    i.add_argument("--json", action="store_true", help="(default) JSON lines")
    args = p.parse_args(argv)
    return {"build": _build, "inspect": _inspect}[args.cmd](args)
