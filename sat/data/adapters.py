"""Source adapters: list the cases of a dataset folder and load them as concept masks.

One code path serves every layout; the recipe says which layout and how labels map to concepts.
Hidden files (macOS ``._*`` forks, dot-files) are skipped everywhere.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from sat.data.recipes import Recipe

_IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


@dataclass
class CaseRef:
    """Where one case's files are.

    Attributes:
        case_id: dataset-unique id. images: one path per channel (or one 4D file).
        label: integer label map, with ``label_values`` (source name -> int), or ``None``.
        label_files: per-structure binary masks (TotalSegmentator layout): name -> path.
    """

    case_id: str
    images: list[Path]
    label: Path | None = None
    label_values: dict[str, int] = field(default_factory=dict)
    label_files: dict[str, Path] = field(default_factory=dict)


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _stem(path: Path) -> str:
    name = path.name
    for suf in _IMAGE_SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)]
    return path.stem


def _msd(root: Path) -> list[CaseRef]:
    meta = json.loads((root / "dataset.json").read_text())
    values = {str(name): int(v) for v, name in meta["labels"].items()}
    refs = []
    for item in meta.get("training", []):
        img, lab = root / item["image"], root / item["label"]
        if _visible(img):
            refs.append(CaseRef(_stem(img), [img], lab, values))
    return refs


def _nnunet(root: Path) -> list[CaseRef]:
    meta = json.loads((root / "dataset.json").read_text())
    ending = meta.get("file_ending", ".nii.gz")
    n_ch = len(meta.get("channel_names") or meta.get("modality") or {"0": ""})
    values = {}
    for name, v in meta["labels"].items():
        # region-based labels list several integers; the concept map unions them by name
        values[str(name)] = int(v) if not isinstance(v, list) else int(v[-1])
    refs = []
    for lab in sorted((root / "labelsTr").glob(f"*{ending}")):
        if not _visible(lab):
            continue
        case = lab.name[: -len(ending)]
        images = [root / "imagesTr" / f"{case}_{c:04d}{ending}" for c in range(n_ch)]
        refs.append(CaseRef(case, images, lab, values))
    return refs


def _totalseg(root: Path) -> list[CaseRef]:
    refs = []
    for case_dir in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        seg_dir = case_dir / "segmentations"
        if not (case_dir / "ct.nii.gz").exists() or not seg_dir.is_dir():
            continue
        files = {_stem(p): p for p in sorted(seg_dir.iterdir()) if _visible(p)}
        refs.append(CaseRef(case_dir.name, [case_dir / "ct.nii.gz"], label_files=files))
    return refs


def _generic(root: Path, recipe: Recipe) -> list[CaseRef]:
    """CSV or JSONL list with ``image`` (``;``-separated channels), ``label``, ``labels`` (JSON)."""
    listing = root / recipe.extra.get("list", "cases.csv")
    rows = ([json.loads(line) for line in listing.read_text().splitlines() if line.strip()]
            if listing.suffix == ".jsonl" else list(csv.DictReader(listing.open())))
    refs = []
    for row in rows:
        images = [root / p for p in str(row["image"]).split(";")]
        labels = row.get("labels") or recipe.extra.get("labels") or {}
        labels = json.loads(labels) if isinstance(labels, str) else labels
        refs.append(CaseRef(str(row.get("case_id") or _stem(images[0])), images,
                            root / row["label"] if row.get("label") else None,
                            {str(k): int(v) for k, v in labels.items()}))
    return refs


def list_cases(recipe: Recipe, root: str | Path, split: str | None = None) -> list[CaseRef]:
    """Cases of the dataset at ``root``, optionally only those of ``split`` (train/test/...)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    finder = {"msd": _msd, "nnunet": _nnunet, "totalseg": _totalseg}.get(recipe.layout)
    refs = finder(root) if finder else _generic(root, recipe)
    if split is not None and recipe.split_file:
        splits = json.loads((root / recipe.split_file).read_text())[recipe.split_key or recipe.name]
        wanted = set(splits[split])
        refs = [r for r in refs if r.case_id in wanted]
    return sorted(refs, key=lambda r: r.case_id)


def _read(path: Path) -> nib.Nifti1Image:
    if not path.exists():
        raise FileNotFoundError(f"missing file {path}")
    return nib.load(str(path))


def _check_grid(ref: CaseRef, what: str, img: nib.Nifti1Image, shape, affine) -> None:
    if img.shape[:3] != tuple(shape) or not np.allclose(img.affine, affine, atol=1e-3):
        raise ValueError(f"{ref.case_id}: {what} geometry {img.shape[:3]} does not match image {tuple(shape)}")


def load_case(ref: CaseRef, recipe: Recipe) -> dict:
    """Read one case.

    Returns:
        dict with ``image`` (C, X, Y, Z) float32 in native units, ``affine`` (4x4),
        ``concepts`` (list of concept ids, the recipe's order) and ``masks`` (K, X, Y, Z) bool.

    Raises:
        ValueError / FileNotFoundError: unreadable files or inconsistent geometry.
    """
    first = _read(ref.images[0])
    affine, shape = first.affine, first.shape[:3]
    channels = []
    for path in ref.images:
        img = first if path == ref.images[0] else _read(path)
        _check_grid(ref, path.name, img, shape, affine)
        data = np.asarray(img.dataobj, dtype=np.float32)
        channels += [data] if data.ndim == 3 else [data[..., c] for c in range(data.shape[3])]
    names: dict[str, np.ndarray] = {}
    if ref.label is not None:
        lab_img = _read(ref.label)
        _check_grid(ref, "label", lab_img, shape, affine)
        lab = np.asarray(lab_img.dataobj).astype(np.int32)
        names = {name: lab == v for name, v in ref.label_values.items() if v > 0}
    for name, path in ref.label_files.items():
        m = _read(path)
        _check_grid(ref, name, m, shape, affine)
        names[name] = np.asarray(m.dataobj) > 0
    concepts = list(recipe.concepts)
    masks = np.zeros((len(concepts), *shape), dtype=bool)
    for k, cid in enumerate(concepts):
        for src in recipe.concepts[cid]:
            if src not in names:
                raise ValueError(f"{ref.case_id}: source label {src!r} (for {cid}) not found; "
                                 f"have {sorted(names)}")
            masks[k] |= names[src]
    return {"image": np.stack(channels), "affine": affine, "concepts": concepts, "masks": masks}
