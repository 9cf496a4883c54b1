"""Procedural phantoms: determinism, layouts, geometry conventions, nesting, realism guard."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.data.phantoms.anatomy import CONCEPTS
from sat.bench.intensity_baseline import intensity_baseline
from sat.data.phantoms.generate import PhantomConfig, generate_case, generate_phantoms, main
from sat.data.phantoms.layouts import SOURCE_CONCEPTS, SOURCES, TOTALSEG_FILES, read_case
from sat.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "totalseg_ct"
TINY = PhantomConfig(spacing_scale=3.0)
N_CASES = 9


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantoms")
    generate_phantoms(out, N_CASES, seed=0, cfg=TINY)
    return out


@pytest.fixture(scope="module")
def manifest(root) -> dict:
    return json.loads((root / "phantoms.json").read_text())


def _world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return nib.affines.apply_affine(affine, np.argwhere(mask).mean(axis=0))


def test_same_seed_gives_identical_arrays_and_files_round_trip(root):
    for index in range(3):
        a, b = generate_case(0, index, TINY), generate_case(0, index, TINY)
        assert a.image.tobytes() == b.image.tobytes()
        assert a.parts.tobytes() == b.parts.tobytes()
        assert np.array_equal(a.affine, b.affine)
    case = generate_case(0, 0, TINY)
    stored = nib.load(root / "phantom_msd" / "imagesTr" / "phantom_0000.nii.gz")
    assert stored.get_data_dtype() == np.int16
    assert np.array_equal(np.asanyarray(stored.dataobj), case.image)
    assert np.allclose(stored.affine, case.affine)


def test_different_seed_differs():
    a, b = generate_case(0, 1, TINY), generate_case(1, 1, TINY)
    assert a.image.shape != b.image.shape or not np.array_equal(a.image, b.image)
    assert a.parts.shape != b.parts.shape or not np.array_equal(a.parts, b.parts)


def test_msd_layout(root):
    src = root / "phantom_msd"
    meta = json.loads((src / "dataset.json").read_text())
    assert meta["modality"] == {"0": "CT"}
    assert meta["labels"]["0"] == "background" and meta["labels"]["2"] == "liver tumour"
    assert meta["numTraining"] == len(meta["training"]) == 3
    for entry in meta["training"]:
        image, label = src / entry["image"], src / entry["label"]
        assert image.is_file() and label.is_file()
        lab = nib.load(label)
        assert lab.get_data_dtype() == np.uint8 and lab.shape == nib.load(image).shape
        assert set(np.unique(np.asanyarray(lab.dataobj))) <= set(range(7))
    junk = src / "imagesTr" / "._phantom_0000.nii.gz"
    assert junk.is_file() and 0 < junk.stat().st_size < 100
    with pytest.raises(OSError):
        gzip.decompress(junk.read_bytes())


def test_nnunet_layout(root):
    src = root / "phantom_nnunet"
    meta = json.loads((src / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "MR"} and meta["file_ending"] == ".nii.gz"
    assert meta["labels"]["background"] == 0 and meta["labels"]["Vertebrae"] == 8
    images = sorted(p.name for p in (src / "imagesTr").iterdir())
    labels = sorted(p.name for p in (src / "labelsTr").iterdir())
    assert images == ["phantom_0001_0000.nii.gz", "phantom_0004_0000.nii.gz",
                      "phantom_0007_0000.nii.gz"]
    assert labels == [n.replace("_0000", "") for n in images]
    assert meta["numTraining"] == len(images)


def test_totalseg_layout(root):
    src = root / "phantom_totalseg"
    rows = (src / "meta.csv").read_text().splitlines()
    assert rows[0] == "image_id;split"
    assert {r.split(";")[1] for r in rows[1:]} == {"train", "test"}
    for cid in (r.split(";")[0] for r in rows[1:]):
        ct = nib.load(src / cid / "ct.nii.gz")
        names = sorted(p.name for p in (src / cid / "segmentations").iterdir())
        assert names == sorted(f"{stem}.nii.gz" for stem in TOTALSEG_FILES.values())
        seg = nib.load(src / cid / "segmentations" / "liver.nii.gz")
        assert seg.get_data_dtype() == np.uint8 and seg.shape == ct.shape
        assert np.allclose(seg.affine, ct.affine)


def test_sample_ct_fixes_the_laterality_convention():
    """NIfTI world space is RAS+: the patient's left kidney has the SMALLER world x."""
    if not (SAMPLE / "seg.nii.gz").is_file():
        pytest.skip("TotalSegmentator sample not available")
    seg = nib.load(SAMPLE / "seg.nii.gz")
    classes = {v: int(k) for k, v in json.loads((SAMPLE / "classes.json").read_text())["class_map"].items()}
    labels = np.asanyarray(seg.dataobj)
    left = _world_centroid(labels == classes["kidney_left"], seg.affine)
    right = _world_centroid(labels == classes["kidney_right"], seg.affine)
    assert left[0] < right[0]


