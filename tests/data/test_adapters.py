"""Source adapters on small on-disk datasets with real-world quirks.

LPS and oblique affines, 4D multi-channel MR, macOS ``._`` files, unlabelled test images, missing
labels, region-based nnU-Net labels, NRRD, DICOM series (files named against slice order) with
PNG-slice ground truth, path patterns with splits: each read must land every label on its image.
"""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.data.adapters import codes_from_masks, list_cases, load_case, read_case
from sat.data.recipes import recipe_from_dict
from sat.io.volume import load_volume

SHAPE = (12, 10, 8)
LPS = np.array([[-2.0, 0, 0, 40], [0, -2.0, 0, 30], [0, 0, 3.0, -50], [0, 0, 0, 1]])
_r = np.deg2rad(20)
OBLIQUE = np.array([[2 * np.cos(_r), -2 * np.sin(_r), 0, 5], [2 * np.sin(_r), 2 * np.cos(_r), 0, -7],
                    [0, 0, 2.5, 11], [0, 0, 0, 1]])
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "


def _labels(seed: int) -> np.ndarray:
    """(X, Y, Z) uint8 map: 1 in a box, 2 nested inside it, 3 elsewhere."""
    lab = np.zeros(SHAPE, np.uint8)
    lab[2:9, 2:8, 1:6] = 1
    lab[4:6, 3:5, 2:4] = 2
    lab[9 + seed % 2:11, 1:3, 5:7] = 3
    return lab


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def _recipe(**kw):
    base = {"name": "t", "layout": "msd", "channels": ["CT"], "concepts": {"liver": ["liver"]}}
    return recipe_from_dict({**base, **kw})


@pytest.fixture()
def msd(tmp_path) -> Path:
    """MSD folder: 4D two-channel MR in LPS, ._ junk, one unlabelled test image, one missing label."""
    root = tmp_path / "Task99"
    training = []
    for i in range(3):
        img = np.stack([np.full(SHAPE, 10.0 * (i + 1)), np.full(SHAPE, -5.0)], -1).astype(np.float32)
        img[..., 0] += _labels(i)  # channel 0 carries the labels, channel 1 is constant
        _save(img, LPS, root / "imagesTr" / f"case_{i}.nii.gz")
        if i < 2:
            _save(_labels(i), LPS, root / "labelsTr" / f"case_{i}.nii.gz")
        training.append({"image": f"./imagesTr/case_{i}.nii.gz", "label": f"./labelsTr/case_{i}.nii.gz"})
    for junk in ("imagesTr/._case_0.nii.gz", "labelsTr/._case_0.nii.gz", "imagesTr/.DS_Store"):
        (root / junk).write_bytes(APPLE_DOUBLE)
    training.append({"image": "./imagesTr/._case_0.nii.gz", "label": "./labelsTr/._case_0.nii.gz"})
    _save(np.zeros((*SHAPE, 2), np.float32), LPS, root / "imagesTs" / "case_9.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "modality": {"0": "FLAIR", "1": "T1w"}, "labels": {"0": "background", "1": "liver", "2": "tumour", "3": "spleen"},
        "training": training, "test": ["./imagesTs/case_9.nii.gz"]}))
    return root


MSD_RECIPE = {"layout": "msd", "channels": ["MR", "MR"],
              "concepts": {"liver": ["liver", "tumour"], "liver_tumor": ["tumour"], "spleen": [3]}}


def test_msd_4d_channels_lps_hidden_files_and_unlabelled(msd):
    recipe = _recipe(**MSD_RECIPE)
    refs = list_cases(recipe, msd)
    assert [r.case_id for r in refs] == ["case_0", "case_1", "case_2"]  # no ._ entries
    assert [r.case_id for r in list_cases(recipe, msd, "test")] == ["case_9"]
    assert not list_cases(recipe, msd, "test")[0].labelled
    case = load_case(refs[1], recipe)
    lab = _labels(1)
    assert case["image"].shape == (2, *SHAPE) and np.allclose(case["affine"], LPS)
    assert np.allclose(case["image"][0], 20.0 + lab) and np.allclose(case["image"][1], -5.0)
    assert case["concepts"] == ["liver", "liver_tumor", "spleen"]
    assert np.array_equal(case["masks"][0], (lab == 1) | (lab == 2))  # overlap: liver includes tumour
    assert np.array_equal(case["masks"][1], lab == 2)
    assert np.array_equal(case["masks"][2], lab == 3)
    with pytest.raises(FileNotFoundError, match="case_2"):
        read_case(refs[2], recipe)  # label listed in dataset.json but missing on disk
    with pytest.raises(ValueError, match="no labels"):
        read_case(list_cases(recipe, msd, "test")[0], recipe)


