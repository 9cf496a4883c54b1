"""Hostile image files against the readers every entry point uses (issue 20, rows 1-5, 9, 10, 12, 14).

Each test feeds a crafted file to :func:`sat.io.volume.load_volume` (and, where the agent is
involved, to the real tool handlers through an in-process :class:`Dispatcher`; the stdio server
itself is driven in ``test_server.py``) and asserts a one-line refusal, bounded time and memory.
"""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sat.agent.safety import SafetyPolicy
from sat.agent.tools import Dispatcher, ToolFailure
from sat.errors import InputError
from sat.io.volume import load_volume


def _no_model():
    pytest.fail("the model must not be needed to refuse this input")


def _refused(path, limits, pattern: str) -> str:
    with pytest.raises(InputError, match=pattern) as info:
        load_volume(path, **({"limits": limits} if limits is not None else {}))
    assert "\n" not in str(info.value)
    return str(info.value)


def test_row01_detached_header_outside_root_is_refused(h, root, tmp_path):
    secret = tmp_path / "outside" / "secret.raw"
    secret.write_bytes(bytes(range(1, 65)))
    h.mhd_pointing_at(root, str(secret))
    # through the measure tool: intensity statistics of the outside file are never returned
    h.write_nifti(root / "mask.nii.gz", np.ones((4, 4, 4), np.uint8))
    d = Dispatcher(_no_model, SafetyPolicy(allowed_roots=[root]))
    with pytest.raises(ToolFailure, match="outside the allowed roots"):
        d.call("measure", {"mask_path": "mask.nii.gz", "image_path": "evil.mhd"})
    limits = SafetyPolicy(allowed_roots=[root]).limits()
    for path in (h.mhd_pointing_at(root, str(secret)), h.mhd_pointing_at(root, "../outside/secret.raw", name="rel.mhd"),
                 h.nhdr_pointing_at(root, str(secret)),
                 h.nhdr_pointing_at(root, "../outside/secret.raw", name="rel.nhdr")):
        _refused(path, limits, "outside the allowed roots")
    _refused(h.mhd_pointing_at(root, "/proc/self/environ", name="proc.mhd"), limits, "system file")
    _refused(h.mhd_pointing_at(root, "LIST", name="list.mhd"), limits, "list or pattern")
    (root / "ok.raw").write_bytes(bytes(64))  # a data file inside the root still loads
    assert load_volume(h.mhd_pointing_at(root, "ok.raw", name="ok.mhd"), limits=limits).shape == (4, 4, 4)


def test_row02_symlinked_dicom_slices_are_refused(h, root, tmp_path):
    series = h.write_dicom_series(tmp_path / "outside" / "series", n=6)
    linked = root / "linked"
    linked.mkdir()
    for f in sorted(series.iterdir()):
        (linked / f.name).symlink_to(f)
    d = Dispatcher(_no_model, SafetyPolicy(allowed_roots=[root]))
    with pytest.raises(ToolFailure, match="outside the allowed roots"):
        d.call("segment", {"image_path": "linked", "prompts": ["liver"]})
    _refused(linked, SafetyPolicy(allowed_roots=[root]).limits(), "outside the allowed roots")


def test_row03_fifo_is_refused_at_once(h, root):
    fifo = root / "x.nii.gz"
    os.mkfifo(fifo)
    with pytest.raises(ToolFailure, match="FIFO"):  # the agent's path check
        Dispatcher(_no_model, SafetyPolicy(allowed_roots=[root])).call(
            "segment", {"image_path": "x.nii.gz", "prompts": ["liver"]})
    # the CLI/API reader (no roots) never opens it: a blocked open would hit the timeout
    r = h.run_bounded(f"""
        try:
            load_volume({str(fifo)!r})
        except InputError as exc:
            print("REFUSED", exc)
        """, imports="from sat.io.volume import load_volume\nfrom sat.errors import InputError\n", timeout_s=60)
    assert "REFUSED" in r.stdout and "FIFO" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("voxel_mm", [300.0, 3000.0])
def test_row04_huge_voxels_are_refused_quickly(h, tmp_path, voxel_mm):
    path = h.write_nifti(tmp_path / "tiny.nii.gz", np.zeros((4, 4, 4), np.int16), spacing=(voxel_mm,) * 3)
    assert path.stat().st_size < 200
    r = h.run_bounded(f"""
        try:
            load_volume({str(path)!r})
        except InputError as exc:
            print("REFUSED", exc)
        """, imports="from sat.io.volume import load_volume\nfrom sat.errors import InputError\n",
        headroom_mb=300, timeout_s=60)
    assert "REFUSED" in r.stdout and "spacing" in r.stdout, r.stdout + r.stderr


