"""Issue 19 item 1: ``--tta`` must never make masks worse.

A model never trained on left-right mirrored crops was asked about mirrored anatomy and its
masks got much worse (spleen Dice 0.91 -> 0.0). The checkpoint now records whether training
flipped crops (``lr_flip_prob``); without flips the mirrored pass is skipped with a warning.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from sat.infer.segmenter import Segmenter


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def test_tta_dice_never_below_plain_on_phantoms(segmenter, tiny_phantoms, caplog):
    from sat.data.adapters import list_cases, load_case
    from sat.data.recipes import load_recipe
    from sat.io.volume import load_volume

    recipe = load_recipe("phantom_totalseg")
    ref = list_cases(recipe, tiny_phantoms / "phantom_totalseg")[0]
    case = load_case(ref, recipe)
    vol = load_volume(ref.images[0])
    names = [segmenter.tree.get(c).name for c in case["concepts"] if c in segmenter.trained]
    gt = {segmenter.tree.get(c).name: m for c, m in zip(case["concepts"], case["masks"])}
    plain = segmenter.segment(vol, names, "CT")
    with caplog.at_level(logging.WARNING, logger="sat.infer.segmenter"):
        segmenter._warned.discard("tta")
        tta = segmenter.segment(vol, names, "CT", tta=True)
    assert "not trained with left-right flips" in caplog.text
    assert len(plain.structures) == len(names) >= 10
    for p, t in zip(plain.structures, tta.structures):
        assert _dice(t.mask, gt[p.prompt]) >= _dice(p.mask, gt[p.prompt]) - 0.01, p.prompt


def test_checkpoint_records_flips_and_tta_follows_it(checkpoint_with, fast_resolver, phantom_ct):
    flipped = Segmenter.from_checkpoint(checkpoint_with("flip.ckpt", lr_flip_prob=0.5), device="cpu",
                                        resolver=fast_resolver)
    plain = Segmenter.from_checkpoint(checkpoint_with("noflip.ckpt", lr_flip_prob=0.0), device="cpu",
                                      resolver=fast_resolver)
    assert flipped.flip_trained and not plain.flip_trained
    flipped.segment(phantom_ct, ["left kidney"], "CT", tta=True)
    assert len(flipped._cache["features"]) == 2  # trained with flips: the mirrored pass runs
    plain.segment(phantom_ct, ["left kidney"], "CT", tta=True)
    assert len(plain._cache["features"]) == 1


def test_export_records_training_facts(tiny_shards):
    from sat.data.sampling import SamplingConfig
    from sat.train.export import training_facts

    class _Data:  # the attributes export reads from a ShardDataModule
        train = {"phantom_totalseg": str(tiny_shards / "phantom_totalseg-all-*.tar")}
        sampling = SamplingConfig(lr_flip_prob=0.5)

        def _tree_maps(self):
            return {"kidneys": ["kidney_left", "kidney_right"]}, {}

    facts = training_facts(_Data())
    assert facts["lr_flip_prob"] == 0.5
    assert facts["trained_on"] == {"datasets": ["phantom_totalseg"], "phantom_only": True}
    liver = facts["concept_stats"]["liver"]["CT"]
    assert liver["cases"] >= 1 and 500 < liver["volume_ml"][0] <= liver["volume_ml"][1] < 5000
    assert liver["intensity_norm"][0] <= liver["intensity_norm"][1]
    kidneys = facts["concept_stats"]["kidneys"]["CT"]  # a group, as training adds it
    assert kidneys["volume_ml"][0] > facts["concept_stats"]["kidney_left"]["CT"]["volume_ml"][0]
    assert training_facts(None) == {}


@pytest.fixture(scope="module")
def tiny_shards(tiny_phantoms, tmp_path_factory):
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards

    out = tmp_path_factory.mktemp("tta_shards")
    build_shards(load_recipe("phantom_totalseg"), tiny_phantoms / "phantom_totalseg", out,
                 BuildOptions(split=None, workers=0, spacing=(8.0, 8.0, 8.0)), progress=False)
    return out


def test_tta_check_command_prints_the_table(tiny_checkpoint, tiny_phantoms, capsys):
    from sat.cli import main

    assert main(["tta-check", "--checkpoint", str(tiny_checkpoint), "--phantoms", str(tiny_phantoms),
                 "--max-cases", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained with left-right flips: False" in out and "always mirrored" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("liver ", "spleen "))]
    assert rows and all(float(r[-1]) >= float(r[2]) - 0.01 for r in rows)  # TTA now never below no TTA
    assert "largest TTA-now loss against no TTA: 0.000" in out
