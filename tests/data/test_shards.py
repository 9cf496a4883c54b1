"""``sat shards build|verify|inspect``: manifest, resumability, parts, failures, memory bound, and
the real CT sample round trip."""
from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.cli import main as sat_main
from sat.data.manifest import read_manifest
from sat.data.recipes import load_recipe
from sat.data.adapters import list_cases
from sat.data.shard_build import BuildOptions, bounded_map, build_shards, process_case
from sat.data.shard_format import decode_sample
from sat.data.shard_verify import iter_tar_samples, verify_shards


@pytest.fixture(scope="module")
def msd_shards(tiny_phantoms, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    assert sat_main(["shards", "build", "--recipe", "phantom_msd", "--input", str(tiny_phantoms / "phantom_msd"),
                     "--output", str(out), "--split", "all", "--quiet"]) == 0
    return out


def _samples(folder: Path) -> dict[str, dict]:
    return {s["key"]: s for tar in sorted(folder.glob("*.tar")) for s in map(decode_sample, iter_tar_samples(tar))}


def test_manifest_lists_cases_concepts_checksums(msd_shards):
    m = read_manifest(msd_shards)
    expected = [float(x) for x in load_recipe("phantom_msd").spacing]
    assert m["n_cases"] == 3 and m["n_failures"] == 0 and m["datasets"]["phantom_msd"]["spacing"] == expected
    samples = _samples(msd_shards)
    assert set(samples) == set(m["cases"])
    for key, s in samples.items():
        assert m["cases"][key]["shard"] in m["shards"] and m["cases"][key]["case_id"] == s["meta"]["case_id"]
        assert s["image"].shape[0] == 1 and s["masks"].shape[0] == 6
    voxel_ml = float(np.prod(expected)) / 1000
    liver_ml = sum(s["meta"]["voxels"][0] for s in samples.values()) * voxel_ml
    assert m["concepts"]["liver"]["annotated"] == 3 and m["concepts"]["liver"]["ml"] == pytest.approx(liver_ml, abs=0.01)
    assert all(len(v["sha256"]) == 64 and v["samples"] >= 1 for v in m["shards"].values())


def test_verify_passes_then_catches_corruption(msd_shards, tmp_path):
    rep = verify_shards(msd_shards, preview=tmp_path / "grid.png", n_preview=3)
    assert rep.ok, rep.errors
    assert rep.samples == 3 and Path(rep.preview).stat().st_size > 1000
    broken = tmp_path / "broken"
    shutil.copytree(msd_shards, broken)
    tar = sorted(broken.glob("*.tar"))[0]
    data = bytearray(tar.read_bytes())
    data[2000] ^= 0xFF  # flip one byte inside the first member
    tar.write_bytes(bytes(data))
    assert sat_main(["shards", "verify", str(broken)]) == 1
    assert any("sha256" in e for e in verify_shards(broken).errors)


def test_inspect_prints_concept_names_and_ml(msd_shards, capsys):
    assert sat_main(["shards", "inspect", str(msd_shards), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 3
    assert set(lines[0]) == {"key", "dataset", "modality", "spacing", "shape", "concepts", "source_ml"}
    assert set(lines[0]["source_ml"]) == set(lines[0]["concepts"])
    assert {"liver", "liver tumour", "spleen", "pancreas", "gallbladder", "stomach"} <= set(lines[0]["concepts"])
    assert lines[0]["modality"] == "CT" and all(v >= 0 for v in lines[0]["concepts"].values())


def test_parts_resume_and_workers(tiny_phantoms, tmp_path):
    recipe, src = load_recipe("phantom_totalseg"), tiny_phantoms / "phantom_totalseg"
    p0 = build_shards(recipe, src, tmp_path, BuildOptions(split=None, num_parts=2, part=0), progress=False)
    done = tmp_path / "phantom_totalseg-all-p000.done.json"
    stamp = done.stat().st_mtime_ns
    again = build_shards(recipe, src, tmp_path, BuildOptions(split=None, num_parts=2, part=0), progress=False)
    assert again["skipped"] and done.stat().st_mtime_ns == stamp  # finished part skipped
    p1 = build_shards(recipe, src, tmp_path, BuildOptions(split=None, num_parts=2, part=1, workers=1), progress=False)
    ids0 = {c["case_id"] for c in p0["cases"].values()}
    ids1 = {c["case_id"] for c in p1["cases"].values()}
    assert ids0 == {"phantom_0002", "phantom_0008"} and ids1 == {"phantom_0005"}  # case i -> part i % 2
    m = read_manifest(tmp_path)
    assert m["n_cases"] == 3 and len(m["parts"]) == 2
    # the worker process built exactly what the in-process path builds
    ref = list_cases(recipe, src)[1]
    direct = decode_sample(process_case(ref, recipe, recipe.spacing))
    built = _samples(tmp_path)[direct["key"]]
    assert np.array_equal(built["image"], direct["image"]) and np.array_equal(built["masks"], direct["masks"])


def test_bad_cases_are_recorded_and_fail_the_exit_code(tiny_phantoms, tmp_path, capsys):
    src = tmp_path / "msd"
    shutil.copytree(tiny_phantoms / "phantom_msd", src)
    shutil.copy(tiny_phantoms / "splits.json", tmp_path / "splits.json")  # the recipe's ../splits.json
    (src / "imagesTr" / "phantom_0003.nii.gz").write_bytes(b"not a nifti at all")
    (src / "labelsTr" / "phantom_0006.nii.gz").unlink()
    args = ["shards", "build", "--recipe", "phantom_msd", "--input", str(src), "--split", "all", "--quiet"]
    assert sat_main([*args, "--output", str(tmp_path / "a")]) == 1
    failures = read_manifest(tmp_path / "a")["failures"]
    assert set(failures) == {"phantom_msd/phantom_0003", "phantom_msd/phantom_0006"}
    assert "not a readable NIfTI" in failures["phantom_msd/phantom_0003"]
    assert "missing label file" in failures["phantom_msd/phantom_0006"]
    assert "failed phantom_msd/phantom_0003" in capsys.readouterr().err
    assert read_manifest(tmp_path / "a")["n_cases"] == 1  # the good case was still built
    assert sat_main([*args, "--output", str(tmp_path / "b"), "--max-failures", "2"]) == 0
    assert sat_main(["shards", "build", "--recipe", "no_such", "--input", str(src), "--output", str(tmp_path)]) == 2


def test_bounded_map_keeps_order_and_bounds_in_flight():
    state = {"submitted": 0, "consumed": 0, "peak": 0}
    lock = threading.Lock()

    def work(i):
        time.sleep(0.002 * (i % 3))
        return i * i

    class Counting(ThreadPoolExecutor):
        def submit(self, fn, *args):
            with lock:
                state["submitted"] += 1
                state["peak"] = max(state["peak"], state["submitted"] - state["consumed"])
            return super().submit(fn, *args)

    out = []
    with Counting(2) as pool:
        for r in bounded_map(work, range(30), pool, window=4):
            state["consumed"] += 1
            out.append(r)
    assert out == [i * i for i in range(30)]
    assert state["peak"] <= 4


def test_real_sample_round_trip(sample_dir, tmp_path, capsys):
    assert sat_main(["shards", "build", "--recipe", "totalseg_sample", "--input", str(sample_dir), "--split", "all",
                     "--output", str(tmp_path), "--quiet"]) == 0
    (s,) = _samples(tmp_path).values()
    meta = s["meta"]
    seg = np.asarray(nib.load(sample_dir / "seg.nii.gz").dataobj)
    names = json.loads((sample_dir / "classes.json").read_text())
    present = names["present_in_seg"]
    assert sum(meta["present"]) == len(present) == 41
    value_of = {name: int(v) for v, name in names["class_map"].items()}
    for cid, n, orig_ml in zip(meta["concepts"], meta["voxels"], meta["original_ml"]):
        src_name = load_recipe("totalseg_sample").concepts[cid][0]
        truth_ml = float((seg == value_of[src_name]).sum()) * 27.0 / 1000.0  # 3 mm voxels
        assert orig_ml == pytest.approx(truth_ml, abs=1e-3)
        assert n * 27.0 / 1000.0 == pytest.approx(truth_ml, abs=1e-3), cid  # volumes round-trip
    assert np.allclose(meta["original_affine"], nib.load(sample_dir / "ct.nii.gz").affine)
    assert sat_main(["shards", "verify", str(tmp_path)]) == 0
