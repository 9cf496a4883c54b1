"""Segmenter API on real files: geometry round-trips, prompts, cache, restoration oracles, modality."""
from __future__ import annotations

import logging
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
import torch

from sat.errors import InputError
from sat.io.volume import Volume, load_volume
from sat.infer.segmenter import Segmenter
from sat.infer.stats import structure_statistics


def _affines():
    ras = np.diag([3.0, 3.0, 4.0, 1.0])
    lps = np.diag([-3.0, -3.0, 4.0, 1.0])
    lps[:3, 3] = [90, 80, -50]
    t = np.deg2rad(20)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    obl = np.eye(4)
    obl[:3, :3] = rot @ np.diag([2.5, 3.0, 4.5])
    obl[:3, 3] = [-40, 12, 7]
    # OpenKBP's storage: posterior-, left- and inferior-first (axis codes P, L, I), axes permuted
    pli = np.array([[0, -3.906, 0, 248.0], [-3.906, 0, 0, 248.0], [0, 0, -2.5, 158.75], [0, 0, 0, 1]])
    return {"RAS": ras, "LPS": lps, "oblique": obl, "PLI": pli}


@pytest.mark.parametrize("name", ["RAS", "LPS", "oblique", "PLI"])
def test_output_geometry_equals_input(segmenter, tmp_path, name):
    rng = np.random.default_rng(0)
    data = rng.normal(40, 30, size=(37, 30, 23)).astype(np.int16)
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(data, _affines()[name]), path)
    result = segmenter.segment(str(path), ["liver", "left kidney"], modality="CT")
    assert [s.concept for s in result.structures] == ["liver", "kidney_left"]
    summary = result.save(tmp_path / "out")
    for entry in summary["structures"].values():
        img = nib.load(entry["mask"])
        assert img.shape == data.shape
        assert np.allclose(img.affine, _affines()[name], atol=1e-5)
        assert img.get_data_dtype() == np.uint8


def test_prompts_synonyms_groups_and_refusal(segmenter, phantom_ct):
    res = segmenter.segment(str(phantom_ct), ["hepar", "kidneys", "banana", "lumbar spine", "Lt kidney"])
    by = {s.prompt: s for s in res.structures}
    assert by["hepar"].concept == "liver" and by["Lt kidney"].concept == "kidney_left"
    assert by["Lt kidney"].laterality == "left"
    assert set(by["kidneys"].used_concepts) <= {"kidneys", "kidney_left", "kidney_right"}
    refused = {r["prompt"]: r for r in res.refused}
    assert set(refused) == {"banana", "lumbar spine"}
    assert "banana" not in by and len(refused["banana"]["suggestions"]) <= 5
    for r in refused.values():  # suggestions are only concepts this model answers (issue 19)
        assert all(segmenter.plan([s["name"]])[0].concepts for s in r["suggestions"])
    # the random-weight model is only 'trained' on phantom concepts: lumbar spine is known but refused
    assert "not trained" in refused["lumbar spine"]["reason"] and refused["lumbar spine"]["suggestions"]


def test_grouping_prompt_is_union_of_trained_parts(segmenter, phantom_ct):
    meta = replace(segmenter.meta, trained_concepts=[c for c in segmenter.trained if c != "kidneys"])
    seg = Segmenter(segmenter.net, meta, "cpu", resolver=segmenter.resolver)
    res = seg.segment(str(phantom_ct), ["kidneys", "left kidney", "right kidney"], modality="CT")
    group, left, right = res.structures
    assert sorted(group.used_concepts) == ["kidney_left", "kidney_right"] and group.concept == "kidneys"
    # the union is taken before resampling, so it can only be larger than the union of the parts
    assert np.all(group.mask >= (left.mask | right.mask))
    assert group.mask.sum() <= (left.mask | right.mask).sum() * 1.2 + 50


def test_feature_cache_reused_for_new_prompts(segmenter, tiny_phantoms, monkeypatch):
    from sat.infer import segmenter as mod

    vol = load_volume(tiny_phantoms / "phantom_msd" / "imagesTr" / "phantom_0000.nii.gz")
    first = segmenter.segment(vol, ["liver"], modality="CT")
    def encode(*args, **kwargs):
        raise RuntimeError("encoded again")

    monkeypatch.setattr(mod, "encode_image", encode)
    again = segmenter.segment(vol, ["spleen", "liver"], modality="CT")  # only the head runs
    np.testing.assert_array_equal(again.structures[1].mask, first.structures[0].mask)
    with pytest.raises(RuntimeError, match="encoded again"):  # another modality is another input
        segmenter.segment(vol, ["liver"], modality="MR")


