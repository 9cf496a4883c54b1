"""``sat evaluate`` end to end on the tiny phantoms: perfect, corrupted, missing and bad predictions."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from sat.cli import main as sat_main
from sat.data.adapters import list_cases, load_case
from sat.data.recipes import load_recipe
from sat.errors import InputError
from sat.eval.evaluate import EvalConfig, evaluate_folders
from sat.io.volume import Volume
from sat.io.writers import save_mask
from sat.infer.segmenter import SegmentationResult, Structure
from sat.knowledge.tree import load_tree

SOURCES = ("phantom_msd", "phantom_nnunet", "phantom_totalseg")


def _gt_cases(root: Path) -> dict[str, dict]:
    """case id -> load_case dict (image, affine, concepts, masks) for all nine phantom cases."""
    out = {}
    for name in SOURCES:
        recipe = load_recipe(name)
        out.update({ref.case_id: load_case(ref, recipe) for ref in list_cases(recipe, root / name)})
    return out


@pytest.fixture(scope="module")
def gt_cases(tiny_phantoms: Path) -> dict[str, dict]:
    return _gt_cases(tiny_phantoms)


@pytest.fixture(scope="module")
def perfect_pred(tiny_phantoms: Path, gt_cases: dict, tmp_path_factory) -> Path:
    """``sat segment``-style output (the real writer) whose masks are the ground truth itself."""
    tree = load_tree()
    root = tmp_path_factory.mktemp("pred_perfect")
    for case, data in gt_cases.items():
        vol = Volume(data["image"][0], data["affine"], source=f"{case}.nii.gz")
        structures = [Structure(tree.get(cid).name.upper(), cid, tree.get(cid).name, [cid], m, None, "none")
                      for cid, m in zip(data["concepts"], data["masks"])]  # prompts != concept ids
        SegmentationResult(vol, "CT", structures, []).save(root / case, preview=False, statistics=False)
    return root


def _summary_shape_ok(summary: dict) -> None:
    assert set(summary["mean"]) == {"dice", "nsd", "hd95"}
    for cid, entry in summary["per_structure"].items():
        assert set(entry) == {"dice", "nsd", "hd95", "n"}, cid
        assert isinstance(entry["n"], int) and entry["n"] > 0


def test_ground_truth_as_prediction_is_perfect(tiny_phantoms: Path, perfect_pred: Path, gt_cases: dict,
                                               tmp_path: Path) -> None:
    run = evaluate_folders(perfect_pred, tiny_phantoms, tmp_path / "ev")
    n_pairs = sum(len(d["concepts"]) for d in gt_cases.values())
    assert len(run.rows) == n_pairs and all(r["status"] == "ok" for r in run.rows)
    assert run.summary["mean"] == {"dice": 1.0, "nsd": 1.0, "hd95": 0.0}
    on_disk = json.loads((tmp_path / "ev" / "summary.json").read_text())
    _summary_shape_ok(on_disk)
    assert on_disk["per_structure"]["liver"]["n"] == 9  # every source has a liver
    assert on_disk["per_structure"]["pancreas"]["n"] == 3  # only the MSD source labels it
    assert set(on_disk["by"]["dataset"]) == set(SOURCES) and set(on_disk["by"]["modality"]) == {"CT", "MR"}
    for name in ("per_case.csv", "by_structure.csv", "by_region.csv", "by_modality.csv", "by_dataset.csv",
                 "summary.md", "plots/box_abdomen.png", "plots/box_regions.png"):
        assert (tmp_path / "ev" / name).stat().st_size > 0, name
    assert (tmp_path / "ev" / "plots" / "box_abdomen.png").read_bytes()[:4] == b"\x89PNG"
    md = (tmp_path / "ev" / "summary.md").read_text()
    assert "## By region" in md and "| abdomen |" in md and "| left kidney |" in md


def _pred_file(root: Path, case: str, concept: str) -> Path:
    """The mask file ``sat segment``'s writer chose for ``concept`` (named after the prompt)."""
    entries = json.loads((root / case / "result.json").read_text())["structures"].values()
    return root / case / Path(next(e["mask"] for e in entries if e["concept"] == concept)).name