def test_orientations_and_laterality_in_world(root, manifest):
    seen = set()
    for rec in manifest["cases"]:
        if rec["source"] == "phantom_msd":
            continue
        name = "ct.nii.gz" if rec["source"] == "phantom_totalseg" else f"{rec['case_id']}_0000.nii.gz"
        folder = root / rec["source"] / (rec["case_id"] if name == "ct.nii.gz" else "imagesTr")
        affine = nib.load(folder / name).affine
        codes = "".join(nib.aff2axcodes(affine))
        assert codes == rec["orientation"]
        seen.add(codes)
        _, masks = read_case(root, rec["source"], rec["case_id"])
        left = _world_centroid(masks["kidney_left"], affine)
        right = _world_centroid(masks["kidney_right"], affine)
        liver = _world_centroid(masks["liver"], affine)
        assert left[0] < right[0], rec            # patient's left = -x in RAS+ world
        assert liver[0] > 0.5 * (left[0] + right[0]), rec  # liver on the patient's right
        assert left[2] > right[2] - 30, rec      # left kidney sits a little higher
    assert seen == {"RAS", "LPS"}


def test_lesions_are_nested_and_organs_present():
    tumors = cysts = 0
    for index in range(6):
        case = generate_case(3, index, TINY)
        masks = case.masks()
        assert not (masks["liver_tumor"] & ~masks["liver"]).any()
        assert not (masks["kidney_cyst"] & ~(masks["kidney_left"] | masks["kidney_right"])).any()
        assert not (masks["kidney_left"] & masks["kidney_right"]).any()
        assert all(masks[c].any() for c in CONCEPTS if c not in ("liver_tumor", "kidney_cyst"))
        assert all(not (masks[c] & ~masks["body"]).any() for c in CONCEPTS)
        tumors += bool(masks["liver_tumor"].any())
        cysts += bool(masks["kidney_cyst"].any())
    assert tumors >= 2 and cysts >= 2


def test_spacing_is_anisotropic_and_scaled(root, manifest):
    for rec in manifest["cases"]:
        sx, sy, sz = rec["spacing"]
        assert sx == sy and sz != sx
        assert 1.5 * 3 <= sx <= 3.0 * 3 and 2.5 * 3 <= sz <= 5.0 * 3
        assert all(20 <= n <= 100 for n in rec["shape"])
    default = generate_case(0, 2)
    assert all(n <= m for n, m in zip(default.image.shape, PhantomConfig().max_shape))


def test_splits_disjoint_and_complete(root, manifest):
    splits = json.loads((root / "splits.json").read_text())
    assert set(splits) == set(SOURCES)
    for s, source in enumerate(SOURCES):
        train, test = set(splits[source]["train"]), set(splits[source]["test"])
        assert train and test and not train & test
        assert train | test == {f"phantom_{i:04d}" for i in range(s, N_CASES, 3)}
    assert {r["source"] for r in manifest["cases"]} == set(SOURCES)
    annotated = set().union(*SOURCE_CONCEPTS.values())
    assert annotated == set(CONCEPTS)


def test_intensity_baseline_cannot_segment(root):
    result = intensity_baseline(root)
    assert set(result["per_structure"]) >= set(CONCEPTS) - {"liver_tumor", "kidney_cyst"}
    assert 0.0 < result["mean_dice"] <= 0.5, result["per_structure"]
    assert result["per_structure"]["body"] > 0.8  # the window search itself works


def test_cli_rejects_too_few_cases_and_runs(tmp_path, capsys):
    with pytest.raises(InputError, match="--cases"):
        main(["--out", str(tmp_path / "x"), "--cases", "2"])
    with pytest.raises(InputError, match="spacing_scale"):
        main(["--out", str(tmp_path / "x"), "--spacing-scale", "0"])
    out = tmp_path / "y"
    assert main(["--out", str(out), "--cases", "6", "--spacing-scale", "4"]) == 0
    assert main(["--out", str(out), "--cases", "3", "--spacing-scale", "4"]) == 0  # rerun, fewer
    assert "3 phantom cases" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "phantom_nnunet" / "imagesTr").iterdir()) == [
        "phantom_0001_0000.nii.gz"]  # no stale cases from the first run
    (tmp_path / "z" / "phantom_msd").mkdir(parents=True)
    with pytest.raises(InputError, match="phantoms.json"):
        main(["--out", str(tmp_path / "z"), "--cases", "3"])


def test_import_stays_light():
    code = ("import sys, sat.data.phantoms.generate, sat.bench.intensity_baseline; "
            "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
