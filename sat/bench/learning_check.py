"""``sat learning-check``: does the text-prompted pipeline learn real anatomy on real geometry?

Builds shards from the real CT sample (``../shared/samples/totalseg_ct``, recipe ``totalseg_sample``),
trains ``configs/experiment/real_sample.yaml`` for a fixed wall-clock budget, then segments the same
scan by text (every present structure's canonical name) and scores Dice per structure against the
reference. It overfits one scan on purpose: it checks learning and the cost of the text-query
design, not generalisation. Concept embeddings come from the knowledge-pretrained text encoder by
default (made from the knowledge tree alone when missing; raw MiniLM embeds "left seventh rib" and
"right seventh rib" at cosine 0.95, which the decoder must first learn to pull apart). Prints a table and writes ``OUT/learning_check.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from sat.errors import InputError
from sat.resources import configs_dir, shared_dir
from sat.text.ensure import add_text_encoder_args, text_encoder
from sat.train.experiment import ExperimentConfig, fit, trained_steps


def default_sample() -> Path:
    return (shared_dir() or Path("../shared")) / "samples" / "totalseg_ct"


def default_config() -> Path:
    return configs_dir("experiment") / "real_sample.yaml"


def build(sample: Path, out: Path) -> Path:
    """Shards of the sample (its one case is the train split) under ``out/shards``."""
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards

    shards = out / "shards"
    report = build_shards(load_recipe("totalseg_sample"), sample, shards,
                          BuildOptions(split="train", workers=1), progress=False)
    if report["failures"]:
        raise InputError(f"the sample at {sample} did not build: {report['failures']}")
    return shards


def experiment(out: Path, shards: Path, config: Path, minutes: float, overrides: dict | None = None,
               cli_overrides: tuple[str, ...] = ()) -> ExperimentConfig:
    """The check's training run: ``config`` on the sample's shards for ``minutes``, run folder
    ``out/run``, checkpoint ``out/model.ckpt``."""
    return ExperimentConfig(configs=(config,), export=out / "model.ckpt", root=out / "run", max_minutes=minutes,
                            overrides={"data.train": {"totalseg_sample": str(shards / "totalseg_sample-train-*.tar")},
                                       **(overrides or {})},
                            cli_overrides=tuple(cli_overrides))


def score(sample: Path, ckpt: Path) -> dict:
    """Dice of every structure present in the reference, prompted by its canonical name."""
    from sat.data.adapters import list_cases, load_case
    from sat.data.recipes import load_recipe
    from sat.eval.metrics import dice
    from sat.io.volume import load_volume
    from sat.infer.segmenter import Segmenter

    recipe = load_recipe("totalseg_sample")
    (ref,) = list_cases(recipe, sample, split="train")
    case = load_case(ref, recipe)
    present = [(c, m) for c, m in zip(case["concepts"], case["masks"]) if m.any()]
    seg = Segmenter.from_checkpoint(ckpt, device="cpu", tta=False)
    names = [seg.tree.get(c).name for c, _ in present]
    t0 = time.perf_counter()
    res = seg.segment(load_volume(ref.images[0]), names, modality="CT")
    seconds = time.perf_counter() - t0
    by_name = {s.prompt: s.mask for s in res.structures}
    per = {c: dice(by_name.get(n, np.zeros_like(m)), m) for (c, m), n in zip(present, names)}
    return {"per_structure": per, "mean_dice": float(np.mean(list(per.values()))),
            "structures": len(per), "segment_s": seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat learning-check", description=__doc__)
    p.add_argument("--sample", type=Path, default=default_sample(), help="folder of the real CT sample")
    p.add_argument("--out", type=Path, default=Path("outputs/learning_check"))
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget")
    p.add_argument("--config", type=Path, default=default_config())
    add_text_encoder_args(p)
    p.add_argument("overrides", nargs="*", help="extra LightningCLI overrides, e.g. --trainer.max_steps=50")
    args, extra = p.parse_known_args(argv)
    if not (args.sample / "ct.nii.gz").is_file():
        raise InputError(f"no real CT sample at {args.sample} (expected ct.nii.gz, seg.nii.gz, classes.json)")
    if args.minutes <= 0:
        raise InputError(f"--minutes must be positive, got {args.minutes}")
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shards = build(args.sample, args.out)
    encoder = text_encoder(args.text_encoder, args.text_minutes)  # made from the tree, never the scan
    t1 = time.perf_counter()
    text = {"model.text.finetuned": encoder} if encoder else {}
    ckpt = fit(experiment(args.out, shards, args.config, args.minutes, text, (*args.overrides, *extra)))
    t2 = time.perf_counter()
    result = score(args.sample, ckpt)
    result["timing_s"] = {"shards_and_text": t1 - t0, "train": t2 - t1, "evaluate": time.perf_counter() - t2}
    result["text_encoder"] = encoder or "raw MiniLM"
    steps = trained_steps(ckpt)
    result["train_steps"] = steps
    (args.out / "learning_check.json").write_text(json.dumps(result, indent=1))
    for c, d in sorted(result["per_structure"].items(), key=lambda kv: kv[1]):
        print(f"{c:32} {d:.3f}")
    t = result["timing_s"]
    print(f"mean Dice {result['mean_dice']:.3f} over {result['structures']} structures | "
          f"training {t['train']:.0f} s ({steps} steps) | segmentation {result['segment_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