def test_label_problems_fail_loudly(msd):
    refs = list_cases(_recipe(**MSD_RECIPE), msd)
    with pytest.raises(ValueError, match="'kidney'.*not found"):
        read_case(refs[0], _recipe(**{**MSD_RECIPE, "concepts": {"kidneys": ["kidney"]}}))
    with pytest.raises(ValueError, match="2 channel"):
        read_case(refs[0], _recipe(**{**MSD_RECIPE, "channels": ["MR"]}))
    _save(_labels(0), OBLIQUE, msd / "labelsTr" / "case_0.nii.gz")  # label saved with another affine
    with pytest.raises(ValueError, match="inconsistent geometry"):
        read_case(refs[0], _recipe(**MSD_RECIPE))
    lab = _labels(1)
    lab[0, 0, 0] = 7  # a value dataset.json does not declare
    _save(lab, LPS, msd / "labelsTr" / "case_1.nii.gz")
    with pytest.raises(ValueError, match=r"values \[7\] are not declared"):
        read_case(refs[1], _recipe(**MSD_RECIPE))


def test_nnunet_regions_channel_suffix_oblique(tmp_path):
    root = tmp_path / "Dataset042"
    for i in range(2):
        for c in range(2):
            _save(np.full(SHAPE, float(c), np.float32), OBLIQUE, root / "imagesTr" / f"br_{i:03d}_{c:04d}.nii.gz")
        _save(_labels(i), OBLIQUE, root / "labelsTr" / f"br_{i:03d}.nii.gz")
    (root / "imagesTr" / "._br_000_0000.nii.gz").write_bytes(APPLE_DOUBLE)
    _save(np.zeros(SHAPE, np.float32), OBLIQUE, root / "imagesTs" / "br_100_0000.nii.gz")
    _save(np.zeros(SHAPE, np.float32), OBLIQUE, root / "imagesTs" / "br_100_0001.nii.gz")
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "T1", "1": "FLAIR"}, "file_ending": ".nii.gz", "regions_class_order": [1, 2, 3],
        "labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3}}))
    recipe = _recipe(layout="nnunet", channels=["MR", "MR"], concepts={
        "whole_tumor": ["whole tumor"], "tumor_core": ["tumor core"], "enhancing_tumor": ["enhancing tumor"]})
    refs = list_cases(recipe, root)
    assert [r.case_id for r in refs] == ["br_000", "br_001"]
    assert [r.case_id for r in list_cases(recipe, root, "test")] == ["br_100"]
    case = load_case(refs[0], recipe)
    lab = _labels(0)
    assert np.allclose(case["affine"], OBLIQUE) and np.allclose(case["image"][1], 1.0)
    assert np.array_equal(case["masks"][0], lab > 0)
    assert np.array_equal(case["masks"][1], lab >= 2)
    assert np.array_equal(case["masks"][2], lab == 3)


def test_totalseg_per_structure_masks_overlap(tmp_path):
    for i in range(2):
        case = tmp_path / f"s{i:04d}"
        _save(np.zeros(SHAPE, np.int16), LPS, case / "ct.nii.gz")
        lab = _labels(i)
        _save(((lab == 1) | (lab == 2)).astype(np.uint8), LPS, case / "segmentations" / "liver.nii.gz")
        _save((lab == 2).astype(np.uint8), LPS, case / "segmentations" / "liver_tumor.nii.gz")
        _save((lab == 3).astype(np.uint8), LPS, case / "segmentations" / "spleen.nii.gz")
        (case / "segmentations" / "._liver.nii.gz").write_bytes(APPLE_DOUBLE)
    (tmp_path / "meta.csv").write_text("image_id;split\ns0000;train\ns0001;test\n")
    recipe = _recipe(layout="totalseg", concepts={"liver": ["liver"], "liver_tumor": ["liver_tumor"],
                                                  "spleen": ["spleen"]})
    assert [r.case_id for r in list_cases(recipe, tmp_path, "train")] == ["s0000"]
    ref = list_cases(recipe, tmp_path, "test")[0]
    case = read_case(ref, recipe)
    lab = _labels(1)
    assert case.codes.max() == 3 and case.lut.shape == (3, 4)  # three label sets + background
    masks = case.masks()
    assert np.array_equal(masks[0], (lab == 1) | (lab == 2)) and np.array_equal(masks[1], lab == 2)
    assert np.array_equal(masks[2], lab == 3)


