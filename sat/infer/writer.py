"""Write a :class:`SegmentationResult` to a folder.

Per structure a uint8 NIfTI named after the prompt; a multilabel NIfTI plus a JSON sidecar naming
its values (overlapping structures are never summed: the sidecar lists which structures overlap
and those stay complete in their own files); optional float16 probability maps;
``statistics.json``; ``preview.png``; DICOM-SEG when the input was DICOM and it is asked for.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sat.infer.io import check_writable_dir, save_mask, save_probabilities, unique_filenames

FORMATS = ("nifti", "multilabel", "dicom_seg")


def save_result(result, outdir, *, formats=("nifti",), probabilities=False, preview=True,
                statistics=True) -> dict:
    """Write a result's files into ``outdir``.

    Args:
        result: a :class:`SegmentationResult`.
        outdir: output folder (created; must be writable).
        formats: any of ``nifti`` (one uint8 file per structure), ``multilabel`` (one label map plus a
            JSON sidecar), ``dicom_seg`` (DICOM inputs only).
        probabilities: also write probability maps of structures that kept them.
        preview: write ``preview.png``. statistics: write ``statistics.json``.

    Returns:
        The summary also written to ``result.json``: ``{"input", "modality", "structures": {prompt:
        {"concept", "name", "used_concepts", "mask", ["probabilities"]}}, "refused", ...}``.

    Raises:
        ValueError: unknown format. InputError: unwritable folder, DICOM-SEG for a non-DICOM input.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown output formats {bad}; choose from {FORMATS}")
    out = check_writable_dir(outdir)
    vol = result.volume
    stems = unique_filenames([s.prompt for s in result.structures])
    summary = {"input": str(vol.source), "modality": result.modality, "structures": {}, "refused": result.refused}
    for s in result.structures:
        entry = {"concept": s.concept, "name": s.name, "used_concepts": s.used_concepts}
        if "nifti" in formats:
            entry["mask"] = str(save_mask(s.mask, vol.affine, out / f"{stems[s.prompt]}.nii.gz"))
        if probabilities and s.prob is not None:
            entry["probabilities"] = str(save_probabilities(s.prob, vol.affine, out / f"{stems[s.prompt]}_prob.nii.gz"))
        summary["structures"][s.prompt] = entry
    if "multilabel" in formats and result.structures:
        summary["multilabel"] = _multilabel(result, out)
    if "dicom_seg" in formats:
        from sat.infer.dicom_seg import write_dicom_seg

        written = write_dicom_seg(result, out / "segmentation.dcm")
        summary["dicom_seg"] = None if written is None else str(written)
    if statistics:
        stats = {s.prompt: {"concept": s.concept, "name": s.name, **s.stats} for s in result.structures}
        (out / "statistics.json").write_text(json.dumps(stats, indent=1, default=_jsonable))
        summary["statistics"] = str(out / "statistics.json")
    if preview and result.structures:
        from sat.infer.preview import render_preview

        names = [s.name for s in result.structures]
        labels = {(s.name if names.count(s.name) == 1 else f"{s.name} ({s.prompt})"): s.mask
                  for s in result.structures}
        summary["preview"] = str(render_preview(vol.array, vol.affine, labels, out / "preview.png",
                                                title=Path(str(vol.source)).name))
    (out / "result.json").write_text(json.dumps(summary, indent=1, default=_jsonable))
    return summary


def _multilabel(result, out: Path) -> dict:
    """Label k+1 = structure k; where structures overlap the later one wins and the sidecar says so."""
    vol = result.volume
    labels = np.zeros(vol.shape, dtype=np.uint16 if len(result.structures) > 254 else np.uint8)
    overlaps = []
    names = {}
    for k, s in enumerate(result.structures, start=1):
        clash = s.mask & (labels > 0)
        if clash.any():
            overlaps.append({"structure": s.prompt, "overlaps_with": sorted(
                {result.structures[v - 1].prompt for v in np.unique(labels[clash])}),
                "voxels": int(clash.sum())})
        labels[s.mask] = k
        names[str(k)] = {"prompt": s.prompt, "concept": s.concept, "name": s.name}
    path = save_mask(labels, vol.affine, out / "multilabel.nii.gz", dtype=labels.dtype)
    sidecar = {"labels": names, "overlaps": overlaps,
               "note": "overlapping voxels carry the later label; per-structure files are complete"}
    (out / "multilabel.json").write_text(json.dumps(sidecar, indent=1))
    return {"path": str(path), "sidecar": str(out / "multilabel.json")}


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