@pytest.fixture(scope="module")
def damaged(tiny_phantoms: Path, perfect_pred: Path, gt_cases: dict, tmp_path_factory):
    """A copy of the perfect predictions with one eroded, one deleted and one off-grid structure."""
    root = tmp_path_factory.mktemp("pred_damaged") / "pred"
    shutil.copytree(perfect_pred, root)
    affine = gt_cases["phantom_0000"]["affine"]
    liver = gt_cases["phantom_0000"]["masks"][gt_cases["phantom_0000"]["concepts"].index("liver")]
    save_mask(ndimage.binary_erosion(liver, iterations=2), affine, _pred_file(root, "phantom_0000", "liver"))
    _pred_file(root, "phantom_0001", "spleen").unlink()
    shifted = affine.copy()
    shifted[:3, 3] += 5.0
    d3 = gt_cases["phantom_0003"]
    save_mask(d3["masks"][d3["concepts"].index("pancreas")], shifted, _pred_file(root, "phantom_0003", "pancreas"))
    run = evaluate_folders(root, tiny_phantoms, root.parent / "ev")
    return root, run


def _row(run, case: str, concept: str) -> dict:
    return next(r for r in run.rows if r["case"] == case and r["concept"] == concept)


def test_corrupted_missing_and_off_grid_predictions(damaged) -> None:
    _, run = damaged
    eroded = _row(run, "phantom_0000", "liver")
    assert eroded["status"] == "ok" and 0.3 < eroded["dice"] < 1.0 and eroded["nsd"] < 1.0 and eroded["hd95"] > 0
    assert eroded["pred_ml"] < eroded["gt_ml"]
    missing = _row(run, "phantom_0001", "spleen")
    assert (missing["status"], missing["dice"], missing["nsd"]) == ("missing", 0.0, 0.0)
    off_grid = _row(run, "phantom_0003", "pancreas")
    assert (off_grid["status"], off_grid["dice"]) == ("error", 0.0)
    assert [e["concept"] for e in run.errors] == ["pancreas"] and "grid" in run.errors[0]["error"]
    others = [r for r in run.rows if (r["case"], r["concept"]) not in
              {("phantom_0000", "liver"), ("phantom_0001", "spleen"), ("phantom_0003", "pancreas")}]
    assert all(r["dice"] == 1.0 for r in others)  # the other cases complete untouched
    counts = run.summary["counts"]
    assert (counts["missing_predictions"], counts["bad_predictions"], counts["cases"]) == (1, 1, 9)
    s = run.summary["per_structure"]
    assert s["spleen"]["n"] == 6 and s["spleen"]["dice"] == pytest.approx(5 / 6)  # failure counted, not skipped
    assert s["liver"]["dice"] == pytest.approx((8 + eroded["dice"]) / 9)
    md = (run.paths["summary_md"]).read_text()
    assert "phantom_0001: spleen (missing)" in md and "phantom_0003: pancreas (error)" in md


def test_region_and_group_tables_are_macro_means(damaged) -> None:
    _, run = damaged
    tree = load_tree()
    by_region = run.summary["by"]["region"]
    assert set(by_region) == {tree.get(c).region for c in run.summary["per_structure"]}
    for region, stats in by_region.items():
        members = [c for c, v in run.summary["per_structure"].items() if tree.get(c).region == region]
        assert stats["structures"] == len(members)
        assert stats["dice"] == pytest.approx(np.mean([run.summary["per_structure"][c]["dice"] for c in members]))
    assert by_region["abdomen"]["missing"] == 2 and by_region["abdomen"]["dice"] < 1.0
    assert by_region["thorax"]["dice"] == 1.0
    msd = run.summary["by"]["dataset"]["phantom_msd"]  # liver (eroded) + pancreas (error) live here
    assert msd["structures"] == 6 and msd["missing"] == 1 and msd["dice"] < 1.0
    csv_regions = (run.paths["by_region"]).read_text().splitlines()
    assert csv_regions[0] == "region,structures,n,missing,dice,nsd,hd95" and len(csv_regions) == len(by_region) + 1


def test_cli_reports_bad_case_and_exits_1(damaged, tiny_phantoms: Path, tmp_path: Path, capsys) -> None:
    root, _ = damaged
    rc = sat_main(["evaluate", "--pred", str(root), "--gt", str(tiny_phantoms), "--out", str(tmp_path / "o"),
                   "--no-plots"])
    out, err = capsys.readouterr()
    assert rc == 1 and "1 missing and 1 bad predictions" in out
    assert len(err.strip().splitlines()) == 1 and "phantom_0003" in err and "pancreas" in err.lower()
    assert not (tmp_path / "o" / "plots").exists() and (tmp_path / "o" / "summary.json").exists()


def _write_per_structure(root: Path, masks: dict[str, dict[str, np.ndarray]], affine: np.ndarray) -> Path:
    for case, structures in masks.items():
        (root / case).mkdir(parents=True)
        for name, m in structures.items():
            save_mask(m, affine, root / case / f"{name}.nii.gz")
    return root


