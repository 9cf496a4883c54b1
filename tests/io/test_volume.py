"""Geometry round-trips and strict input validation of sat.io.volume, with real files in tmp_path."""
from __future__ import annotations

import gzip
import re
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from sat.errors import InputError
from sat.io.volume import Volume, load_volume
from sat.io.writers import check_writable_dir, safe_filename, save_mask, save_probabilities, unique_filenames

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "totalseg_ct" / "ct.nii.gz"
SHAPE = (9, 7, 5)


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _affine(kind: str) -> np.ndarray:
    """RAS-, LPS- or obliquely oriented voxel -> RAS mm affines with anisotropic spacing."""
    spacing = np.diag([0.8, 1.1, 2.5])
    rot = {"ras": np.eye(3), "lps": np.diag([-1.0, -1.0, 1.0]), "oblique": _rotation(0.3, -0.2, 0.5)}[kind]
    aff = np.eye(4)
    aff[:3, :3] = rot @ spacing
    aff[:3, 3] = [-12.5, 30.25, 101.0]
    return aff


def _data() -> np.ndarray:
    return np.random.default_rng(0).integers(-1000, 1500, SHAPE).astype(np.int16)  # (X, Y, Z)


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def _write_dicom_series(image: sitk.Image, folder: Path) -> Path:
    """One CT slice file per k with position/orientation tags, as a scanner would write."""
    folder.mkdir()
    d = image.GetDirection()
    uid = "1.2.826.0.1.3680043.2.1125.7.4242"
    common = {"0008|0060": "CT", "0020|000e": uid + ".1", "0020|000d": uid + ".2",
              "0008|0016": "1.2.840.10008.5.1.4.1.1.2", "0008|103e": "test series",
              "0020|0037": "\\".join(f"{v:.10f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))}
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetSize()[2]):
        sl = image[:, :, k]
        for tag, value in common.items():
            sl.SetMetaData(tag, value)
        pos = image.TransformIndexToPhysicalPoint((0, 0, k))
        sl.SetMetaData("0020|0032", "\\".join(f"{v:.10f}" for v in pos))
        sl.SetMetaData("0020|0013", str(k + 1))
        sl.SetMetaData("0008|0018", f"{uid}.3.{k + 1}")
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(sl)
    return folder


@pytest.mark.parametrize("kind", ["ras", "lps", "oblique"])
def test_nifti_nrrd_dicom_agree(tmp_path: Path, kind: str) -> None:
    data, affine = _data(), _affine(kind)
    nii = _write_nifti(tmp_path / "img.nii.gz", data, affine)
    ref = load_volume(nii)
    np.testing.assert_array_equal(ref.array, data.astype(np.float32))
    np.testing.assert_allclose(ref.affine, affine, atol=1e-4)
    np.testing.assert_allclose(ref.spacing, [0.8, 1.1, 2.5], atol=1e-6)
    # ITK's own NIfTI reader (LPS, (z, y, x)) is the independent oracle for the NRRD/DICOM geometry.
    itk = sitk.ReadImage(str(nii))
    sitk.WriteImage(itk, str(tmp_path / "img.nrrd"))
    candidates = [load_volume(tmp_path / "img.nrrd")]
    candidates.append(load_volume(_write_dicom_series(itk, tmp_path / "dicom")))
    for vol in candidates:
        np.testing.assert_array_equal(vol.array, ref.array)
        np.testing.assert_allclose(vol.affine, ref.affine, atol=1e-4)
        assert vol.array.dtype == np.float32 and vol.affine.dtype == np.float64
    assert candidates[1].modality == "CT" and candidates[1].header_meta["SeriesDescription"] == "test series"


def test_dicom_zip_and_nested_folder(tmp_path: Path) -> None:
    data, affine = _data(), _affine("lps")
    itk = sitk.ReadImage(str(_write_nifti(tmp_path / "img.nii.gz", data, affine)))
    (tmp_path / "patient").mkdir()
    folder = _write_dicom_series(itk, tmp_path / "patient" / "series")
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"study/series/{f.name}")
    for src in (tmp_path / "patient", archive):
        vol = load_volume(src)
        np.testing.assert_array_equal(vol.array, data.astype(np.float32))
        np.testing.assert_allclose(vol.affine, affine, atol=1e-4)
        assert vol.modality == "CT" and vol.source == str(src)


