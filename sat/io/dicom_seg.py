"""DICOM-SEG output (highdicom) for results whose input was a DICOM series (folder or zip).

One binary segment per answered prompt, referencing the source slices, so PACS viewers overlay it
on the original series. Overlapping structures stay separate segments. Segments carry SNOMED CT
codes where the concept has one, with the side as a modifier and a lesion's host organ as its
anatomic region (:mod:`sat.io.snomed`); other concepts use the private scheme ``99SAT``.

Anonymised series often blank identifying attributes: a blank SOP Class or Instance UID is taken
from the file meta; a series that still cannot be referenced (no UIDs anywhere, several series,
repeated instances) is one :class:`InputError` line naming what is missing.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from sat.errors import InputError
from sat.io.snomed import segment_codes
from sat.knowledge.tree import load_tree

# Type-2 attributes highdicom copies from the sources; filled with empty values when absent.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID", "StudyDate",
          "StudyTime", "AccessionNumber", "ReferringPhysicianName")


def _read_sources(meta: dict) -> list:
    """The source slices as pydicom datasets, in the volume's slice order (index k)."""
    import pydicom

    files = meta.get("dicom_files") or []
    if meta.get("dicom_archive"):
        with zipfile.ZipFile(meta["dicom_archive"]) as zf:
            return [pydicom.dcmread(zf.open(name)) for name in files]
    return [pydicom.dcmread(name) for name in files]


# dataset attribute -> the file meta element that holds the same UID
_FILE_META = {"SOPClassUID": "MediaStorageSOPClassUID", "SOPInstanceUID": "MediaStorageSOPInstanceUID"}


def _blank(ds, keyword: str) -> bool:
    return str(getattr(ds, keyword, "") or "").strip() == ""


def _check_references(sources: list, where: str) -> None:
    """Fill blank SOP UIDs from the file meta; refuse a series that cannot be referenced.

    Raises:
        InputError: a slice without a SOP Class or Instance UID (dataset and file meta), or without
            a Study / Series Instance UID, slices of several series, or one instance twice.
    """
    from pydicom.uid import UID_dictionary

    for k, ds in enumerate(sources):
        meta = getattr(ds, "file_meta", None)
        for keyword, meta_keyword in _FILE_META.items():
            if _blank(ds, keyword) and meta is not None and not _blank(meta, meta_keyword):
                setattr(ds, keyword, getattr(meta, meta_keyword))
        missing = [kw for kw in (*_FILE_META, "StudyInstanceUID", "SeriesInstanceUID") if _blank(ds, kw)]
        if missing:
            raise InputError(f"{where}: slice {k + 1} has no {' / '.join(missing)} (blank in the dataset"
                             f"{' and the file meta' if any(kw in _FILE_META for kw in missing) else ''}), so a "
                             "DICOM-SEG cannot reference it; write --formats nifti instead")
        if ds.SOPClassUID not in UID_dictionary:
            raise InputError(f"{where}: slice {k + 1} has an unknown SOP Class UID {str(ds.SOPClassUID)[:64]!r}; "
                             "a DICOM-SEG cannot reference it; write --formats nifti instead")
    series = {str(ds.SeriesInstanceUID) for ds in sources}
    if len(series) > 1:
        raise InputError(f"{where}: the slices belong to {len(series)} series; a DICOM-SEG references one")
    if len({str(ds.SOPInstanceUID) for ds in sources}) < len(sources):
        raise InputError(f"{where}: several slices share one SOP Instance UID; a DICOM-SEG cannot tell them apart")


def _complete(sources: list, slice_mm: float) -> None:
    """Give every source the attributes a SEG must copy (empty type-2 values, one frame of reference,
    the slice thickness, which defaults to the slice spacing)."""
    from highdicom import UID

    frame_uid = next((ds.FrameOfReferenceUID for ds in sources if "FrameOfReferenceUID" in ds), None) or UID()
    for ds in sources:
        for keyword in _TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, "")
        if "FrameOfReferenceUID" not in ds:
            ds.FrameOfReferenceUID = frame_uid
        if "SliceThickness" not in ds or ds.SliceThickness in (None, ""):
            ds.SliceThickness = round(float(slice_mm), 6)


def _coded(code):
    import highdicom as hd

    scheme, value, meaning = code
    return hd.sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _description(number: int, structure, codes_of):
    """One segment's description: label = the prompt, codes from :class:`sat.io.snomed.SegmentCodes`."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    import sat

    algorithm = hd.AlgorithmIdentificationSequence(name="sat", family=codes.cid7162.ArtificialIntelligence,
                                                   version=sat.__version__)
    desc = hd.seg.SegmentDescription(segment_number=number, segment_label=structure.prompt[:64],
                                     segmented_property_category=_coded(codes_of.category),
                                     segmented_property_type=_coded(codes_of.type),
                                     algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                     algorithm_identification=algorithm,
                                     anatomic_regions=[_coded(codes_of.region)] if codes_of.region else None)
    if codes_of.modifier is not None:  # the side qualifies the property type (PS3.3 C.8.20.2)
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            _coded(codes_of.modifier)]
    return desc


def write_dicom_seg(result, path) -> Path | None:
    """Write ``result``'s structures as one binary DICOM-SEG instance referencing the source series.

    Args:
        result: a :class:`SegmentationResult` whose volume was loaded from a DICOM folder or zip.
        path: output ``.dcm`` path.

    Returns:
        The written path, or ``None`` when there is no structure to write.

    Raises:
        InputError: the input was not DICOM, its slices no longer match the volume, or the series
            cannot be referenced (one line naming what is missing).
    """
    import highdicom as hd

    import sat

    vol = result.volume
    if vol.header_meta.get("format") != "dicom" or not vol.header_meta.get("dicom_files"):
        raise InputError(f"{vol.source}: DICOM-SEG output needs a DICOM series input (folder or zip); "
                         "use --formats nifti for other inputs")
    if not result.structures:
        return None
    try:
        sources = _read_sources(vol.header_meta)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{vol.source}: cannot re-read the source DICOM slices ({type(exc).__name__})") from None
    if len(sources) != vol.shape[2]:
        raise InputError(f"{vol.source}: {len(sources)} source slices but the volume has {vol.shape[2]}")
    _check_references(sources, str(vol.source))
    _complete(sources, float(vol.spacing[2]))
    tree = None
    try:
        tree = load_tree()
    except (OSError, ValueError):
        pass
    descriptions = [_description(i, s, segment_codes(s.concept, s.name, tree))
                    for i, s in enumerate(result.structures, start=1)]
    # volume index (x = column, y = row, z = slice) -> DICOM frames (slice, row, column, segment)
    pixels = np.stack([s.mask.transpose(2, 1, 0) for s in result.structures], axis=-1).astype(np.uint8)
    try:
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
            series_instance_uid=hd.UID(), series_number=900, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="sat", manufacturer_model_name="sat text-prompted segmenter",
            software_versions=sat.__version__, device_serial_number="0",
            series_description="sat segmentation", omit_empty_frames=bool(pixels.any()))
    except (KeyError, ValueError, AttributeError, TypeError) as exc:  # a source highdicom cannot reference
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise InputError(f"{vol.source}: cannot build a DICOM-SEG referencing this series "
                         f"({type(exc).__name__}: {first}); write --formats nifti instead") from None
    path = Path(path)
    try:
        seg.save_as(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write DICOM-SEG ({type(exc).__name__})") from None
    return path
