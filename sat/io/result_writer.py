"""Write a :class:`SegmentationResult` to a folder.

Per structure a uint8 NIfTI named after the prompt; a multilabel NIfTI plus a JSON sidecar naming
its values; optional float16 probability maps; ``statistics.json``; ``preview.png``; DICOM-SEG
when the input was DICOM and it is asked for.

``multilabel.nii.gz``: label ``k`` is the k-th answered prompt (in prompt order, named in
``multilabel.json``). One voxel holds one label, so structures are painted in a fixed order, each
over the previous ones: containers first (the body, groups such as "kidneys", and any structure
that holds another one asked for), then organs and other structures, lesions last. A kidney cyst
is therefore never hidden by its kidney, nor the aorta by the body. Every overlapping pair is
listed in the sidecar with its voxel count and which label the shared voxels show; the
per-structure files always stay complete.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sat.io.formats import check_formats
from sat.io.writers import check_writable_dir, save_mask, save_probabilities, unique_filenames


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
    formats = check_formats(formats)
    out = check_writable_dir(outdir)
    vol = result.volume
    stems = unique_filenames([s.prompt for s in result.structures])
    summary = {"input": str(vol.source), "modality": result.modality, "structures": {}, "refused": result.refused}
    slices = vol.header_meta.get("slices")  # DICOM: the slice spacing checked on load (sat.io.dicom_series)
    if slices:
        summary["input_slices"] = slices
    for s in result.structures:
        entry = {"concept": s.concept, "name": s.name, "used_concepts": s.used_concepts,
                 "plausibility_flags": [f["check"] for f in s.flags]}
        if "nifti" in formats:
            entry["mask"] = str(save_mask(s.mask, vol.affine, out / f"{stems[s.prompt]}.nii.gz"))
        if probabilities and s.prob is not None:
            entry["probabilities"] = str(save_probabilities(s.prob, vol.affine, out / f"{stems[s.prompt]}_prob.nii.gz"))
        summary["structures"][s.prompt] = entry
    if "multilabel" in formats and result.structures:
        summary["multilabel"] = _multilabel(result, out)
    if "dicom_seg" in formats:
        from sat.io.dicom_seg import write_dicom_seg

        written = write_dicom_seg(result, out / "segmentation.dcm")
        summary["dicom_seg"] = None if written is None else str(written)
    if statistics:
        stats = {s.prompt: {"concept": s.concept, "name": s.name, **s.stats,
                            **({"input_slices": slices} if slices else {})} for s in result.structures}
        (out / "statistics.json").write_text(json.dumps(stats, indent=1, default=_jsonable))
        summary["statistics"] = str(out / "statistics.json")
    if preview and result.structures:
        from sat.io.preview import render_preview

        names = [s.name for s in result.structures]
        labels = {(s.name if names.count(s.name) == 1 else f"{s.name} ({s.prompt})")
                  + (f" [implausible: {', '.join(f['check'] for f in s.flags)}]" if s.flags else ""): s.mask
                  for s in result.structures}
        summary["preview"] = str(render_preview(vol.array, vol.affine, labels, out / "preview.png",
                                                title=Path(str(vol.source)).name))
    (out / "result.json").write_text(json.dumps(summary, indent=1, default=_jsonable))
    return summary


PAINT_ORDER_NOTE = ("labels are painted containers first (body, groups, structures holding another "
                    "asked structure), then organs and other structures, lesions last; a shared voxel "
                    "shows the later-painted label; per-structure files are complete")


def paint_order(structures, tree=None) -> list[int]:
    """Indices of ``structures`` in painting order: containers, then organs, then lesions.

    Within a rank an ancestor comes before its descendants, otherwise prompt order is kept.
    """
    if tree is None:
        from sat.knowledge.tree import load_tree

        tree = load_tree()
    known = [s.concept in tree for s in structures]
    below = [set(tree.descendants(s.concept)) if ok else set() for s, ok in zip(structures, known)]
    asked = {s.concept for s in structures}

    def rank(i: int) -> tuple[int, int]:
        s = structures[i]
        kind = tree.get(s.concept).kind if known[i] else ""
        holds = len(below[i] & asked) + len(set(s.used_concepts) - {s.concept})
        if kind == "lesion":
            return 2, 0
        if kind in ("group", "cavity") or s.concept == "body" or holds:
            return 0, -len(below[i])  # the widest container first
        return 1, 0

    return sorted(range(len(structures)), key=lambda i: (*rank(i), i))


def _box(s) -> tuple[slice, ...] | None:
    box = s.stats.get("bbox_voxel") if s.stats else None
    if not box:
        return None if not s.mask.any() else tuple(slice(0, n) for n in s.mask.shape)
    return tuple(slice(a, b + 1) for a, b in zip(box["min"], box["max"]))


def pair_overlaps(structures, shown: np.ndarray) -> list[dict]:
    """Every pair of structures sharing voxels: ``{"a", "b", "voxels", "shown_as"}`` (prompts).

    Args:
        structures: the answered structures. shown: the painted (X, Y, Z) label map (label k+1 =
            structure k), which tells which label the shared voxels show.
    """
    boxes = [_box(s) for s in structures]
    out = []
    for i in range(len(structures)):
        for j in range(i + 1, len(structures)):
            if boxes[i] is None or boxes[j] is None:
                continue
            inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(boxes[i], boxes[j]))
            if any(sl.start >= sl.stop for sl in inter):
                continue
            both = structures[i].mask[inter] & structures[j].mask[inter]
            n = int(both.sum())
            if n:
                top = np.bincount(shown[inter][both].ravel(), minlength=len(structures) + 1)
                out.append({"a": structures[i].prompt, "b": structures[j].prompt, "voxels": n,
                            "shown_as": structures[int(top.argmax()) - 1].prompt if top.argmax() else None})
    return out


def _multilabel(result, out: Path) -> dict:
    """Label k+1 = structure k (prompt order), painted in :func:`paint_order`; overlaps per pair."""
    vol = result.volume
    structures = result.structures
    labels = np.zeros(vol.shape, dtype=np.uint16 if len(structures) > 254 else np.uint8)
    order = paint_order(structures)
    for k in order:
        labels[structures[k].mask] = k + 1
    names = {str(k + 1): {"prompt": s.prompt, "concept": s.concept, "name": s.name}
             for k, s in enumerate(structures)}
    path = save_mask(labels, vol.affine, out / "multilabel.nii.gz", dtype=labels.dtype)
    sidecar = {"labels": names, "paint_order": [str(k + 1) for k in order],
               "overlaps": pair_overlaps(structures, labels), "note": PAINT_ORDER_NOTE}
    (out / "multilabel.json").write_text(json.dumps(sidecar, indent=1))
    return {"path": str(path), "sidecar": str(out / "multilabel.json")}


def _jsonable(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
