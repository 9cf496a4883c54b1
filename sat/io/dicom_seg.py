"""DICOM-SEG output (highdicom) for results whose input was a DICOM series (folder or zip).

One binary segment per answered prompt, referencing the source slices, so PACS viewers overlay it
on the original series. Overlapping structures stay separate segments. Concepts are coded in the
private scheme ``99SAT`` (value = concept id, meaning = canonical name); lesions go under the
SNOMED category "Morphologically Abnormal Structure", everything else under "Anatomical Structure".
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from sat.errors import InputError

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


def _description(number: int, structure, lesion: bool):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    import sat

    category = codes.SCT.MorphologicallyAbnormalStructure if lesion else codes.SCT.AnatomicalStructure
    kind = hd.sr.CodedConcept(value=structure.concept[:16], scheme_designator="99SAT",
                              meaning=structure.name[:64])
    algorithm = hd.AlgorithmIdentificationSequence(name="sat", family=codes.cid7162.ArtificialIntelligence,
                                                   version=sat.__version__)
    return hd.seg.SegmentDescription(segment_number=number, segment_label=structure.prompt[:64],
                                     segmented_property_category=category, segmented_property_type=kind,
                                     algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                     algorithm_identification=algorithm)


def write_dicom_seg(result, path) -> Path | None:
    """Write ``result``'s structures as one binary DICOM-SEG instance referencing the source series.

    Args:
        result: a :class:`SegmentationResult` whose volume was loaded from a DICOM folder or zip.
        path: output ``.dcm`` path.

    Returns:
        The written path, or ``None`` when there is no structure to write.

    Raises:
        InputError: the input was not DICOM, or its slices no longer match the volume.
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
    _complete(sources, float(vol.spacing[2]))
    tree = None
    try:
        from sat.knowledge.tree import load_tree

        tree = load_tree()
    except (OSError, ValueError):
        pass
    lesion = [tree is not None and s.concept in tree and tree.get(s.concept).kind == "lesion"
              for s in result.structures]
    # volume index (x = column, y = row, z = slice) -> DICOM frames (slice, row, column, segment)
    pixels = np.stack([s.mask.transpose(2, 1, 0) for s in result.structures], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(i, s, les) for i, (s, les) in
                              enumerate(zip(result.structures, lesion), start=1)],
        series_instance_uid=hd.UID(), series_number=900, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="sat", manufacturer_model_name="sat text-prompted segmenter",
        software_versions=sat.__version__, device_serial_number="0",
        series_description="sat segmentation", omit_empty_frames=bool(pixels.any()))
    path = Path(path)
    try:
        seg.save_as(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot write DICOM-SEG ({type(exc).__name__})") from None
    return path
