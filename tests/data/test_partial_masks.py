"""Per-structure mask folders with per-case partial labels (OpenKBP-style) and hash hold-outs.

A missing mask file means "not contoured": the structure is neither a positive nor a negative
for that case. An empty file or a file with several foreground values is an error for the case,
reported by name in the build manifest while the rest of the build completes.
"""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.data.adapters import list_cases, read_case
from sat.data.recipes import recipe_from_dict
from sat.data.shard_build import BuildOptions, build_shards
from sat.data.sources import CaseRef, hold_out

SHAPE = (10, 12, 8)
# stored posterior-, left- and inferior-first, as OpenKBP's volumes (axis codes P, L, I)
PLI = np.array([[0, -4.0, 0, 100], [-4.0, 0, 0, 120], [0, 0, -2.5, 60], [0, 0, 0, 1]])
RECIPE = {"name": "kbp", "layout": "generic", "channels": ["CT"], "spacing": [4.0, 4.0, 2.5],
          "source": {"images": ["{split}/{case}/ct.nii.gz"], "masks": "{split}/{case}/segmentations",
                     "missing_masks": "unannotated", "empty_masks": "error",
                     "split_map": {"train-pats": "train", "validation-pats": "val"}},
          "concepts": {"brainstem": ["Brainstem"], "parotid_gland_left": ["LeftParotid"],
                       "parotid_gland_right": ["RightParotid"]}}


def _save(array, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, PLI), str(path))


def _patient(root: Path, split: str, case: str, masks: dict[str, np.ndarray]) -> None:
    ct = np.full(SHAPE, -1024, np.int16)
    ct[1:9, 1:11, :] = 40
    _save(ct, root / split / case / "ct.nii.gz")
    for name, m in masks.items():
        _save(m.astype(np.uint8), root / split / case / "segmentations" / f"{name}.nii.gz")


def _box(*sl) -> np.ndarray:
    m = np.zeros(SHAPE, np.uint8)
    m[sl] = 1
    return m


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "openkbp"
    _patient(root, "train-pats", "pt_1", {"Brainstem": _box(slice(4, 6), slice(5, 7), slice(2, 6)),
                                          "LeftParotid": _box(slice(3, 6), slice(8, 10), slice(3, 5))})
    _patient(root, "train-pats", "pt_2", {"Brainstem": _box(slice(4, 6), slice(5, 7), slice(2, 6)),
                                          "LeftParotid": _box(slice(3, 6), slice(8, 10), slice(3, 5)),
                                          "RightParotid": np.zeros(SHAPE)})  # empty: an error
    _patient(root, "validation-pats", "pt_3", {"RightParotid": 3 * _box(slice(3, 6), slice(2, 4), slice(3, 5))
                                               + _box(slice(0, 1), slice(0, 1), slice(0, 1))})  # values 1 and 3
    _patient(root, "validation-pats", "pt_4", {"RightParotid": _box(slice(3, 6), slice(2, 4), slice(3, 5))})
    return root


def test_missing_mask_file_is_unannotated_not_negative(tmp_path):
    root = _dataset(tmp_path)
    recipe = recipe_from_dict(RECIPE)
    refs = {r.case_id: r for r in list_cases(recipe, root, None)}
    assert {c: r.split for c, r in refs.items()} == {"pt_1": "train", "pt_2": "train", "pt_3": "val", "pt_4": "val"}
    case = read_case(refs["pt_1"], recipe)
    assert case.concepts == ["brainstem", "parotid_gland_left"]  # the right parotid was never contoured
    assert case.masks().sum((1, 2, 3)).tolist() == [16, 12]
    assert read_case(refs["pt_4"], recipe).concepts == ["parotid_gland_right"]


def test_default_policy_still_fails_on_a_missing_file(tmp_path):
    root = _dataset(tmp_path)
    raw = json.loads(json.dumps(RECIPE))
    raw["source"].pop("missing_masks")
    recipe = recipe_from_dict(raw)
    ref = next(r for r in list_cases(recipe, root, None) if r.case_id == "pt_1")
    try:
        read_case(ref, recipe)
    except ValueError as exc:
        assert "RightParotid" in str(exc)
    else:
        raise AssertionError("a missing mask file must fail without missing_masks: unannotated")


