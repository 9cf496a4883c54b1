"""Issue 19 item 3, last gap: CT masks are checked in absolute Hounsfield units.

Before, the phantom-trained demo model asked for "liver" on a head-and-neck CT returned 1.8 L
whose mean was about -490 HU, and nothing flagged it: its *normalised* mean (relative to an
air-dominated image) lay inside the training range, half of it was inside the body and its
volume was a liver's. A liver cannot be -490 HU, and a solid organ cannot be mostly air.
"""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.infer.hounsfield import check_hu, tissue_classes
from sat.infer.plausibility import body_mask, check_mask
from sat.knowledge.tree import load_tree
from sat.volume.preprocess import default_rules, normalize_intensity

AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])
OPENKBP_PT = Path(__file__).resolve().parents[3] / "shared" / "real" / "openkbp" / "validation-pats" / "pt_201"


@pytest.fixture(scope="module")
def tree():
    return load_tree()


def _head_and_neck() -> tuple[np.ndarray, np.ndarray]:
    """(40, 30, 20) HU image: air around a 40 HU neck holding a -1000 HU airway; and its
    normalised version (CT window and z-score, as the network sees it)."""
    x, y = np.mgrid[:40, :30]
    hu = np.full((40, 30, 20), -1000.0, np.float32)
    hu[((x - 20) / 16.0) ** 2 + ((y - 15) / 12.0) ** 2 <= 1.0] = 40.0
    hu[14:26, 10:20, 2:18] = -1000.0  # the airway, inside the body
    return hu, normalize_intensity(hu, default_rules()["CT"])[0]


def _flags(result: dict) -> set[str]:
    return {f["check"] for f in result["flags"]}


def test_air_dominated_liver_is_flagged_although_the_relative_checks_pass(tree):
    hu, image = _head_and_neck()
    body = body_mask(image)
    liver = np.zeros(hu.shape, bool)
    liver[20:32, 10:20, 4:16] = True  # half airway, half neck tissue
    norm = float(image[liver].mean())
    stats = {"liver": {"CT": {"cases": 10, "volume_ml": [1400.0, 2300.0], "intensity_norm": [norm - 0.3, norm + 0.3]}}}
    args = ("liver", "none", 1800.0, liver, image, body, AFFINE, "CT", stats)
    assert check_mask(*args)["ok"]  # the gap: normalised intensity, volume and body all pass
    result = check_mask(*args, hu=hu[liver], tissue=tissue_classes(tree, ["liver"]))
    assert _flags(result) == {"hounsfield"}
    assert result["hu_mean"] == pytest.approx(-480.0) and result["air_fraction"] == pytest.approx(0.5)
    assert "mean -480 HU (50% air) is impossible for soft tissue" in result["flags"][0]["message"]
    # the same mask on an MR image: intensities are arbitrary units, no absolute check
    assert "hounsfield" not in _flags(check_mask(*args[:-2], "MR", stats, hu=hu[liver],
                                                 tissue=tissue_classes(tree, ["liver"])))


@pytest.mark.parametrize("concept, values", [
    ("liver", [55.0] * 9 + [-1000.0]),  # a liver touching the lung base
    ("parotid_gland_left", [-90.0] * 8 + [30.0] * 2),  # a fatty parotid
    ("larynx", [-1000.0] * 6 + [40.0] * 4),  # the larynx holds air
    ("esophagus", [-1000.0] * 5 + [40.0] * 5),  # so can the oesophagus
    ("lung_upper_lobe_left", [-850.0] * 10),
    ("colon", [-1000.0] * 5 + [30.0] * 5),
    ("mandible", [900.0] * 10),
    ("aorta", [450.0] * 10),  # arterial contrast
    ("urinary_bladder", [1100.0] * 10),  # excreted contrast
])
def test_correct_masks_are_not_flagged(tree, concept, values):
    assert not check_hu(concept, np.array(values), None, tissue_classes(tree, [concept]))["flags"]


@pytest.mark.parametrize("concept, values, words", [
    ("heart", [-1000.0] * 5 + [40.0] * 5, "impossible for blood"),
    ("mandible", [-100.0] * 10, "impossible for bone"),
    ("spleen", [-500.0] * 6 + [700.0] * 4, "60% of the mask is air"),  # mean in range, mostly air
    ("lung_left", [900.0] * 10, "impossible for air-filled"),
])
def test_impossible_masks_are_flagged(tree, concept, values, words):
    flags = check_hu(concept, np.array(values), None, tissue_classes(tree, [concept]))["flags"]
    assert len(flags) == 1 and words in flags[0]["message"]


