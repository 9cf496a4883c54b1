"""Intensity rules per recipe: a fixed CT scale, recorded in the shards and carried into the checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.data.recipes import recipe_from_dict
from sat.data.shard_build import BuildOptions, build_shards
from sat.data.shard_rules import shard_rules, training_spec
from sat.volume.preprocess import IntensityRule, PreprocessSpec, normalize_intensity

FIXED = {"clip": "window", "low": -500, "high": 1000, "foreground": -500, "scale": "fixed", "center": 30,
         "spread": 230}


def _recipe(name: str, intensity: dict | None = None):
    raw = {"name": name, "layout": "generic", "channels": ["CT"], "spacing": [4.0, 4.0, 4.0],
           "source": {"images": ["{split}/{case}/ct.nii.gz"], "masks": "{split}/{case}/segmentations",
                      "missing_masks": "unannotated", "split_map": {"train-pats": "train"}},
           "concepts": {"brainstem": ["Brainstem"]}}
    return recipe_from_dict({**raw, **({"intensity": intensity} if intensity else {})})


def _dataset(root: Path, body: slice) -> Path:
    """Two patients: soft tissue (40 HU) in ``body`` of a 16^3 field of view, air elsewhere."""
    for case in ("pt_1", "pt_2"):
        ct = np.full((16, 16, 16), -1024, np.int16)
        ct[body, body, :] = 40
        mask = np.zeros(ct.shape, np.uint8)
        mask[7:9, 7:9, 4:12] = 1
        folder = root / "train-pats" / case
        (folder / "segmentations").mkdir(parents=True)
        nib.save(nib.Nifti1Image(ct, np.diag([4.0, 4.0, 4.0, 1.0])), str(folder / "ct.nii.gz"))
        nib.save(nib.Nifti1Image(mask, np.diag([4.0, 4.0, 4.0, 1.0])), str(folder / "segmentations" / "Brainstem.nii.gz"))
    return root


def test_fixed_scale_gives_one_tissue_one_value_whatever_the_air_around_it():
    small, large = np.full((20, 20, 20), -1024.0), np.full((20, 20, 20), -1024.0)
    small[8:12, 8:12, 8:12], large[2:18, 2:18, 2:18] = 40.0, 40.0
    fixed, image = IntensityRule(**FIXED), IntensityRule()
    a, b = normalize_intensity(small, fixed)[0], normalize_intensity(large, fixed)[0]
    assert a[10, 10, 10] == pytest.approx(b[10, 10, 10]) == pytest.approx((40 - 30) / 230)
    assert normalize_intensity(small, fixed)[1] == pytest.approx((-500 - 30) / 230)  # the crop threshold
    a, b = normalize_intensity(small, image)[0], normalize_intensity(large, image)[0]
    assert abs(a[10, 10, 10] - b[10, 10, 10]) > 1.0  # the image's own statistics move the tissue


def test_bad_rules_are_named_and_old_specs_keep_the_image_scale():
    with pytest.raises(ValueError, match="'minmax'"):
        IntensityRule(scale="minmax")
    with pytest.raises(ValueError, match="spread must be > 0, got 0"):
        IntensityRule(**{**FIXED, "spread": 0})
    with pytest.raises(ValueError, match="'histogram'"):
        IntensityRule(clip="histogram")
    old = {"spacing": [4, 4, 4], "rules": {"CT": {"clip": "window", "low": -500, "high": 1000, "foreground": -500}}}
    assert PreprocessSpec.from_dict(old).rules["CT"].scale == "image"
    spec = PreprocessSpec(rules={"CT": IntensityRule(**FIXED)})
    assert PreprocessSpec.from_dict(spec.to_dict()).rules["CT"] == IntensityRule(**FIXED)
    with pytest.raises(ValueError, match="intensity"):
        _recipe("kbp", {**FIXED, "gamma": 2})


def test_shards_record_the_rule_rebuild_when_it_changes_and_the_checkpoint_spec_carries_it(tmp_path):
    from sat.data.shard_format import decode_case
    from sat.data.shard_verify import iter_tar_samples

    src = _dataset(tmp_path / "kbp", slice(4, 12))
    fixed, plain = _recipe("kbp", FIXED), _recipe("plain")
    opts = BuildOptions(split="train", workers=0)
    part = build_shards(fixed, src, tmp_path / "fixed", opts, progress=False)
    assert part["intensity"]["scale"] == "fixed" and not part["failures"]
    case = decode_case(next(iter(iter_tar_samples(next((tmp_path / "fixed").glob("*.tar"))))))
    assert case.meta["intensity"] == part["intensity"]
    inside = case.labels.masks([0])[0]
    assert np.allclose(case.image[0][inside], (40 - 30) / 230, atol=1e-3)
    assert build_shards(fixed, src, tmp_path / "fixed", opts, progress=False)["skipped"]
    changed = _recipe("kbp")  # same name, default rule
    rebuilt = build_shards(changed, src, tmp_path / "fixed", opts, progress=False)
    assert not rebuilt["skipped"] and rebuilt["intensity"]["scale"] == "image"
    # training reads the rules back; two CT datasets normalised differently are refused
    build_shards(fixed, src, tmp_path / "fixed2", opts, progress=False)
    build_shards(plain, src, tmp_path / "plain", opts, progress=False)
    train = {"kbp": str(tmp_path / "fixed2" / "*.tar")}
    assert shard_rules(train)["CT"] == IntensityRule(**FIXED)
    spec = training_spec((4, 4, 4), {"MR": (1, 1, 1)}, train)
    assert spec.rules["CT"].scale == "fixed" and spec.rules["MR"].scale == "image"
    with pytest.raises(ValueError, match="normalise CT differently"):
        shard_rules({**train, "plain": str(tmp_path / "plain" / "*.tar")})
    assert json.loads((tmp_path / "fixed2" / "manifest.json").read_text())


def test_a_fine_tune_refuses_shards_normalised_unlike_its_starting_checkpoint(tmp_path):
    from types import SimpleNamespace

    from sat.train.module import SATModule
    from sat.volume.preprocess import default_rules

    src = _dataset(tmp_path / "kbp", slice(4, 12))
    build_shards(_recipe("kbp", FIXED), src, tmp_path / "fixed", BuildOptions(split="train", workers=0),
                 progress=False)
    dm = SimpleNamespace(train={"kbp": str(tmp_path / "fixed" / "*.tar")})

    def fine_tune(rules):
        return SimpleNamespace(init_rules=rules, trainer=SimpleNamespace(datamodule=dm),
                               interaction=SimpleNamespace(init_checkpoint="universal.ckpt"))

    with pytest.raises(ValueError, match="universal.ckpt was trained with"):
        SATModule.on_fit_start(fine_tune(default_rules()))  # started from a per-scan z-score model
    SATModule.on_fit_start(fine_tune({**default_rules(), "CT": IntensityRule(**FIXED)}))  # same rule: fine
    SATModule.on_fit_start(fine_tune(None))  # no starting checkpoint: nothing to compare
