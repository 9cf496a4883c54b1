"""Issue 19 item 3: every mask is checked against what the training data showed for its concept.

Before, a phantom-trained model asked for "liver" on a head-and-neck CT returned 3.5 L of mostly
air with confidence 0.80 and exit 0, and nothing warned.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from sat.infer.plausibility import body_mask, check_mask, domain_note

AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])
STATS = {"liver": {"CT": {"cases": 10, "volume_ml": [1400.0, 2300.0], "intensity_norm": [1.0, 1.3]}},
         "kidney_right": {"CT": {"cases": 10, "volume_ml": [120.0, 230.0], "intensity_norm": [1.0, 1.3]}}}


def _torso() -> np.ndarray:
    """(40, 30, 20) normalised image: air -1, a body ellipse of 1.1 with an air-filled 'lung'."""
    x, y = np.mgrid[:40, :30]
    image = np.full((40, 30, 20), -1.0, np.float32)
    body = ((x - 20) / 16.0) ** 2 + ((y - 15) / 12.0) ** 2 <= 1.0
    image[body] = 1.1
    image[14:20, 10:16, 5:15] = -0.9  # air inside the body
    return image


def _box(x0, x1, y0=10, y1=20, z0=5, z1=15) -> np.ndarray:
    m = np.zeros((40, 30, 20), bool)
    m[x0:x1, y0:y1, z0:z1] = True
    return m


def _checks(result: dict) -> set[str]:
    return {f["check"] for f in result["flags"]}


def test_body_mask_keeps_inner_air_and_drops_outside_air():
    body = body_mask(_torso())
    assert body[16, 12, 8] and not body[1, 1, 1]


def test_plausible_mask_passes_and_each_check_fires():
    image = _torso()
    body = body_mask(image)
    liver = _box(22, 34)  # patient's right (+x in RAS) of the body centre, bright tissue
    ok = check_mask("liver", "none", 1800.0, liver, image, body, AFFINE, "CT", STATS)
    assert ok["ok"] and not ok["flags"] and ok["inside_body_fraction"] == 1.0
    assert _checks(check_mask("liver", "none", 28.0, liver, image, body, AFFINE, "CT", STATS)) == {"volume"}
    in_air = np.zeros_like(liver)
    in_air[0:6, 0:8, :] = True  # outside the body: air intensity too
    assert _checks(check_mask("liver", "none", 1800.0, in_air, image, body, AFFINE, "CT", STATS)) == \
        {"intensity", "outside_body"}
    right_kidney_on_left = _box(8, 14)
    assert _checks(check_mask("kidney_right", "right", 150.0, right_kidney_on_left, image, body, AFFINE,
                              "CT", STATS)) == {"wrong_side"}
    assert not check_mask("kidney_right", "right", 150.0, _box(26, 32), image, body, AFFINE, "CT", STATS)["flags"]
    # no training ranges (older checkpoint) or another modality's: only the geometric checks run
    assert not check_mask("liver", "none", 28.0, liver, image, body, AFFINE, "CT", {})["flags"]
    assert _checks(check_mask("liver", "none", 28.0, liver, image, body, AFFINE, "MR", STATS)) == {"volume"}


def test_wrong_side_uses_world_coordinates():
    """An LPS-like model grid (x axis flipped) still knows the patient's right."""
    image = _torso()
    flipped = np.diag([-4.0, 4.0, 4.0, 1.0])  # index x grows to the patient's left
    kidney = _box(26, 32)  # high index: the patient's left under this affine
    result = check_mask("kidney_right", "right", 150.0, kidney, image, body_mask(image), flipped, "CT", STATS)
    assert _checks(result) == {"wrong_side"}


def test_domain_note_only_for_phantom_models():
    assert "only on synthetic phantoms" in domain_note({"trained_on": {
        "datasets": ["phantom_msd"], "phantom_only": True}})
    assert domain_note({"trained_on": {"datasets": ["totalseg"], "phantom_only": False}}) is None
    assert domain_note({}) is None


def test_reference_masks_of_the_real_ct_pass_the_geometric_checks(sample_dir):
    """The real sample's reference liver and kidneys lie inside the body, on their own sides."""
    import nibabel as nib

    from sat.volume.preprocess import PreprocessSpec, preprocess_case

    ct, seg = nib.load(sample_dir / "ct.nii.gz"), nib.load(sample_dir / "seg.nii.gz")
    names = {v: int(k) for k, v in json.loads((sample_dir / "classes.json").read_text())["class_map"].items()}
    labels = np.asarray(seg.dataobj).astype(np.int16)
    wanted = ["liver", "kidney_left", "kidney_right", "spleen"]
    masks = np.stack([labels == names[c] for c in wanted])
    pre = preprocess_case(np.asarray(ct.dataobj, np.float32), ct.affine, "CT", PreprocessSpec(spacing=(6.0, 6.0, 6.0)),
                          masks=masks)
    image = pre["image"][0]
    body = body_mask(image)
    sides = {"liver": "none", "kidney_left": "left", "kidney_right": "right", "spleen": "none"}
    for c, m in zip(wanted, pre["masks"]):
        result = check_mask(c, sides[c], 100.0, m, image, body, pre["affine"], "CT", {})
        assert result["ok"], (c, result)
    swapped = check_mask("kidney_right", "right", 100.0, pre["masks"][1], image, body, pre["affine"], "CT", {})
    assert _checks(swapped) == {"wrong_side"}  # the left kidney asked as the right one


@pytest.fixture(scope="module")
def odd_checkpoint(checkpoint_with):
    """The tiny model, claiming phantom-only training and ranges no mask can meet."""
    stats = {c: {"CT": {"cases": 3, "volume_ml": [1e6, 2e6], "intensity_norm": [50.0, 60.0]}}
             for c in ("liver", "spleen", "kidney_left")}
    return checkpoint_with("odd.ckpt", concept_stats=stats,
                           trained_on={"datasets": ["phantom_totalseg"], "phantom_only": True})


def test_segment_flags_in_statistics_preview_and_warning_and_strict_exits_3(odd_checkpoint, phantom_ct, tmp_path,
                                                                            capsys):
    from sat.cli import main

    args = ["segment", "-i", str(phantom_ct), "-p", "liver", "--checkpoint", str(odd_checkpoint),
            "--device", "cpu", "--modality", "CT"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0  # flagged, written, exit 0 without --strict
    err = capsys.readouterr().err
    assert "only on synthetic phantoms" in err
    assert "'liver' (liver) looks implausible: volume" in err and "training data showed" in err
    stats = json.loads((tmp_path / "a" / "statistics.json").read_text())["liver"]["plausibility"]
    assert not stats["ok"] and "volume" in {f["check"] for f in stats["flags"]}
    assert json.loads((tmp_path / "a" / "result.json").read_text())["structures"]["liver"]["plausibility_flags"]
    assert main([*args, "-o", str(tmp_path / "b"), "--strict"]) == 3
    assert (tmp_path / "b" / "liver.nii.gz").is_file()  # still written