def test_row04_model_grid_is_capped_before_allocation(h):
    from sat.volume.geometry import ras_grid

    with pytest.raises(InputError, match="SAT_MAX_GRID_VOXELS"):  # 40 mm voxels over 20 m: 1.6e9 grid voxels
        ras_grid(np.diag([40.0, 40.0, 40.0, 1.0]), (512, 512, 8), (4.0, 4.0, 4.0))
    assert ras_grid(np.diag([1.0, 1.0, 1.0, 1.0]), (512, 512, 300), (1.5, 1.5, 1.5))[1] == (342, 342, 200)


@pytest.mark.slow
def test_row04_segmenter_on_huge_extent_refuses_in_bounded_memory(h, tmp_path, tiny_checkpoint):
    path = h.write_nifti(tmp_path / "wide.nii.gz", np.zeros((512, 512, 16), np.int16), spacing=(40.0, 40.0, 40.0))
    r = h.run_bounded(f"""
        seg = Segmenter.from_checkpoint({str(tiny_checkpoint)!r}, device="cpu")
        try:
            seg.segment({str(path)!r}, ["liver"])
        except InputError as exc:
            print("REFUSED", exc)
        """, imports="from sat.infer.segmenter import Segmenter\nfrom sat.errors import InputError\n",
        headroom_mb=1500, timeout_s=240)
    assert "REFUSED" in r.stdout and "SAT_MAX_GRID_VOXELS" in r.stdout, r.stdout + r.stderr[-2000:]


def test_row05_sizes_are_checked_before_decoding(h, tmp_path):
    mhd = h.mhd_pointing_at(tmp_path, "/dev/zero", dims=(1024, 1024, 1024))
    assert mhd.stat().st_size < 200
    zeros = h.write_nifti(tmp_path / "zeros.nii.gz", np.zeros((256, 256, 256), np.uint8))
    assert zeros.stat().st_size < 500_000
    r = h.run_bounded(f"""
        for path in ({str(mhd)!r}, {str(zeros)!r}):
            try:
                load_volume(path)
                print("LOADED", path)
            except InputError as exc:
                print("REFUSED", exc)
        """, imports="import SimpleITK\nfrom sat.io.volume import load_volume\nfrom sat.errors import InputError\n",
        headroom_mb=200, timeout_s=60, env={"SAT_MAX_VOXELS": "1000000"})
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("REFUSED") for line in lines), r.stdout + r.stderr[-2000:]
    assert "1073741824 voxels" in lines[0] or "system file" in lines[0]
    assert "16777216 voxels" in lines[1]  # the .nii.gz header declares 256^3: refused before decompressing


def test_row09_dicom_slice_gaps_duplicates_and_fifos(h, tmp_path):
    good = h.write_dicom_series(tmp_path / "good", n=30)
    vol = load_volume(good)
    assert vol.header_meta["slices"]["spacing_mm"] == pytest.approx(3.0)
    assert np.allclose(vol.spacing, [1.0, 1.0, 3.0])
    gap = h.write_dicom_series(tmp_path / "gap", n=30)
    for k in range(10, 15):  # 5 of 30 slices missing: ITK alone would say 3.625 mm
        (gap / f"slice_{k:03d}.dcm").unlink()
    _refused(gap, None, "5 slice\\(s\\) missing")
    dup = h.write_dicom_series(tmp_path / "dup", n=12)
    shutil.copy(dup / "slice_005.dcm", dup / "slice_005_copy.dcm")
    _refused(dup, None, "duplicated slice position|missing|unevenly")
    fifo = h.write_dicom_series(tmp_path / "fifo", n=12)
    os.mkfifo(fifo / "slice_999.dcm")
    _refused(fifo, None, "FIFO")


def test_row09_slice_geometry_is_reported_in_result_and_statistics(h, segmenter, tmp_path):
    import json

    vol = load_volume(h.write_dicom_series(tmp_path / "series", n=12))
    summary = segmenter.segment(vol, ["liver"]).save(tmp_path / "out", preview=False)
    stats = json.loads((tmp_path / "out" / "statistics.json").read_text())
    assert summary["input_slices"]["spacing_mm"] == pytest.approx(3.0) and summary["input_slices"]["uniform"]
    assert json.loads((tmp_path / "out" / "result.json").read_text())["input_slices"] == summary["input_slices"]
    assert all(s["input_slices"]["n_slices"] == 12 for s in stats.values()) and stats


