"""Writes phantom cases in three real on-disk layouts, and reads them back.

* ``phantom_msd``: Medical Segmentation Decathlon (CT; exclusive uint8 label maps).
* ``phantom_nnunet``: nnU-Net v2 raw (MR; ``_0000`` channel suffix).
* ``phantom_totalseg``: TotalSegmentator (CT; one binary mask file per structure, ``meta.csv``).

Each source annotates a different subset of the concepts under its own names; the tables below
map the source's labels back to concept ids.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from sat.data.phantoms.anatomy import concept_lut

if TYPE_CHECKING:
    from sat.data.phantoms.generate import PhantomCase

SOURCES = ("phantom_msd", "phantom_nnunet", "phantom_totalseg")
SOURCE_MODALITY = {"phantom_msd": "CT", "phantom_nnunet": "MR", "phantom_totalseg": "CT"}

MSD_LABELS = {"0": "background", "1": "liver", "2": "liver tumour", "3": "spleen",
              "4": "pancreas", "5": "gallbladder", "6": "stomach"}
# Painted in this order, so the tumour (nested in the liver) wins over the liver.
MSD_PAINT = (("stomach", 6), ("gallbladder", 5), ("pancreas", 4), ("spleen", 3), ("liver", 1),
             ("liver_tumor", 2))
NNUNET_LABELS = {"background": 0, "Liver": 1, "Spleen": 2, "Left Kidney": 3, "Right Kidney": 4,
                 "Aorta": 5, "IVC": 6, "Urinary Bladder": 7, "Vertebrae": 8}
NNUNET_PAINT = (("liver", 1), ("spleen", 2), ("kidney_left", 3), ("kidney_right", 4),
                ("aorta", 5), ("inferior_vena_cava", 6), ("urinary_bladder", 7),
                ("vertebral_column", 8))
TOTALSEG_FILES = {  # concept id -> segmentation file stem
    "body": "body", "liver": "liver", "kidney_left": "kidney_left",
    "kidney_right": "kidney_right", "kidney_cyst": "kidney_cyst", "lung_left": "lung_left",
    "lung_right": "lung_right", "heart": "heart", "aorta": "aorta",
    "inferior_vena_cava": "inferior_vena_cava", "vertebral_column": "vertebrae",
    "urinary_bladder": "urinary_bladder", "gallbladder": "gallbladder", "stomach": "stomach",
}
# concept id -> label values whose union is the concept, for the label-map sources
_LABEL_CONCEPTS = {
    "phantom_msd": {"liver": (1, 2), "liver_tumor": (2,), "spleen": (3,), "pancreas": (4,),
                    "gallbladder": (5,), "stomach": (6,)},
    "phantom_nnunet": {name: (value,) for name, value in NNUNET_PAINT},
}
SOURCE_CONCEPTS = {
    "phantom_msd": tuple(_LABEL_CONCEPTS["phantom_msd"]),
    "phantom_nnunet": tuple(_LABEL_CONCEPTS["phantom_nnunet"]),
    "phantom_totalseg": tuple(TOTALSEG_FILES),
}
_APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02"  # macOS "._" junk


def save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Save ``array`` (X, Y, Z) with ``affine`` as both qform and sform (scanner space, mm)."""
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def write_case(root: Path, case: PhantomCase) -> None:
    """Write one case's image and annotations into its source's layout under ``root``."""
    src = root / case.source
    cid = case.case_id
    if case.source == "phantom_msd":
        save_nifti(case.image, case.affine, src / "imagesTr" / f"{cid}.nii.gz")
        save_nifti(concept_lut(MSD_PAINT)[case.parts], case.affine, src / "labelsTr" / f"{cid}.nii.gz")
    elif case.source == "phantom_nnunet":
        save_nifti(case.image, case.affine, src / "imagesTr" / f"{cid}_0000.nii.gz")
        save_nifti(concept_lut(NNUNET_PAINT)[case.parts], case.affine, src / "labelsTr" / f"{cid}.nii.gz")
    elif case.source == "phantom_totalseg":
        save_nifti(case.image, case.affine, src / cid / "ct.nii.gz")
        for concept, stem in TOTALSEG_FILES.items():
            mask = concept_lut({concept: 1})[case.parts]  # (X, Y, Z) uint8 0/1
            save_nifti(mask, case.affine, src / cid / "segmentations" / f"{stem}.nii.gz")
    else:
        raise ValueError(f"unknown source {case.source!r}; expected one of {SOURCES}")


