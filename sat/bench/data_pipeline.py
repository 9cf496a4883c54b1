"""Data-pipeline benchmarks: ``python -m sat.bench.data_pipeline geometry|throughput`` (or ``sat shards bench``).

* ``geometry``: per structure >= 10 ml, volume (ml) and world centroid before vs after shard
  preprocessing, on synthetic LPS / oblique / permuted-axis cases and optionally a real dataset.
* ``throughput``: on the same cases in one run, samples/s of the shard pipeline (tar read,
  decode, foreground crop) against a NIfTI + MONAI pipeline (``LoadImaged``, ``Orientationd``,
  ``Spacingd``, ``ScaleIntensityRanged``, ``RandCropByPosNegLabeld``), and their ratio.
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _geometry(args) -> int:
    from sat.data.adapters import list_cases, read_case
    from sat.bench.geometry_check import check_geometry, format_rows, synthetic_case
    from sat.data.recipes import load_recipe

    spacing = tuple(args.spacing)
    rows = []
    for kind in ("lps", "oblique", "permuted"):
        rows += check_geometry(synthetic_case(kind), ["CT"], spacing, args.min_ml)
    if args.input:
        recipe = load_recipe(args.recipe)
        for ref in list_cases(recipe, args.input, None)[: args.max_cases]:
            rows += check_geometry(read_case(ref, recipe), recipe.channels, spacing, args.min_ml)
    print(format_rows(rows))
    bad = [r for r in rows if not r["ok"]]
    summary = {"spacing": list(spacing), "structures": len(rows), "failed": len(bad),
               "max_volume_error_pct": max(r["volume_error_pct"] for r in rows),
               "max_centroid_shift_mm": max(r["centroid_shift_mm"] for r in rows)}
    print(json.dumps(summary))
    return 1 if bad else 0


def _phantom_dataset(root: Path, n: int, scale: float):
    """Write ``n`` CT phantoms (image + exclusive label map) and return a generic recipe for them."""
    from sat.data.phantoms.anatomy import concept_lut
    from sat.data.phantoms.generate import PhantomConfig, generate_case
    from sat.data.phantoms.layouts import MSD_LABELS, MSD_PAINT, save_nifti
    from sat.data.recipes import load_recipe, recipe_from_dict

    cfg = PhantomConfig(spacing_scale=scale, max_shape=(320, 256, 200))
    for i in range(n):
        case = generate_case(0, 3 * i, cfg)  # every third index is a CT (MSD-style) phantom
        save_nifti(case.image, case.affine, root / "images" / f"{case.case_id}.nii.gz")
        save_nifti(concept_lut(MSD_PAINT)[case.parts], case.affine, root / "labels" / f"{case.case_id}.nii.gz")
    base = load_recipe("phantom_msd")
    return recipe_from_dict({
        "name": "bench_phantom", "layout": "generic", "channels": ["CT"], "concepts": base.concepts,
        "labels": {name: int(v) for v, name in MSD_LABELS.items() if v != "0"},
        "source": {"images": ["images/{case}.nii.gz"], "label": "labels/{case}.nii.gz"}})


def _monai_pipeline(spacing, patch, seed: int):
    from monai.transforms import (Compose, EnsureChannelFirstd, LoadImaged, Orientationd,
                                  RandCropByPosNegLabeld, ScaleIntensityRanged, Spacingd)

    keys = ["image", "label"]
    pipe = Compose([LoadImaged(keys, image_only=True), EnsureChannelFirstd(keys),
                    Orientationd(keys, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
                    Spacingd(keys, pixdim=spacing, mode=("bilinear", "nearest")),
                    ScaleIntensityRanged("image", a_min=-500, a_max=1000, b_min=0.0, b_max=1.0, clip=True),
                    RandCropByPosNegLabeld(keys, "label", spatial_size=patch, pos=1, neg=1, num_samples=1,
                                           allow_smaller=True)])
    pipe.set_random_state(seed)
    return pipe


def _time(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t


def _throughput(args) -> int:
    import webdataset as wds

    from sat.data.adapters import list_cases
    from sat.data.recipes import load_recipe
    from sat.data.sampling import SamplingConfig, sample_crop
    from sat.data.shard_build import BuildOptions, build_shards
    from sat.data.shard_format import decode_case

    spacing, patch = tuple(args.spacing), (args.patch,) * 3
    with tempfile.TemporaryDirectory(prefix="sat_bench_") as tmp:
        tmp = Path(tmp)
        if args.input:
            recipe, root = load_recipe(args.recipe), Path(args.input)
        else:
            t = time.perf_counter()
            recipe, root = _phantom_dataset(tmp / "data", args.cases, args.phantom_scale), tmp / "data"
            print(f"generated {args.cases} phantom CT cases in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        refs = [r for r in list_cases(recipe, root, None) if r.label is not None][: args.cases]
        if not refs:
            print("no labelled cases with a label-map file found", file=sys.stderr)
            return 2
        only = "^(" + "|".join(re.escape(r.case_id) for r in refs) + ")$"
        recipe = replace(recipe, spacing=spacing, source=replace(recipe.source, include=only))
        t = time.perf_counter()
        part = build_shards(recipe, root, tmp / "shards", BuildOptions(split=None), progress=False)
        build_s = time.perf_counter() - t
        tars = sorted(str(p) for p in (tmp / "shards").glob("*.tar"))
        cfg, rng = SamplingConfig(patch_size=patch), np.random.default_rng(0)
        # the shard side re-reads the tars from disk on every pass, as training epochs do
        stream = itertools.chain.from_iterable(wds.WebDataset(tars, shardshuffle=False) for _ in itertools.count())

        def shard_step():  # what a training worker does per crop (see datamodule._ToExample)
            case = decode_case(next(stream))
            sample_crop(case.image, case.labels, cfg, rng, pad_value=case.meta.get("image_min"))

        monai = _monai_pipeline(spacing, patch, 0)
        items = itertools.cycle([{"image": str(r.images[0]), "label": str(r.label)} for r in refs])
        shard_step(), monai(next(items))  # warm-up: imports, caches, first-call allocations
        n = args.samples
        t_shard = _time(shard_step, n)
        t_monai = _time(lambda: monai(next(items)), n)
    result = {"cases": len(refs), "concepts": len(recipe.concepts), "samples": n, "patch": list(patch), "spacing": list(spacing),
              "build_s": round(build_s, 2), "build_failures": len(part["failures"]),
              "shard_samples_per_s": round(n / t_shard, 2), "monai_samples_per_s": round(n / t_monai, 2),
              "ratio": round(t_monai / t_shard, 2)}
    print(f"shards      : {n} crops in {t_shard:7.2f} s = {n / t_shard:8.2f} samples/s")
    print(f"NIfTI+MONAI : {n} crops in {t_monai:7.2f} s = {n / t_monai:8.2f} samples/s")
    print(f"ratio       : {t_monai / t_shard:.1f}x  ({len(recipe.concepts)} concept channels per case; "
          f"one-off shard build: {build_s:.1f} s)")
    print(json.dumps(result))
    return 0


def add_arguments(p) -> None:
    """The ``geometry`` and ``throughput`` benchmarks as subcommands of ``p``."""
    sub = p.add_subparsers(dest="bench", required=True)
    g = sub.add_parser("geometry", help="volume / centroid preservation per structure")
    g.add_argument("--spacing", type=float, nargs=3, default=[1.5, 1.5, 3.0])
    g.add_argument("--recipe", default="totalseg_sample", help="recipe of --input")
    g.add_argument("--input", default=None, help="also check this dataset folder (e.g. the real sample)")
    g.add_argument("--max-cases", type=int, default=5)
    g.add_argument("--min-ml", type=float, default=10.0)
    t = sub.add_parser("throughput", help="shards vs NIfTI + MONAI samples/s")
    t.add_argument("--recipe", default="totalseg_sample")
    t.add_argument("--input", default=None, help="dataset folder (default: generated phantoms)")
    t.add_argument("--cases", type=int, default=4)
    t.add_argument("--samples", type=int, default=12, help="crops timed per pipeline")
    t.add_argument("--patch", type=int, default=96)
    t.add_argument("--spacing", type=float, nargs=3, default=[1.5, 1.5, 3.0])
    t.add_argument("--phantom-scale", type=float, default=0.5, help="phantom spacing scale (0.5: ~1.2-1.5 mm)")


def run(args) -> int:
    return {"geometry": _geometry, "throughput": _throughput}[args.bench](args)


# ``sat shards bench``: handed to sat.data.shards_cli by the dispatcher (sat.cli.EXTENSIONS)
SUBCOMMANDS = [("bench", "benchmarks: `sat shards bench throughput|geometry --help`", add_arguments, run)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sat.bench.data_pipeline")
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
