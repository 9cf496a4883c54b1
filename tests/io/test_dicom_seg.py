"""DICOM-SEG output for DICOM inputs: a phantom series written by SimpleITK, read back by highdicom."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from sat.io.volume import load_volume
from sat.infer.result import SegmentationResult, Structure

SIZE = (24, 20, 6)  # x (columns), y (rows), slices


def _write_series(folder: Path) -> Path:
    """A CT phantom as one file per slice, LPS direction with a 10 degree in-plane rotation."""
    folder.mkdir()
    arr = np.full(SIZE[::-1], -1000, np.int16)  # (z, y, x)
    arr[:, 4:16, 5:20] = 40
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.5, 1.2, 3.0))
    c, s = np.cos(np.deg2rad(10)), np.sin(np.deg2rad(10))
    image.SetDirection((c, -s, 0, s, c, 0, 0, 0, 1))
    image.SetOrigin((-20.0, 10.0, 5.0))
    uid = "1.2.826.0.1.3680043.2.1125.9.77"
    d = image.GetDirection()
    tags = {"0008|0060": "CT", "0020|000e": uid + ".1", "0020|000d": uid + ".2", "0010|0020": "PHANTOM1",
            "0010|0010": "Phantom^Test", "0008|0016": "1.2.840.10008.5.1.4.1.1.2", "0020|0052": uid + ".4",
            "0020|0037": "\\".join(f"{v:.10f}" for v in (d[0], d[3], d[6], d[1], d[4], d[7]))}
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(SIZE[2]):
        sl = image[:, :, k]
        for tag, value in tags.items():
            sl.SetMetaData(tag, value)
        sl.SetMetaData("0020|0032", "\\".join(f"{v:.10f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))))
        sl.SetMetaData("0020|0013", str(k + 1))
        sl.SetMetaData("0008|0018", f"{uid}.3.{k + 1}")
        writer.SetFileName(str(folder / f"im{(k * 7) % SIZE[2]:03d}.dcm"))  # file order != slice order
        writer.Execute(sl)
    return folder


def _result(volume) -> SegmentationResult:
    a = np.zeros(volume.shape, bool)
    a[6:14, 5:12, 1:4] = True
    b = np.zeros(volume.shape, bool)
    b[10:18, 8:15, 2:5] = True  # overlaps a
    return SegmentationResult(volume, "CT", [
        Structure("liver", "liver", "liver", ["liver"], a, None, "none"),
        Structure("liver tumour", "liver_tumor", "liver tumour", ["liver_tumor"], b, None, "none")], [])


@pytest.mark.parametrize("packed", [False, True])
def test_dicom_seg_round_trip(tmp_path, packed):
    import highdicom as hd
    import pydicom

    folder = _write_series(tmp_path / "series")
    source = folder
    if packed:
        source = tmp_path / "series.zip"
        with zipfile.ZipFile(source, "w") as zf:
            for f in folder.iterdir():
                zf.write(f, f"study/{f.name}")
    volume = load_volume(source)
    assert volume.modality == "CT" and volume.shape == SIZE
    result = _result(volume)
    summary = result.save(tmp_path / "out", formats=("nifti", "dicom_seg"), preview=False)
    seg = hd.seg.segread(summary["dicom_seg"])
    assert seg.number_of_segments == 2 and seg.PatientID == "PHANTOM1"
    labels = [seg.get_segment_description(i).segment_label for i in (1, 2)]
    assert labels == ["liver", "liver tumour"]
    assert seg.get_segment_description(2).segmented_property_category.meaning == "Morphologically Abnormal Structure"
    # every frame sits on its source slice: compare through the SOP instance UIDs
    by_uid = {}
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        by_uid[ds.SOPInstanceUID] = ds
    order = [p["sop_uid"] for p in _slices(volume)]
    for number, structure in enumerate(result.structures, start=1):
        for k, uid in enumerate(order):
            try:
                frame = seg.get_pixels_by_source_instance(
                    source_sop_instance_uids=[uid], segment_numbers=[number], assert_missing_frames_are_empty=True,
                    ignore_spatial_locations=True)[0, :, :, 0]  # (rows, columns)
            except (KeyError, ValueError):
                frame = np.zeros(SIZE[1::-1], bool)
            np.testing.assert_array_equal(frame.astype(bool), structure.mask[:, :, k].T)


def _slices(volume):
    """Source SOP instance UIDs in the volume's slice order (as the loader recorded the files)."""
    import pydicom

    meta = volume.header_meta
    if meta.get("dicom_archive"):
        with zipfile.ZipFile(meta["dicom_archive"]) as zf:
            return [{"sop_uid": pydicom.dcmread(zf.open(n)).SOPInstanceUID} for n in meta["dicom_files"]]
    return [{"sop_uid": pydicom.dcmread(n).SOPInstanceUID} for n in meta["dicom_files"]]