def test_channels(tmp_path: Path) -> None:
    data4 = np.stack([_data() + c for c in range(3)], axis=-1)  # (X, Y, Z, C)
    path = _write_nifti(tmp_path / "mc.nii.gz", data4, _affine("ras"))
    np.testing.assert_array_equal(load_volume(path, channel=2).array, data4[..., 2])
    with pytest.raises(InputError, match="3 channels.*channel"):
        load_volume(path)
    with pytest.raises(InputError, match="channel 3 is out of range"):
        load_volume(path, channel=3)
    vec = sitk.GetImageFromArray(data4.transpose(2, 1, 0, 3), isVector=True)
    sitk.WriteImage(vec, str(tmp_path / "vec.nrrd"))
    np.testing.assert_array_equal(load_volume(tmp_path / "vec.nrrd", channel=1).array, data4[..., 1])
    single = _write_nifti(tmp_path / "one.nii.gz", data4[..., :1], _affine("ras"))  # (X, Y, Z, 1)
    assert load_volume(single).shape == SHAPE and load_volume(single, channel=0).shape == SHAPE
    with pytest.raises(InputError, match="out of range"):
        load_volume(_data(), _affine("ras"), channel=1)


def _one_dicom_slice(tmp: Path) -> Path:
    itk = sitk.GetImageFromArray(_data().transpose(2, 1, 0))
    return next(iter(sorted(_write_dicom_series(itk, tmp / "one_series").iterdir())))


def _zero_spacing_nifti(path: Path) -> Path:
    """A broken header whose sform has a zero column (no qform): a singular affine."""
    img = nib.Nifti1Image(_data(), np.eye(4))
    img.set_qform(None, code=0)
    img.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=1)
    nib.save(img, str(path))
    return path