def test_codes_from_masks_round_trip():
    rng = np.random.default_rng(0)
    masks = rng.random((5, 6, 7, 8)) < 0.3  # heavily overlapping
    codes, lut = codes_from_masks(masks)
    assert np.array_equal(lut[:, codes], masks)


def _write_dicom_series(vol: np.ndarray, spacing, origin_lps, folder: Path, reverse_names: bool) -> None:
    """A (X, Y, Z) int16 volume as one CT DICOM series; file names against slice order if asked."""
    import SimpleITK as sitk

    folder.mkdir(parents=True)
    img = sitk.GetImageFromArray(np.ascontiguousarray(vol.transpose(2, 1, 0)))
    img.SetSpacing(spacing)
    img.SetOrigin(origin_lps)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    uid = "1.2.826.0.1.3680043.2.1125.1.4242"
    n = vol.shape[2]
    for z in range(n):
        sl = img[:, :, z]
        for tag, value in (("0008|0060", "CT"), ("0020|000d", uid + ".1"), ("0020|000e", uid + ".2"),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"), ("0020|0013", str(z + 1)),
                           ("0020|0032", "\\".join(map(str, img.TransformIndexToPhysicalPoint((0, 0, z))))),
                           ("0008|0018", f"{uid}.3.{z}"), ("0018|0050", str(spacing[2]))):
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"IMG{(n - 1 - z) if reverse_names else z:04d}.dcm"))
        writer.Execute(sl)


def test_dicom_series_with_png_slice_labels_and_nrrd(tmp_path):
    import SimpleITK as sitk
    from PIL import Image

    lab = _labels(0) * 60  # CHAOS-like grey values 60 / 120 / 180
    vol = (lab.astype(np.int16) - 100)
    _write_dicom_series(vol, (2.0, 2.0, 3.0), (-10.0, 20.0, 30.0), tmp_path / "c1" / "DICOM_anon", True)
    ground = tmp_path / "c1" / "Ground"
    ground.mkdir()
    for i in range(SHAPE[2]):  # PNG i belongs to DICOM file i in name order = slice n-1-i
        Image.fromarray(lab[:, :, SHAPE[2] - 1 - i].T.astype(np.uint8)).save(ground / f"liver_GT_{i:03d}.png")
    # an NRRD case of the same anatomy, listed in a CSV next to the DICOM one
    nrrd = sitk.GetImageFromArray(np.ascontiguousarray(vol.transpose(2, 1, 0)))
    nrrd.SetSpacing((2.0, 2.0, 3.0))
    sitk.WriteImage(nrrd, str(tmp_path / "c2.nrrd"))
    seg = sitk.Cast(sitk.GetImageFromArray(np.ascontiguousarray(lab.transpose(2, 1, 0))), sitk.sitkUInt8)
    seg.SetSpacing((2.0, 2.0, 3.0))
    sitk.WriteImage(seg, str(tmp_path / "c2_seg.nrrd"))
    (tmp_path / "cases.csv").write_text("case_id,image,label\nc1,c1/DICOM_anon,c1/Ground\nc2,c2.nrrd,c2_seg.nrrd\n")
    raw = {"layout": "generic", "source": {"list": "cases.csv"},
           "labels": {"liver": "55..65", "spleen": 120, "kidney": [180]},
           "concepts": {"liver": ["liver", "spleen"], "spleen": ["spleen"], "kidneys": ["kidney"]}}
    recipe = _recipe(**raw)
    refs = list_cases(recipe, tmp_path)
    dicom = load_case(refs[0], recipe)
    expected_affine = np.array([[-2.0, 0, 0, 10], [0, -2.0, 0, -20], [0, 0, 3.0, 30], [0, 0, 0, 1]])
    assert np.allclose(dicom["affine"], expected_affine)
    assert np.allclose(dicom["image"][0], vol)
    assert np.array_equal(dicom["masks"][1], lab == 120) and np.array_equal(dicom["masks"][2], lab == 180)
    nrrd_case = load_case(refs[1], recipe)
    assert np.allclose(nrrd_case["affine"][:3, :3], np.diag([-2.0, -2.0, 3.0]))
    assert np.array_equal(nrrd_case["masks"], dicom["masks"])
    vol_dicom = load_volume(tmp_path / "c1" / "DICOM_anon")
    assert vol_dicom.modality == "CT"
    with pytest.raises(ValueError, match="DICOM modality 'CT'"):
        read_case(refs[0], _recipe(**raw, channels=["MR"]))


