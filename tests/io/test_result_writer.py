"""Writing results: per-structure files with safe names, multilabel + sidecar with overlaps,
probability maps, statistics.json fields, preview, result.json."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from sat.io.volume import Volume
from sat.infer.result import SegmentationResult, Structure
from sat.infer.stats import structure_statistics

SHAPE = (20, 16, 12)


def _result() -> SegmentationResult:
    affine = np.diag([-2.0, -2.0, 3.0, 1.0])  # LPS storage
    affine[:3, 3] = [20.0, 15.0, -10.0]
    image = np.random.default_rng(0).normal(40, 10, SHAPE).astype(np.float32)
    vol = Volume(image, affine, "CT", "case.nii.gz")
    boxes = {"liver": (slice(2, 10), slice(2, 10), slice(2, 8)),
             "../../etc/passwd": (slice(8, 14), slice(4, 12), slice(3, 9)),
             "Rénal cortex / left?": (slice(3, 5), slice(3, 5), slice(3, 5)), "nothing": (slice(0, 0),) * 3}
    structures = []
    for prompt, box in boxes.items():
        mask = np.zeros(SHAPE, bool)
        mask[box] = True
        prob = np.where(mask, 0.9, 0.1).astype(np.float16)
        structures.append(Structure(prompt, "liver", "liver", ["liver"], mask, prob, "none",
                                    structure_statistics(mask, vol, prob, "none")))
    return SegmentationResult(vol, "CT", structures, [{"prompt": "banana", "reason": "no concept", "suggestions": []}])


def test_files_names_and_overlaps(tmp_path):
    res = _result()
    summary = res.save(tmp_path, formats=("nifti", "multilabel"), probabilities=True)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"liver.nii.gz", "etc_passwd.nii.gz", "renal_cortex_left.nii.gz", "nothing.nii.gz",
            "multilabel.nii.gz", "multilabel.json", "statistics.json", "preview.png", "result.json"} <= set(names)
    assert all(p.parent == tmp_path for p in tmp_path.rglob("*"))  # nothing escaped the folder
    for s in res.structures:  # every per-structure file is complete, overlaps included
        entry = summary["structures"][s.prompt]
        img = nib.load(entry["mask"])
        np.testing.assert_array_equal(np.asarray(img.dataobj) > 0, s.mask)
        np.testing.assert_allclose(img.affine, res.volume.affine)
        prob = nib.load(entry["probabilities"]).get_fdata()
        np.testing.assert_allclose(prob, s.prob.astype(np.float32), atol=3e-3)
    labels = np.asarray(nib.load(tmp_path / "multilabel.nii.gz").dataobj)
    sidecar = json.loads((tmp_path / "multilabel.json").read_text())
    assert set(np.unique(labels)) <= {0, 1, 2, 3, 4}  # never a sum of overlapping labels
    assert {v["prompt"] for v in sidecar["labels"].values()} == {s.prompt for s in res.structures}
    overlaps = {(o["a"], o["b"]): o for o in sidecar["overlaps"]}  # one entry per overlapping pair
    assert set(overlaps) == {("liver", "../../etc/passwd"), ("liver", "Rénal cortex / left?")}
    assert overlaps[("liver", "Rénal cortex / left?")]["voxels"] == 8
    liver, other = res.structures[0].mask, res.structures[1].mask
    assert overlaps[("liver", "../../etc/passwd")]["voxels"] == int((liver & other).sum())
    assert overlaps[("liver", "../../etc/passwd")]["shown_as"] == "../../etc/passwd"  # same rank: prompt order
    assert json.loads((tmp_path / "result.json").read_text())["refused"][0]["prompt"] == "banana"


def test_statistics_json_fields(tmp_path):
    res = _result()
    res.save(tmp_path, preview=False)
    stats = json.loads((tmp_path / "statistics.json").read_text())
    liver = stats["liver"]
    for key in ("volume_ml", "voxel_count", "intensity_mean", "intensity_std", "bbox_world_mm",
                "bbox_voxel", "centroid_world_mm", "laterality", "mean_confidence"):
        assert key in liver, key
    assert liver["voxel_count"] == 8 * 8 * 6 and liver["volume_ml"] == pytest.approx(8 * 8 * 6 * 12 / 1000)
    assert liver["mean_confidence"] == pytest.approx(0.9, abs=1e-3)
    # LPS storage: voxel i = 2..9 lies at x = 20 - 2 i = 2 .. 16 mm (centres), +-1 mm voxel half-width
    assert liver["bbox_world_mm"]["min"][0] == pytest.approx(1.0) and liver["bbox_world_mm"]["max"][0] == pytest.approx(17.0)
    assert stats["nothing"]["voxel_count"] == 0 and stats["nothing"]["centroid_world_mm"] is None
    assert not (tmp_path / "preview.png").exists()


def test_unknown_format_and_dicom_seg_without_dicom(tmp_path):
    from sat.errors import InputError

    res = _result()
    with pytest.raises(ValueError, match="unknown output formats"):
        res.save(tmp_path, formats=("png",))
    with pytest.raises(InputError, match="DICOM"):
        res.save(tmp_path, formats=("dicom_seg",))


def _structure(vol, prompt, concept, box, used=None):
    mask = np.zeros(SHAPE, bool)
    mask[box] = True
    return Structure(prompt, concept, concept, used or [concept], mask, None, "none",
                     structure_statistics(mask, vol, None, "none"))


def test_multilabel_paints_containers_first_and_lesions_last(tmp_path):
    """Issue 19 item 4: alphabetical painting hid the aorta under "body" and cysts under kidneys."""
    vol = Volume(np.zeros(SHAPE, np.float32), np.eye(4), "CT", "case.nii.gz")
    everything = (slice(0, 20), slice(0, 16), slice(0, 12))
    structures = [_structure(vol, "aorta", "aorta", (slice(9, 11), slice(7, 9), slice(0, 12))),
                  _structure(vol, "kidney cyst", "kidney_cyst", (slice(3, 5), slice(3, 5), slice(3, 5))),
                  _structure(vol, "left kidney", "kidney_left", (slice(2, 7), slice(2, 7), slice(2, 7))),
                  _structure(vol, "kidneys", "kidneys", (slice(2, 7), slice(2, 7), slice(2, 7)),
                             ["kidney_left", "kidney_right"]),
                  _structure(vol, "body", "body", everything)]
    res = SegmentationResult(vol, "CT", structures, [])
    res.save(tmp_path, formats=("multilabel",), preview=False)
    labels = np.asarray(nib.load(tmp_path / "multilabel.nii.gz").dataobj)
    sidecar = json.loads((tmp_path / "multilabel.json").read_text())
    for k, s in enumerate(structures, start=1):  # label k is the k-th prompt ...
        assert sidecar["labels"][str(k)]["prompt"] == s.prompt
    assert (labels == 1).sum() == structures[0].mask.sum()  # ... and nothing is hidden: aorta over body
    assert (labels == 2).sum() == 8  # the cyst over its kidney
    assert (labels == 3).sum() == structures[2].mask.sum() - 8  # the kidney over the group "kidneys"
    assert sidecar["paint_order"] == ["5", "4", "1", "3", "2"]  # body, kidneys, organs, lesion
    pairs = {frozenset((o["a"], o["b"])): o for o in sidecar["overlaps"]}
    assert pairs[frozenset(("body", "aorta"))] == {"a": "aorta", "b": "body", "voxels": 2 * 2 * 12,
                                                    "shown_as": "aorta"}
    assert pairs[frozenset(("kidney cyst", "left kidney"))]["shown_as"] == "kidney cyst"
    assert pairs[frozenset(("kidneys", "left kidney"))]["voxels"] == 125
    assert frozenset(("aorta", "kidney cyst")) not in pairs  # disjoint pairs are not listed
    assert "containers first" in sidecar["note"]