def test_folder_of_series_is_a_batch(tmp_path):
    from sat.infer.batch import discover_cases

    root = tmp_path / "study"
    root.mkdir()
    _write_series(root / "ct_a")
    assert discover_cases(root) is None  # one series: a single input
    _write_series(root / "ct_b")
    cases = discover_cases(root)
    assert [c.case_id for c in cases] == ["ct_a", "ct_b"] and load_volume(cases[1].path).shape == SIZE


def _anonymise(folder: Path, *, file_meta_too: bool = False) -> Path:
    """Blank identifying attributes as anonymisers do: SOP UIDs, patient name and id (the file meta
    keeps the SOP UIDs unless ``file_meta_too``)."""
    import pydicom

    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        ds.SOPClassUID = ds.SOPInstanceUID = ds.PatientName = ds.PatientID = ""
        if file_meta_too:
            ds.file_meta.MediaStorageSOPClassUID = ""
        ds.save_as(f)
    return folder


def test_anonymised_series_is_referenced_through_the_file_meta_with_snomed_codes(tmp_path):
    import highdicom as hd
    import pydicom

    folder = _anonymise(_write_series(tmp_path / "series"))
    volume = load_volume(folder)
    result = _result(volume)
    side = np.zeros(volume.shape, bool)
    side[2:6, 2:6, 0:2] = True
    result.structures.append(Structure("left kidney", "kidney_left", "left kidney", ["kidney_left"], side, None,
                                       "left"))
    summary = result.save(tmp_path / "out", formats=("nifti", "dicom_seg"), preview=False)
    seg = hd.seg.segread(summary["dicom_seg"])
    metas = [pydicom.dcmread(f).file_meta for f in folder.iterdir()]
    referenced = {r.ReferencedSOPInstanceUID for r in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {m.MediaStorageSOPInstanceUID for m in metas}
    liver, tumour, kidney = (seg.get_segment_description(i) for i in (1, 2, 3))
    assert (liver.segmented_property_type.scheme_designator, liver.segmented_property_type.value) == ("SCT", "10200004")
    assert tumour.segmented_property_type.meaning == "Neoplasm"
    assert tumour.segmented_property_category.value == "49755003" and tumour.anatomic_regions[0].value == "10200004"
    assert kidney.segmented_property_type.value == "64033007"  # kidney, the side as a modifier
    (modifier,) = kidney.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence
    assert (modifier.CodeValue, modifier.CodeMeaning) == ("7771000", "Left")


def test_series_that_cannot_be_referenced_is_one_line_and_exit_2(tmp_path, tiny_checkpoint, capsys):
    from sat.cli import main
    from sat.errors import InputError
    from sat.io.dicom_seg import write_dicom_seg

    folder = _anonymise(_write_series(tmp_path / "series"), file_meta_too=True)
    with pytest.raises(InputError, match="slice 1 has no SOPClassUID") as info:
        write_dicom_seg(_result(load_volume(folder)), tmp_path / "seg.dcm")
    assert "\n" not in str(info.value)
    rc = main(["segment", "-i", str(folder), "-o", str(tmp_path / "out"), "-p", "liver", "--checkpoint",
               str(tiny_checkpoint), "--formats", "nifti,dicom_seg", "--modality", "CT", "--no-preview"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error" in line] == [
        line for line in err.splitlines() if "cannot reference" in line]