def _zip_with_flags(path: Path, *, flags: int = 0, method: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("slice.dcm", b"x" * 100)
    raw = bytearray(path.read_bytes())
    for sig, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = raw.index(sig)
        old = struct.unpack("<H", raw[at + flag_at:at + flag_at + 2])[0]
        raw[at + flag_at:at + flag_at + 2] = struct.pack("<H", old | flags)
        if method is not None:
            raw[at + method_at:at + method_at + 2] = struct.pack("<H", method)
    path.write_bytes(bytes(raw))
    return path


def test_row10_zip_bomb_encrypted_and_unknown_method(h, tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("slice.dcm", "w") as member:
            chunk = bytes(1 << 20)
            for _ in range(96):  # 96 MiB of zeros in a ~100 KB archive
                member.write(chunk)
    assert bomb.stat().st_size < 500_000
    unpack = tmp_path / "unpack"
    _refused(bomb, None, "zip bomb")
    limits = SafetyPolicy(allowed_roots=[tmp_path], output_root=str(tmp_path / "runs")).limits()
    assert limits.tmp_dir is not None and str(limits.tmp_dir).startswith(str(tmp_path))  # server: inside a root
    _refused(bomb, limits, "zip bomb")
    assert not unpack.exists() and not (tmp_path / "runs" / ".unpack").exists()  # refused before writing
    _refused(_zip_with_flags(tmp_path / "enc.zip", flags=0x1), None, "encrypted")
    _refused(_zip_with_flags(tmp_path / "meth.zip", method=99), None, "compression method 99")


def _nifti_bytes(data: np.ndarray, klass=nib.Nifti1Image) -> bytearray:
    return bytearray(klass(data, np.eye(4)).to_bytes())


def test_row12_malformed_nifti_headers_are_one_line(h, tmp_path):
    raw = _nifti_bytes(np.zeros((4, 4, 4), np.int16))
    raw[40:42] = struct.pack("<h", 9)  # dim[0] = 9
    (tmp_path / "dim9.nii").write_bytes(raw)
    raw = _nifti_bytes(np.zeros((4, 4, 4), np.int16))
    ext = struct.pack("<ii", 2**31 - 16, 6) + b"junk" * 2  # one extension claiming 2 GiB
    raw = raw[:348] + b"\x01\x00\x00\x00" + ext + raw[352:]
    raw[108:112] = struct.pack("<f", 368.0)  # vox_offset past the extension, so it is read
    (tmp_path / "ext.nii").write_bytes(raw)
    raw = _nifti_bytes(np.zeros((4, 4, 4), np.int16), nib.Nifti2Image)
    raw[16:16 + 64] = struct.pack("<8q", 3, 2**62, 2**62, 4, 1, 1, 1, 1)  # NIfTI-2 dims that overflow
    (tmp_path / "n2.nii").write_bytes(raw)
    rgb = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), str(tmp_path / "rgb.nii.gz"))
    for name, pattern in (("dim9.nii", "dim\\[0\\] = "), ("ext.nii", "not a readable NIfTI"),
                          ("n2.nii", "voxels, more than the limit"), ("rgb.nii.gz", "RGB")):
        _refused(tmp_path / name, None, pattern)


def test_row12_malformed_result_json_in_evaluate(h, tmp_path):
    from sat.eval.case_files import GTCase, find_prediction
    from sat.knowledge.tree import load_tree

    tree = load_tree()
    for i, content in enumerate(('{"structures": ["liver"]}', '{"structures": {"liver": "liver.nii.gz"}}',
                                 '{"structures": {"liver": {"concept": 3, "mask": ["x"]}}}', "[1, 2]")):
        case = tmp_path / f"c{i}"
        case.mkdir()
        (case / "result.json").write_text(content)
        pred = find_prediction(tmp_path, GTCase(f"c{i}", "ds", "CT"), tree)
        assert pred.files == {} and pred.notes, content


def test_row14_complex_nifti_refused_and_gzip_crc_checked(h, tmp_path):
    h.write_nifti(tmp_path / "complex.nii.gz", (np.ones((4, 4, 4)) * (1 + 2j)).astype(np.complex64))
    _refused(tmp_path / "complex.nii.gz", None, "complex")
    good = h.write_nifti(tmp_path / "good.nii.gz", np.arange(64, dtype=np.int16).reshape(4, 4, 4))
    raw = bytearray(good.read_bytes())
    raw[-8] ^= 0xFF  # flip the gzip trailer's CRC-32: the data decompress fine, the check must fail
    (tmp_path / "badcrc.nii.gz").write_bytes(raw)
    assert gzip.decompress(good.read_bytes())  # the original is sound
    _refused(tmp_path / "badcrc.nii.gz", None, "corrupt gzip")
    assert load_volume(good).shape == (4, 4, 4)


def test_row14_bare_string_prompt_is_one_prompt(h, segmenter, tmp_path):
    path = h.write_nifti(tmp_path / "ct.nii.gz", np.full((24, 24, 24), 40, np.int16), spacing=(4.0, 4.0, 4.0))
    result = segmenter.segment(path, "liver")
    assert [s.prompt for s in result.structures] + [r["prompt"] for r in result.refused] == ["liver"]
