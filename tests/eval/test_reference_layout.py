"""``sat reference`` writes the ground-truth layout ``sat evaluate`` reads, from a label map and a
class map (issue 19 item 8: this was left to the user)."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from sat.cli import main


def _label_map(tmp_path):
    labels = np.zeros((12, 10, 8), np.uint8)
    labels[1:5, 1:5, 1:5] = 1
    labels[6:10, 2:6, 2:6] = 3
    affine = np.diag([-1.5, -1.5, 2.0, 1.0])
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "seg.nii.gz")
    return labels, affine


def test_reference_layout_from_json_class_map_scores_with_evaluate(tmp_path, capsys):
    labels, affine = _label_map(tmp_path)
    (tmp_path / "classes.json").write_text(json.dumps({"class_map": {"1": "liver", "2": "spleen", "3": "Kidney_Left",
                                                                     "4": "banana"}}))
    assert main(["reference", "--labels", str(tmp_path / "seg.nii.gz"), "--classes", str(tmp_path / "classes.json"),
                 "--case", "ct01", "--out", str(tmp_path / "gt")]) == 0
    assert "2 structures written" in capsys.readouterr().out
    written = sorted(p.name for p in (tmp_path / "gt" / "ct01").iterdir())
    assert written == ["kidney_left.nii.gz", "liver.nii.gz"]  # concept ids; absent classes skipped
    liver = nib.load(tmp_path / "gt" / "ct01" / "liver.nii.gz")
    np.testing.assert_array_equal(np.asarray(liver.dataobj) > 0, labels == 1)
    np.testing.assert_allclose(liver.affine, affine)
    pred = tmp_path / "pred" / "ct01"  # a perfect prediction in sat segment's naming
    pred.mkdir(parents=True)
    nib.save(nib.Nifti1Image((labels == 1).astype(np.uint8), affine), pred / "liver.nii.gz")
    nib.save(nib.Nifti1Image((labels == 3).astype(np.uint8), affine), pred / "left_kidney.nii.gz")
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--no-plots"]) == 0
    assert "mean Dice 1.0000" in capsys.readouterr().out


def test_reference_layout_csv_class_map_and_unknown_names(tmp_path, capsys):
    _label_map(tmp_path)
    (tmp_path / "classes.csv").write_text("value,name\n1,liver\n3,not_an_organ\n")
    assert main(["reference", "--labels", str(tmp_path / "seg.nii.gz"), "--classes", str(tmp_path / "classes.csv"),
                 "--out", str(tmp_path / "gt")]) == 0
    assert "not knowledge-tree names, sat evaluate will not match them: not_an_organ" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "gt" / "seg").iterdir()) == ["liver.nii.gz", "not_an_organ.nii.gz"]
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["reference", "--labels", str(tmp_path / "seg.nii.gz"), "--classes", str(tmp_path / "bad.json"),
                 "--out", str(tmp_path / "gt")]) == 2