def write_indexes(root: Path, splits: dict[str, dict[str, list[str]]]) -> None:
    """Write each source's index (dataset.json / meta.csv), the macOS junk file, splits.json."""
    msd = splits["phantom_msd"]["train"] + splits["phantom_msd"]["test"]
    (root / "phantom_msd").mkdir(parents=True, exist_ok=True)
    (root / "phantom_msd" / "dataset.json").write_text(json.dumps({
        "name": "PhantomAbdomen", "description": "Procedural CT torso phantoms (sat)",
        "tensorImageSize": "3D", "licence": "CC0", "modality": {"0": "CT"},
        "labels": MSD_LABELS, "numTraining": len(msd), "numTest": 0, "test": [],
        "training": [{"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"}
                     for c in sorted(msd)],
    }, indent=2))
    if msd:
        (root / "phantom_msd" / "imagesTr").mkdir(parents=True, exist_ok=True)
        (root / "phantom_msd" / "imagesTr" / f"._{min(msd)}.nii.gz").write_bytes(_APPLE_DOUBLE)
    nn = splits["phantom_nnunet"]["train"] + splits["phantom_nnunet"]["test"]
    (root / "phantom_nnunet").mkdir(parents=True, exist_ok=True)
    (root / "phantom_nnunet" / "dataset.json").write_text(json.dumps({
        "name": "PhantomMR", "description": "Procedural T2-like MR torso phantoms (sat)",
        "channel_names": {"0": "MR"}, "labels": NNUNET_LABELS, "numTraining": len(nn),
        "file_ending": ".nii.gz",
    }, indent=2))
    ts = splits["phantom_totalseg"]
    rows = sorted([(c, "train") for c in ts["train"]] + [(c, "test") for c in ts["test"]])
    (root / "phantom_totalseg").mkdir(parents=True, exist_ok=True)
    (root / "phantom_totalseg" / "meta.csv").write_text(
        "image_id;split\n" + "".join(f"{c};{s}\n" for c, s in rows))
    (root / "splits.json").write_text(json.dumps(splits, indent=2))


def read_case(root: Path, source: str, case_id: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read one written case back: the image and a boolean mask per concept the source annotates.

    Returns:
        (image, masks): image (X, Y, Z) in its stored dtype; masks maps concept id -> (X, Y, Z) bool.

    Raises:
        ValueError: for an unknown source.
    """
    src = Path(root) / source
    if source == "phantom_totalseg":
        image = np.asanyarray(nib.load(src / case_id / "ct.nii.gz").dataobj)
        masks = {concept: np.asanyarray(nib.load(src / case_id / "segmentations" /
                                                 f"{stem}.nii.gz").dataobj) > 0
                 for concept, stem in TOTALSEG_FILES.items()}
        return image, masks
    if source not in _LABEL_CONCEPTS:
        raise ValueError(f"unknown source {source!r}; expected one of {SOURCES}")
    suffix = "_0000" if source == "phantom_nnunet" else ""
    image = np.asanyarray(nib.load(src / "imagesTr" / f"{case_id}{suffix}.nii.gz").dataobj)
    labels = np.asanyarray(nib.load(src / "labelsTr" / f"{case_id}.nii.gz").dataobj)
    lut_size = int(labels.max()) + 1 if labels.size else 1
    masks = {}
    for concept, values in _LABEL_CONCEPTS[source].items():
        lut = np.zeros(max(lut_size, max(values) + 1), dtype=bool)
        lut[list(values)] = True
        masks[concept] = lut[labels]
    return image, masks
