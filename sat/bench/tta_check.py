"""``sat tta-check``: held-out phantom Dice per structure without TTA, with the old always-mirrored
TTA, and with TTA as the checkpoint allows it now (see :class:`sat.infer.segmenter.Segmenter`).

    sat tta-check --checkpoint outputs/demo/model.ckpt --phantoms outputs/demo/data/phantoms

Every held-out (``test`` split) case of the three phantom sources is segmented by canonical names
three times. "always mirrored" forces the left-right mirrored pass whatever the checkpoint says,
which is what ``--tta`` did before checkpoints recorded ``lr_flip_prob``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sat.errors import InputError

RECIPES = ("phantom_msd", "phantom_nnunet", "phantom_totalseg")


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def tta_dice(seg, phantoms: Path, max_cases: int | None = None) -> dict[str, dict[str, float]]:
    """``{concept: {"plain", "always_mirrored", "tta_now", "n"}}``: mean Dice over held-out cases."""
    from sat.data.adapters import list_cases, load_case
    from sat.data.recipes import load_recipe
    from sat.io.volume import load_volume

    rows: dict[str, dict[str, list[float]]] = {}
    flip_trained = seg.flip_trained
    for name in RECIPES:
        if not (phantoms / name).is_dir():
            continue
        recipe = load_recipe(name)
        for ref in list_cases(recipe, phantoms / name, split="test")[:max_cases]:
            case = load_case(ref, recipe)
            vol = load_volume(ref.images[0])
            concepts = [c for c in case["concepts"] if c in seg.trained]
            prompts = [seg.tree.get(c).name for c in concepts]
            gt = dict(zip(case["concepts"], case["masks"]))
            runs = {"plain": seg.segment(vol, prompts, recipe.modality, tta=False)}
            seg.flip_trained = True
            try:
                runs["always_mirrored"] = seg.segment(vol, prompts, recipe.modality, tta=True)
            finally:
                seg.flip_trained = flip_trained
            runs["tta_now"] = seg.segment(vol, prompts, recipe.modality, tta=True)
            for label, result in runs.items():
                for c, s in zip(concepts, result.structures):
                    rows.setdefault(c, {}).setdefault(label, []).append(_dice(s.mask, gt[c]))
    return {c: {**{k: float(np.mean(v)) for k, v in r.items()}, "n": len(r["plain"])} for c, r in sorted(rows.items())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat tta-check", description=__doc__.splitlines()[0].replace("``", ""))
    p.add_argument("--checkpoint", required=True, help="model checkpoint")
    p.add_argument("--phantoms", required=True, help="phantom root (holding phantom_msd/, phantom_nnunet/, ...)")
    p.add_argument("--max-cases", type=int, default=None, help="held-out cases per source at most")
    args = p.parse_args(argv)
    from sat.infer.segmenter import Segmenter

    root = Path(args.phantoms)
    if not any((root / n).is_dir() for n in RECIPES):
        raise InputError(f"no phantom source folder ({', '.join(RECIPES)}) in {root}")
    seg = Segmenter.from_checkpoint(args.checkpoint, device="cpu")
    table = tta_dice(seg, root, args.max_cases)
    print(f"checkpoint {args.checkpoint}: trained with left-right flips: {seg.flip_trained} "
          f"(lr_flip_prob {seg.meta.extra.get('lr_flip_prob', 'not recorded')})")
    print(f"{'structure':<22} {'n':>3} {'no TTA':>8} {'always mirrored':>16} {'TTA now':>8}")
    for c, r in table.items():
        print(f"{c:<22} {r['n']:>3} {r['plain']:>8.3f} {r['always_mirrored']:>16.3f} {r['tta_now']:>8.3f}")
    worst = min((r["tta_now"] - r["plain"] for r in table.values()), default=0.0)
    print(f"largest TTA-now loss against no TTA: {max(0.0, -worst):.3f}")
    return 0