def test_tissue_classes_come_from_the_tree(tree):
    assert tissue_classes(tree, ["liver_segment_1"]) == {"soft"}  # a part of an organ
    assert tissue_classes(tree, ["lung_upper_lobe_left"]) >= {"air_filled"}
    assert tissue_classes(tree, ["parotid_glands"]) == {"soft"}  # a group: its members'
    assert tissue_classes(tree, ["kidney_left", "liver"]) == {"soft"}
    for unchecked in (["liver_tumor"], ["body"], ["liver", "kidney_cyst"], ["no_such_concept"]):
        assert tissue_classes(tree, unchecked) is None


def test_measured_training_hu_is_preferred_over_the_tissue_class(tree):
    soft = tissue_classes(tree, ["liver"])
    measured = {"cases": 8, "hu_cases": 8, "intensity_hu": [40.0, 70.0]}
    message = check_hu("liver", np.full(10, -200.0), measured, soft)["flags"][0]["message"]
    assert "far outside the 40 to 70 HU of liver in training CT scans" in message
    assert not check_hu("liver", np.full(10, 180.0), measured, soft)["flags"]  # within the margin
    few = {**measured, "hu_cases": 2}  # too few cases: the tissue class decides
    assert not check_hu("liver", np.full(10, -200.0), few, soft)["flags"]


def test_segmenter_checks_hu_of_the_original_image_on_the_mask(segmenter, phantom_ct):
    from sat.io.volume import load_volume

    vol = load_volume(phantom_ct)
    (ct,) = segmenter.segment(vol, ["liver"], "CT").structures
    assert ct.mask.any()
    assert ct.stats["plausibility"]["hu_mean"] == pytest.approx(float(vol.array[ct.mask].mean()), abs=0.1)
    (mr,) = segmenter.segment(vol, ["liver"], "MR").structures
    assert mr.stats["plausibility"]["hu_mean"] is None


def test_export_records_training_hu_ranges(tiny_phantoms, tmp_path):
    from sat.data.concept_stats import concept_stats
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards

    build_shards(load_recipe("phantom_totalseg"), tiny_phantoms / "phantom_totalseg", tmp_path,
                 BuildOptions(split=None, workers=0, spacing=(8.0, 8.0, 8.0)), progress=False)
    stats = concept_stats({"phantom_totalseg": str(tmp_path / "phantom_totalseg-*.tar")},
                          {"kidneys": ["kidney_left", "kidney_right"]})
    liver, lung, kidneys = (stats[c]["CT"] for c in ("liver", "lung_left", "kidneys"))
    assert liver["hu_cases"] == liver["cases"] >= 3
    assert -50.0 < liver["intensity_hu"][0] <= liver["intensity_hu"][1] < 150.0  # rendered soft tissue
    assert lung["intensity_hu"][1] < -600.0
    assert kidneys["hu_cases"] == kidneys["cases"]  # a group: its parts' volume-weighted mean


def test_reference_masks_of_real_scans_pass(tree, sample_dir):
    """Every reference structure of the real abdominal CT (41, through its recipe's concept map;
    the colon is half gas) and of OpenKBP pt_201 (when present; larynx and oesophagus hold air)."""
    from sat.data.recipes import load_recipe

    ct, seg = nib.load(sample_dir / "ct.nii.gz").get_fdata(), np.asarray(nib.load(sample_dir / "seg.nii.gz").dataobj)
    value_of = {name: int(v) for v, name in json.loads((sample_dir / "classes.json").read_text())["class_map"].items()}
    checked, unchecked = 0, []
    for concept, (source, *_) in load_recipe("totalseg_sample").concepts.items():
        mask = seg == value_of[source]
        if mask.any():
            classes = tissue_classes(tree, [concept])
            unchecked += [concept] if classes is None else []
            assert not check_hu(concept, ct[mask], None, classes)["flags"], concept
            checked += 1
    assert checked == 41 and unchecked == ["costal_cartilages"]
    if OPENKBP_PT.is_dir():
        ct = nib.load(OPENKBP_PT / "ct.nii.gz").get_fdata()
        names = {"Brainstem": "brainstem", "Esophagus": "esophagus", "Larynx": "larynx", "Mandible": "mandible",
                 "LeftParotid": "parotid_gland_left", "RightParotid": "parotid_gland_right",
                 "SpinalCord": "spinal_cord"}
        for file, concept in names.items():
            mask = nib.load(OPENKBP_PT / "segmentations" / f"{file}.nii.gz").get_fdata() > 0
            assert not check_hu(concept, ct[mask], None, tissue_classes(tree, [concept]))["flags"], concept