def test_per_structure_layout_and_empty_policy(gt_cases: dict, tmp_path: Path) -> None:
    d = gt_cases["phantom_0002"]
    m = dict(zip(d["concepts"], d["masks"]))
    empty = np.zeros_like(m["liver"])
    # ground truth named by synonyms / names; case B has no cyst (an empty mask)
    gt = _write_per_structure(tmp_path / "gt", {"A": {"hepar": m["liver"], "kidney cyst": m["kidney_cyst"]},
                                                 "B": {"hepar": m["liver"], "kidney cyst": empty}}, d["affine"])
    pred = _write_per_structure(tmp_path / "pred", {"A": {"liver": m["liver"], "kidney_cyst": m["kidney_cyst"]},
                                                     "B": {"liver": m["liver"], "kidney_cyst": empty}}, d["affine"])
    one = evaluate_folders(pred, gt, config=EvalConfig(empty="one", modality="CT"), write=False)
    assert {(r["case"], r["concept"]) for r in one.rows} == {(c, k) for c in "AB" for k in ("liver", "kidney_cyst")}
    assert one.summary["per_structure"]["kidney_cyst"] == {"dice": 1.0, "nsd": 1.0, "hd95": 0.0, "n": 2}
    assert set(one.summary["by"]["modality"]) == {"CT"} and set(one.summary["by"]["dataset"]) == {"gt"}
    excl = evaluate_folders(pred, gt, config=EvalConfig(empty="exclude"), write=False)
    assert excl.summary["per_structure"]["kidney_cyst"]["n"] == 1  # the empty ground truth is excluded
    assert math.isnan(_row(excl, "B", "kidney_cyst")["dice"])
    # a missing prediction is a failure under both policies, even where the ground truth is empty
    (pred / "B" / "kidney_cyst.nii.gz").unlink()
    for policy in ("one", "exclude"):
        run = evaluate_folders(pred, gt, config=EvalConfig(empty=policy), write=False)
        assert _row(run, "B", "kidney_cyst")["dice"] == 0.0 and run.summary["counts"]["missing_predictions"] == 1


def test_bad_input_is_one_line_input_error(tiny_phantoms: Path, perfect_pred: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(InputError, match="predictions folder not found"):
        evaluate_folders(tmp_path / "nope", tiny_phantoms, write=False)
    with pytest.raises(InputError, match="ground-truth folder not found"):
        evaluate_folders(perfect_pred, tmp_path / "nope", write=False)
    (tmp_path / "empty_pred" / "someone_else").mkdir(parents=True)
    with pytest.raises(InputError, match="no prediction folder matches"):
        evaluate_folders(tmp_path / "empty_pred", tiny_phantoms, write=False)
    with pytest.raises(InputError, match="--recipe"):
        evaluate_folders(perfect_pred, tiny_phantoms, config=EvalConfig(recipe="no_such_recipe"), write=False)
    with pytest.raises(InputError, match="--concepts"):
        evaluate_folders(perfect_pred, tiny_phantoms, config=EvalConfig(concepts=("florp",)), write=False)
    assert sat_main(["evaluate", "--pred", str(tmp_path / "nope"), "--gt", str(tiny_phantoms)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sat evaluate: error:")


def test_recipe_split_and_concept_filter(tiny_phantoms: Path, perfect_pred: Path) -> None:
    run = evaluate_folders(perfect_pred, tiny_phantoms, write=False,
                           config=EvalConfig(recipe="phantom_nnunet", split="test", concepts=("left kidney", "aorta")))
    assert {(r["case"], r["concept"]) for r in run.rows} == {("phantom_0007", "kidney_left"),
                                                            ("phantom_0007", "aorta")}
    assert any("phantom_0000" in n for n in run.notes)  # unmatched prediction folders are named in the notes


def test_unreadable_ground_truth_case_is_reported_others_complete(gt_cases: dict, tmp_path: Path) -> None:
    d = gt_cases["phantom_0002"]
    liver = d["masks"][d["concepts"].index("liver")]
    gt = _write_per_structure(tmp_path / "gt", {"A": {"liver": liver}, "B": {"liver": liver}}, d["affine"])
    (gt / "B" / "liver.nii.gz").write_bytes(b"not a nifti")
    pred = _write_per_structure(tmp_path / "pred", {"A": {"liver": liver}, "B": {"liver": liver}}, d["affine"])
    run = evaluate_folders(pred, gt, tmp_path / "ev", EvalConfig(plots=False))
    assert [(r["case"], r["dice"]) for r in run.rows] == [("A", 1.0)]
    assert run.summary["counts"]["unreadable_gt_cases"] == 1 and "gt gt/B" in run.errors[0]["error"]
    assert "\n" not in run.errors[0]["error"]