def test_build_reports_bad_cases_by_name_and_keeps_partial_labels(tmp_path):
    root = _dataset(tmp_path)
    recipe = recipe_from_dict(RECIPE)
    out = tmp_path / "shards"
    train = build_shards(recipe, root, out, BuildOptions(split="train"), progress=False)
    val = build_shards(recipe, root, out, BuildOptions(split="val"), progress=False)
    assert list(train["failures"]) == ["pt_2"] and "empty" in train["failures"]["pt_2"]
    assert list(val["failures"]) == ["pt_3"] and "values [1, 3]" in val["failures"]["pt_3"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_cases"] == 2 and manifest["n_failures"] == 2
    assert sorted(manifest["failures"]) == ["kbp/pt_2", "kbp/pt_3"]
    annotated = {c: e["annotated"] for c, e in manifest["concepts"].items()}
    assert annotated == {"brainstem": 1, "parotid_gland_left": 1, "parotid_gland_right": 1}


def test_hold_out_is_a_fixed_hash_fraction_of_train():
    refs = [CaseRef(f"case_{i:03d}", [Path("x")]) for i in range(400)]
    hold_out(refs, 0.2)
    val = {r.case_id for r in refs if r.split == "val"}
    assert 60 <= len(val) <= 100
    more = [CaseRef(f"case_{i:03d}", [Path("x")]) for i in range(800)]
    hold_out(more, 0.2)
    assert val == {r.case_id for r in more[:400] if r.split == "val"}  # new cases never move old ones


def test_per_dataset_crops_batch_one_dataset_at_a_time(tmp_path):
    from sat.data.datamodule import ShardDataModule
    from sat.data.sampling import SamplingConfig

    root = _dataset(tmp_path)
    out = tmp_path / "shards"
    for name in ("kbp", "kbp_small"):
        build_shards(recipe_from_dict({**RECIPE, "name": name}), root, out, BuildOptions(split="val"),
                     progress=False)
    dm = ShardDataModule({"kbp": str(out / "kbp-val-*.tar"), "kbp_small": str(out / "kbp_small-val-*.tar")},
                         sampling=SamplingConfig(patch_size=(16, 16, 16)), batch_size=2, num_workers=0,
                         steps_per_epoch=12, shuffle_buffer=1, crops_per_case=2,
                         dataset_sampling={"kbp_small": {"patch_size": [8, 8, 16]}})
    seen = set()
    for batch in dm.train_dataloader():
        (name,) = set(batch["dataset"])  # one dataset per batch
        assert tuple(batch["image"].shape[2:]) == dm.sampling_for(name).patch_size
        assert batch["concepts"] == [["parotid_gland_right"]] * 2  # pt_4: only its contoured organ
        seen.add(name)
    assert seen == {"kbp", "kbp_small"}
    with __import__("pytest").raises(ValueError, match="not training datasets"):
        ShardDataModule({"kbp": "x"}, dataset_sampling={"other": {"patch_size": [8, 8, 8]}})


def test_training_refuses_command_urls_unless_allowed(tmp_path):
    from sat.data.datamodule import expand_urls

    marker = tmp_path / "ran"
    with __import__("pytest").raises(ValueError, match="data.allow_pipe"):
        expand_urls(f"pipe:touch {marker}")
    assert expand_urls(f"pipe:touch {marker}", allow_pipe=True) == [f"pipe:touch {marker}"]
    assert not marker.exists()  # expanding a URL never runs it


@pytest.mark.parametrize("workers", [0, 1])
def test_each_epoch_continues_the_stream_and_reaches_every_case(tmp_path, monkeypatch, workers):
    """Epochs much shorter than a shard: a restarted pipeline would decode the same first cases
    in every epoch; the stream goes on where the last epoch stopped, in a loader worker too."""
    import sat.data.datamodule as datamodule
    from sat.data.sampling import SamplingConfig

    root = tmp_path / "openkbp"
    cases = [f"pt_{i:02d}" for i in range(12)]
    for case in cases:
        _patient(root, "train-pats", case, {"Brainstem": _box(slice(4, 6), slice(5, 7), slice(2, 6))})
    out = tmp_path / "shards"
    build_shards(recipe_from_dict(RECIPE), root, out, BuildOptions(split="train"), progress=False)
    log, decode = tmp_path / "decoded.txt", datamodule.decode_case

    def logged(raw):  # a file, so that a loader worker's decodes are seen too
        with open(log, "a", encoding="utf-8") as f:
            f.write(raw["__key__"] + "\n")
        return decode(raw)

    monkeypatch.setattr(datamodule, "decode_case", logged)
    dm = datamodule.ShardDataModule({"kbp": str(out / "kbp-train-*.tar")},
                                    sampling=SamplingConfig(patch_size=(8, 8, 8)), batch_size=1,
                                    num_workers=workers, steps_per_epoch=2, shuffle_buffer=1,
                                    crops_per_case=1)
    loader = dm.train_dataloader()
    for _ in range(8):  # 16 batches: more than the 12 cases
        assert sum(1 for _ in loader) == 2
    decoded = log.read_text(encoding="utf-8").split()
    assert {k.split("__")[-1] for k in decoded} == set(cases)  # restarted: the first 2-6 cases only
    if workers == 0:  # (a worker also prefetches batches that an epoch's end drops)
        assert len(decoded) <= 16 + 4  # no epoch discards its shuffle buffers