@pytest.mark.parametrize("grid", ["stored", "oblique"])
def test_bbox_restoration_equals_full_resampling(segmenter, phantom_ct, grid):
    """Masks restored inside each structure's box equal the full-grid probabilities > 0.5, and the
    streamed statistics equal statistics recomputed from the whole arrays (separable path for the
    stored axis-aligned grid, grid_sample for the oblique one)."""
    vol = load_volume(phantom_ct)
    if grid == "oblique":
        vol = Volume(vol.array, _affines()["oblique"], None, "oblique")
    prompts = ["liver", "spleen", "body", "left lung"]
    lean = segmenter.segment(vol, prompts, modality="CT")
    full = segmenter.segment(vol, prompts, modality="CT", probabilities=True)
    for a, b in zip(lean.structures, full.structures):
        assert a.prob is None and b.prob.dtype == np.float16 and b.prob.shape == vol.shape
        np.testing.assert_array_equal(a.mask, b.mask)
        agree = np.mean(a.mask == (b.prob.astype(np.float32) > 0.5))
        assert agree > 0.999  # float16 rounding may move voxels sitting at exactly 0.5
        ref = structure_statistics(b.mask, vol, b.prob, b.laterality)
        for key in ("voxel_count", "volume_ml", "bbox_voxel", "laterality"):
            assert a.stats[key] == ref[key], key
        if ref["voxel_count"]:
            np.testing.assert_allclose(a.stats["centroid_world_mm"], ref["centroid_world_mm"], atol=1e-6)
            np.testing.assert_allclose(a.stats["intensity_mean"], ref["intensity_mean"], rtol=1e-6)
            np.testing.assert_allclose(a.stats["mean_confidence"], ref["mean_confidence"], atol=2e-3)


def test_array_input_all_concepts_and_tta(segmenter, phantom_ct):
    vol = load_volume(phantom_ct)
    with pytest.raises(InputError, match="affine"):
        segmenter.segment(vol.array, ["liver"])
    res = segmenter.segment(vol.array, None, "CT", affine=vol.affine, all_concepts=True)
    assert {s.concept for s in res.structures} == segmenter.trained and not res.refused
    segmenter.flip_trained = True  # as if trained with lr_flip_prob > 0: the mirrored pass runs
    try:
        tta = segmenter.segment(vol, ["left kidney", "liver"], "CT", tta=True)
    finally:
        segmenter.flip_trained = False
    assert len(segmenter._cache["features"]) == 2
    assert all(s.mask.shape == vol.shape and s.mask.dtype == bool for s in tta.structures)
    with pytest.raises(InputError, match="no prompts"):
        segmenter.segment(vol, [])


def test_modality_order(segmenter, phantom_ct, caplog):
    vol = load_volume(phantom_ct)
    assert segmenter.segment(vol, ["liver"], "mri").modality == "MR"  # the argument wins
    dicom_like = Volume(vol.array, vol.affine, "PT", "scan")
    assert segmenter.segment(dicom_like, ["liver"]).modality == "PET"  # then DICOM metadata
    mr_like = Volume(vol.array + 1024.0, vol.affine, None, "scan")  # no air at -1000: not known as CT
    assert segmenter.segment(mr_like, ["liver on MR"]).modality == "MR"  # then a prompt qualifier
    with caplog.at_level(logging.WARNING, logger="sat.infer.segmenter"):
        assert segmenter.segment(vol, ["liver"]).modality == "CT"  # then intensities, with a warning
    assert "inferred CT" in caplog.text
    with pytest.raises(InputError, match="unknown modality"):
        segmenter.segment(vol, ["liver"], "XR")


def test_conflicting_modalities_are_errors_naming_both(segmenter, phantom_ct, caplog):
    """Issue 19 item 6: one prompt's modality word used to switch the whole image silently."""
    vol = load_volume(phantom_ct)
    with pytest.raises(InputError, match=r"'liver on MR' \(MR\) and 'spleen \(CT\)' \(CT\)"):
        segmenter.segment(vol, ["liver on MR", "spleen (CT)"])
    with pytest.raises(InputError, match="'liver on MR' names MR but the image has CT intensities"):
        segmenter.segment(vol, ["liver on MR"])
    with pytest.raises(InputError, match="names MR but the image's DICOM metadata says CT"):
        segmenter.segment(Volume(vol.array, vol.affine, "CT", "scan"), ["liver on MR"])
    with caplog.at_level(logging.WARNING, logger="sat.infer.segmenter"):
        res = segmenter.segment(vol, ["liver on MR", "spleen (CT)"], "CT")  # the flag wins, with a warning
    assert res.modality == "CT" and "--modality CT overrides MR in prompt 'liver on MR'" in caplog.text
    assert segmenter.segment(vol, ["liver (CT)", "spleen on CT"]).modality == "CT"  # agreeing prompts are fine


def test_checkpoint_errors(tmp_path, tiny_checkpoint):
    with pytest.raises(InputError, match="not found"):
        Segmenter.from_checkpoint(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError, match="corrupt"):
        Segmenter.from_checkpoint(junk)
    blob = torch.load(tiny_checkpoint, weights_only=True)
    blob["state_dict"] = {k: v for i, (k, v) in enumerate(blob["state_dict"].items()) if i % 2}
    torch.save(blob, tmp_path / "partial.ckpt")
    with pytest.raises(InputError, match="does not load|corrupt"):
        Segmenter.from_checkpoint(tmp_path / "partial.ckpt")
    with pytest.raises(InputError, match="device"):
        Segmenter.from_checkpoint(tiny_checkpoint, device="tpu")