def test_generic_patterns_with_split_backrefs_and_globs(tmp_path):
    # ACDC-like: {split} folder, repeated {patient}, constrained {frame}; the 4D file and _gt files
    # must not match; LiTS-like glob in the label pattern (.nii or .nii.gz)
    for split, pid in (("training", "patient001"), ("testing", "patient101")):
        for frame in ("frame01", "frame12"):
            _save(np.zeros(SHAPE, np.float32), LPS, tmp_path / split / pid / f"{pid}_{frame}.nii.gz")
            ending = ".nii" if frame == "frame01" else ".nii.gz"
            _save(_labels(0), LPS, tmp_path / split / pid / f"{pid}_{frame}_gt{ending}")
        _save(np.zeros((*SHAPE, 3), np.float32), LPS, tmp_path / split / pid / f"{pid}_4d.nii.gz")
    (tmp_path / "training" / "._patient002").mkdir()
    recipe = _recipe(layout="generic", source={
        "images": ["{split:training|testing}/{patient:patient\\d+}/{patient}_{frame:frame\\d{2}}.nii.gz"],
        "label": "{split}/{patient}/{patient}_{frame}_gt.nii*", "case_id": "{patient}_{frame}",
        "split_map": {"training": "train", "testing": "test"}},
        labels={"rv": 1, "myo": 2, "lv": 3}, channels=["MR"],
        concepts={"heart_ventricle_right": ["rv"], "heart_ventricle_left": ["lv"]})
    train = list_cases(recipe, tmp_path, "train")
    assert [r.case_id for r in train] == ["patient001_frame01", "patient001_frame12"]
    assert [r.case_id for r in list_cases(recipe, tmp_path, "test")] == ["patient101_frame01", "patient101_frame12"]
    assert train[0].label.name == "patient001_frame01_gt.nii" and train[1].label.name.endswith(".nii.gz")
    case = load_case(train[1], recipe)
    assert np.array_equal(case["masks"][1], _labels(0) == 3)


def test_generic_jsonl_listing_with_channels_label_map_and_split(tmp_path):
    for i in range(2):
        for c in range(2):
            _save(np.full(SHAPE, float(c + 1), np.float32), OBLIQUE, tmp_path / "img" / f"p{i}_ch{c}.nii.gz")
        _save(_labels(i), OBLIQUE, tmp_path / "seg" / f"p{i}.nii.gz")
    rows = [{"case_id": f"p{i}", "image": [f"img/p{i}_ch0.nii.gz", f"img/p{i}_ch1.nii.gz"], "label": f"seg/p{i}.nii.gz",
             "labels": {"organ": 1, "lesion": 2, "other": 3}, "split": ["train", "val"][i]} for i in range(2)]
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    recipe = _recipe(layout="generic", channels=["MR", "MR"], source={"list": "cases.jsonl"},
                     concepts={"liver": ["organ", "lesion"], "liver_tumor": ["lesion"]})
    assert [r.case_id for r in list_cases(recipe, tmp_path, "val")] == ["p1"]
    case = load_case(list_cases(recipe, tmp_path, "train")[0], recipe)
    assert case["image"].shape == (2, *SHAPE) and np.allclose(case["image"][1], 2.0)
    assert np.array_equal(case["masks"][0], np.isin(_labels(0), [1, 2]))
