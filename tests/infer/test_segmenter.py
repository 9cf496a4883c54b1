"""Segmenter API and `sat segment` on real files: geometry round-trips, prompts, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from sat.infer.segmenter import Segmenter


@pytest.fixture(scope="module")
def seg(tiny_checkpoint):
    return Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")


def _affines():
    ras = np.diag([3.0, 3.0, 4.0, 1.0])
    lps = np.diag([-3.0, -3.0, 4.0, 1.0])
    lps[:3, 3] = [90, 80, -50]
    t = np.deg2rad(20)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    obl = np.eye(4)
    obl[:3, :3] = rot @ np.diag([2.5, 3.0, 4.5])
    obl[:3, 3] = [-40, 12, 7]
    return {"RAS": ras, "LPS": lps, "oblique": obl}


@pytest.mark.parametrize("name", ["RAS", "LPS", "oblique"])
def test_output_geometry_equals_input(seg, tmp_path, name):
    rng = np.random.default_rng(0)
    data = rng.normal(40, 30, size=(37, 30, 23)).astype(np.int16)
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(data, _affines()[name]), path)
    result = seg.segment(str(path), ["liver", "left kidney"], modality="CT")
    assert [s.concept for s in result.structures] == ["liver", "kidney_left"]
    summary = result.save(tmp_path / "out")
    for entry in summary["structures"].values():
        img = nib.load(entry["mask"])
        assert img.shape == data.shape
        assert np.allclose(img.affine, _affines()[name], atol=1e-5)
        assert img.get_data_dtype() == np.uint8


def test_prompts_synonyms_groups_and_refusal(seg, tiny_phantoms):
    image = tiny_phantoms / "phantom_totalseg" / "phantom_0002" / "ct.nii.gz"
    res = seg.segment(str(image), ["hepar", "kidneys", "banana", "lumbar spine"])
    by = {s.prompt: s for s in res.structures}
    assert by["hepar"].concept == "liver"
    assert set(by["kidneys"].used_concepts) <= {"kidneys", "kidney_left", "kidney_right"}
    refused = {r["prompt"]: r for r in res.refused}
    assert "banana" in refused and len(refused["banana"]["suggestions"]) <= 5
    # the random-weight model is only 'trained' on phantom concepts: lumbar spine is known but refused
    assert "lumbar spine" in refused and "not trained" in refused["lumbar spine"]["reason"]


def test_feature_cache_reused_for_new_prompts(seg, tiny_phantoms, monkeypatch):
    from sat.infer import segmenter as mod
    from sat.infer.io import load_volume

    vol = load_volume(tiny_phantoms / "phantom_msd" / "imagesTr" / "phantom_0000.nii.gz")
    seg.segment(vol, ["liver"], modality="CT")
    calls = []
    monkeypatch.setattr(mod, "encode_image", lambda *a, **k: calls.append(1))
    seg.segment(vol, ["spleen", "stomach"], modality="CT")
    assert calls == []


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sat.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_cli_bad_inputs_give_one_line_and_exit_2(tiny_checkpoint, tmp_path):
    text = tmp_path / "notes.nii.gz"
    text.write_text("not an image")
    nan = tmp_path / "nan.nii.gz"
    arr = np.zeros((8, 8, 8), np.float32)
    arr[0, 0, 0] = np.nan
    nib.save(nib.Nifti1Image(arr, np.eye(4)), nan)
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8), np.float32), np.eye(4)), flat)
    cases = [str(tmp_path / "missing.nii.gz"), str(text), str(nan), str(flat)]
    for inp in cases:
        r = _run("segment", "-i", inp, "-o", str(tmp_path / "o"), "-p", "liver", "--checkpoint", str(tiny_checkpoint))
        assert r.returncode == 2, (inp, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_cli_unknown_prompt_refused_without_output(tiny_checkpoint, tiny_phantoms, tmp_path):
    image = tiny_phantoms / "phantom_totalseg" / "phantom_0002" / "ct.nii.gz"
    r = _run("segment", "-i", str(image), "-o", str(tmp_path / "o"), "-p", "banana", "-p", "liver",
             "--checkpoint", str(tiny_checkpoint))
    assert r.returncode == 2
    assert "banana" in r.stderr and "suggestions" in r.stderr
    files = sorted(p.name for p in (tmp_path / "o").glob("*.nii.gz"))
    assert files == ["liver.nii.gz"]
    assert json.loads(r.stdout.strip().splitlines()[-1])["refused"] == 1