def _bad_inputs(tmp: Path) -> dict[str, tuple[object, dict, str]]:
    """name -> (input, kwargs, regex the one-line message must match)."""
    (tmp / "empty_dir").mkdir()
    (tmp / "text_dir").mkdir()
    (tmp / "text_dir" / "notes.txt").write_text("hello")
    (tmp / "fake.nii.gz").write_text("this is not an image")
    gzip.open(tmp / "fake_gz.nii.gz", "wb").write(b"plain text inside a real gzip stream" * 20)
    (tmp / "notes.txt").write_text("hello")
    (tmp / "fake.nrrd").write_text("not nrrd")
    (tmp / "fake.zip").write_text("not a zip")
    with zipfile.ZipFile(tmp / "nodicom.zip", "w") as zf:
        zf.writestr("readme.txt", "nothing here")
    big = np.random.default_rng(1).normal(size=(40, 40, 40)).astype(np.float32)
    raw = _write_nifti(tmp / "full.nii.gz", big, np.eye(4)).read_bytes()
    (tmp / "truncated.nii.gz").write_bytes(raw[: len(raw) // 2])
    _write_nifti(tmp / "flat.nii.gz", np.ones((8, 8), np.int16), np.eye(4))
    nan, inf = np.zeros(SHAPE, np.float32), np.zeros(SHAPE, np.float32)
    nan[0, 0, :3] = np.nan
    inf[1, 1, 1] = -np.inf
    _write_nifti(tmp / "nan.nii.gz", nan, np.eye(4))
    singular = np.diag([1.0, 0.0, 1.0, 1.0])
    return {
        "missing": (tmp / "nope.nii.gz", {}, "no such file"),
        "empty dir": (tmp / "empty_dir", {}, "no DICOM series"),
        "text dir": (tmp / "text_dir", {}, "no DICOM series"),
        "text as nii.gz": (tmp / "fake.nii.gz", {}, "not a readable NIfTI"),
        "gzip text as nii.gz": (tmp / "fake_gz.nii.gz", {}, "not a readable NIfTI"),
        "txt": (tmp / "notes.txt", {}, "unsupported file type '.txt'"),
        "text as nrrd": (tmp / "fake.nrrd", {}, "not a readable image"),
        "text as zip": (tmp / "fake.zip", {}, "not a readable zip"),
        "zip without dicom": (tmp / "nodicom.zip", {}, "no DICOM series"),
        "truncated": (tmp / "truncated.nii.gz", {}, "not a readable NIfTI"),
        "2D nifti": (tmp / "flat.nii.gz", {}, "2D image"),
        "2D array": (np.ones((8, 8, 1)), {"affine": np.eye(4)}, "2D image"),
        "nan file": (tmp / "nan.nii.gz", {}, "3 of 315 voxels are NaN or Inf"),
        "inf array": (inf, {"affine": np.eye(4)}, "1 of 315 voxels are NaN or Inf"),
        "singular affine": (_data(), {"affine": singular}, "invalid voxel geometry"),
        "nan affine": (_data(), {"affine": np.full((4, 4), np.nan)}, "finite 4x4"),
        "zero spacing file": (_zero_spacing_nifti(tmp / "zero.nii.gz"), {}, "invalid voxel geometry"),
        "empty array": (np.zeros((0, 4, 4)), {"affine": np.eye(4)}, "empty image"),
        "array without affine": (_data(), {}, "needs its 4x4"),
        "5D": (np.zeros(SHAPE + (2, 2)), {"affine": np.eye(4)}, "5D image"),
        "wrong type": (42, {}, "expected a path"),
        "complex array": (_data() * 1j, {"affine": np.eye(4)}, "not real-valued"),
        "affine last row": (_data(), {"affine": np.ones((4, 4))}, "last row"),
        "single dicom slice": (_one_dicom_slice(tmp), {}, "single 2D DICOM slice"),
    }


def test_bad_inputs_raise_one_line_input_error(tmp_path: Path) -> None:
    for name, (src, kwargs, pattern) in _bad_inputs(tmp_path).items():
        with pytest.raises(InputError, match=pattern) as info:
            load_volume(src, **kwargs)
            pytest.fail(f"{name}: no InputError")
        message = str(info.value)
        assert "\n" not in message and len(message) < 400, (name, message)


@pytest.mark.skipif(not SAMPLE.exists(), reason="shared CT sample not present")
def test_real_sample_loads() -> None:
    vol = load_volume(SAMPLE)
    assert vol.shape == (122, 101, 30) and vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.spacing, [3.0, 3.0, 3.0])
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S") and vol.array.min() < -500 < vol.array.max()


def test_volume_passthrough_revalidates() -> None:
    vol = load_volume(_data(), _affine("oblique"))
    again = load_volume(vol)
    np.testing.assert_array_equal(again.array, vol.array)
    with pytest.raises(InputError, match="NaN"):
        load_volume(Volume(np.full(SHAPE, np.nan, np.float32), np.eye(4)))


@pytest.mark.parametrize("kind", ["lps", "oblique"])
def test_save_mask_and_probabilities_keep_affine(tmp_path: Path, kind: str) -> None:
    affine, mask = _affine(kind), _data() > 0
    out = save_mask(mask, affine, tmp_path / "m.nii.gz")
    img = nib.load(str(out))
    assert img.get_data_dtype() == np.uint8 and img.shape == SHAPE
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    np.testing.assert_allclose(img.affine, affine, atol=1e-6)
    np.testing.assert_allclose(img.get_qform(), affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj), mask.astype(np.uint8))
    prob = np.random.default_rng(2).random(SHAPE)
    pimg = nib.load(str(save_probabilities(prob, affine, tmp_path / "p.nii.gz")))
    assert pimg.get_data_dtype() == np.uint8  # NIfTI-1 has no float16: 1/255 steps via scl_slope
    np.testing.assert_allclose(pimg.get_fdata(), prob, atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(pimg.affine, affine, atol=1e-6)
    with pytest.raises(ValueError, match="3D"):
        save_mask(mask[..., 0], affine, tmp_path / "bad.nii.gz")


def test_safe_filename() -> None:
    assert safe_filename("Left Kidney") == "left_kidney"
    assert safe_filename("Rénal  cortex (L)!") == "renal_cortex_l"
    assert safe_filename("../../etc/passwd") == "etc_passwd"
    assert safe_filename("T2-weighted lesion") == "t2-weighted_lesion"
    for odd in ("", "???", "肝臓", "   "):
        stem = safe_filename(odd)
        assert stem.startswith("prompt_") and len(stem) == 15
    assert safe_filename("肝臓") != safe_filename("腎臓")
    long = safe_filename("very long prompt " * 20)
    assert len(long) <= 80 and not long.endswith("_")
    assert all(re.fullmatch(r"[a-z0-9_-]+", safe_filename(p)) for p in ("a/b\\c", "x\x00y", "tab\tname"))


def test_unique_filenames() -> None:
    names = unique_filenames(["Liver", "liver", "liver!", "spleen", "spleen", "a" * 120, "a" * 121])
    assert names["spleen"] == "spleen"
    assert len(set(names.values())) == len(names) == 6
    assert all(names[p].startswith("liver_") for p in ("Liver", "liver", "liver!"))
    assert all(len(s) <= 80 for s in names.values())
    assert unique_filenames(["liver"]) == {"liver": "liver"}


def test_check_writable_dir(tmp_path: Path) -> None:
    out = check_writable_dir(tmp_path / "a" / "b")
    assert out.is_dir() and list(out.iterdir()) == []
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(InputError) as info:
            check_writable_dir(bad)
        assert "\n" not in str(info.value)
