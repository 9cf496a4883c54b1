"""``sat benchmark real --profile quick`` on one real case per split of OpenKBP and MSD Task04.

Runs every code path (recipes on the real files, shards, the universal fit, both specialists,
scoring on the original grids, robustness, laterality, figures and the report); its numbers mean
nothing. Skips when ``../shared/real`` is absent.
"""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.bench.config import load_profile, resolve_path

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"
needs_real = pytest.mark.skipif(not (REAL / "openkbp").is_dir() or not (REAL / "msd_hippocampus").is_dir(),
                                reason="../shared/real is absent")


def test_profiles_parse_and_split_the_budget():
    full = load_profile("real", "full")
    assert set(full.datasets) == {"openkbp", "hippocampus"}
    assert full.share("openkbp") == pytest.approx(2 / 3) and full.minutes > 0
    assert load_profile("real", "quick").steps >= 1


def test_specialists_follow_the_universal_runs_sampling_overrides():
    from sat.bench.real import specialist_sampling

    base = {"data": {"sampling": {"foreground_prob": 0.8, "lr_flip_prob": 0.5}}}
    got = specialist_sampling(base, {"data.sampling.soft_targets": True, "data.sampling.foreground_prob": 0.9,
                                     "model.optim.lr": 0.1})
    assert got == {"foreground_prob": 0.9, "lr_flip_prob": 0.5, "soft_targets": True}
    assert specialist_sampling({}, {}) == {}
    assert base["data"]["sampling"]["foreground_prob"] == 0.8  # the base config is not changed


def test_specialists_round_trip_and_bad_files_are_named(tmp_path):
    import torch

    from sat.bench.real_specialist import Specialist, build_dynunet, load_specialists, save_specialists
    from sat.errors import InputError

    net = build_dynunet((4, 8, 16), 2).eval()
    spec = Specialist(net, ["brainstem", "larynx"], (4.0, 4.0, 3.0), (32, 32, 32), 12, 3.5)
    path = save_specialists({"openkbp": spec}, (4, 8, 16), tmp_path / "specialists.pt")
    back = load_specialists(path)["openkbp"]
    assert (back.concepts, back.spacing, back.patch, back.steps, back.train_s) == \
        (spec.concepts, spec.spacing, spec.patch, 12, 3.5)
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert torch.equal(back.net(x), net(x))
    torch.save({"openkbp": net.state_dict()}, tmp_path / "old.pt")  # weights without how they were trained
    for bad in (tmp_path / "old.pt", tmp_path / "missing.pt"):
        with pytest.raises(InputError, match=bad.name):
            load_specialists(bad)


def test_rescore_needs_a_finished_run(tmp_path):
    from sat.bench.real import run_real
    from sat.errors import InputError

    with pytest.raises(InputError, match="nothing to rescore"):
        run_real(load_profile("real", "quick"), tmp_path, rescore=True)


@needs_real
def test_quick_profile_end_to_end(tmp_path):
    from sat.bench.real import run_real
    from sat.bench.real_report import write_real_report
    from sat.io.volume import load_volume
    from sat.infer.segmenter import Segmenter

    profile = load_profile("real", "quick")
    profile.checkpoint = str(tmp_path / "universal.ckpt")
    result = run_real(profile, tmp_path / "work")
    md = write_real_report(result, tmp_path / "results", "sat benchmark real --profile quick")
    text = md.read_text()
    for heading in ("Per structure", "difference, 95 % CI", "Prompt robustness", "Laterality", "overlay_openkbp.png"):
        assert heading in text
    rows = json.loads((tmp_path / "results" / "real_benchmark" / "rows.json").read_text())["rows"]
    models = {(r["model"], r["dataset"]) for r in rows}
    assert models == {(m, d) for m in ("universal", "specialist") for d in ("openkbp", "msd_task04_hippocampus")}
    # only contoured organs are scored: the validation case's files decide the structures
    case = next(r["case"] for r in rows if r["dataset"] == "openkbp")
    seg_dir = resolve_path(profile.datasets["openkbp"].root) / "validation-pats" / case / "segmentations"
    scored = {r["concept"] for r in rows if r["case"] == case and r["model"] == "specialist"}
    assert len(scored) == len(list(seg_dir.glob("*.nii.gz")))
    # label rows are scored as deployed: every setting's Dice kept, the chosen one named, plain kept as raw
    labels = [r for r in rows if r["style"] == "label"]
    assert all({"grid", "setting", "raw"} <= set(r) for r in labels)
    assert all(r["dice"] == pytest.approx(r["grid"][r["setting"]]) for r in labels if r["model"] == "specialist")
    from sat.model.checkpoint import load_checkpoint
    advice = load_checkpoint(profile.checkpoint)[1].extra["inference"]
    assert isinstance(advice["thresholds"], dict) and isinstance(advice["largest_component"], list)
    # the recipe's fixed CT scale went from the shards into the checkpoint; MR keeps the default
    rules = load_checkpoint(profile.checkpoint)[1].preprocess.rules
    assert rules["CT"].scale == "fixed" and rules["MR"].scale == "image"
    # the checkpoint is self-contained and answers in the original (P, L, I) grid
    ct = resolve_path(profile.datasets["openkbp"].root) / "validation-pats" / case / "ct.nii.gz"
    seg = Segmenter.from_checkpoint(profile.checkpoint, device="cpu")
    mask = seg.segment(load_volume(ct), ["left parotid gland"], modality="CT").structures
    img = nib.load(str(ct))
    assert not mask or (mask[0].mask.shape == img.shape)
    assert np.allclose(load_volume(ct).affine, img.affine)
    # an existing checkpoint is scored as it is: no shards, no training, no specialists
    again = run_real(profile, tmp_path / "again", checkpoint=Path(profile.checkpoint), specialists=False)
    assert {r["model"] for r in again["rows"]} == {"universal"} and again["shards"] == {}
    assert again["universal"]["steps"] == result["universal"]["steps"]
    # the finished run is scored again without training, with another overlap that the checkpoint then recommends
    profile.overlap = 0.5
    rescored = run_real(profile, tmp_path / "work", rescore=True)
    assert rescored["rescored"] and rescored["specialists"] == result["specialists"]
    assert rescored["universal"]["train_s"] == pytest.approx(result["universal"]["train_s"])
    assert {(r["model"], r["dataset"]) for r in rescored["rows"]} == models
    assert rescored["total_s"] > result["total_s"] - result["eval_s"]
    assert Segmenter.from_checkpoint(profile.checkpoint, device="cpu").overlap == 0.5
