"""Finding the cases of a dataset folder, one small finder per layout.

Every finder returns :class:`CaseRef` objects (file paths, label names, split); reading happens
in :mod:`sat.data.adapters`. Hidden files (macOS ``._*`` forks, dot-files) are skipped everywhere,
and a listed case whose files are missing is kept, so that reading it fails loudly later.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from sat.data.path_patterns import compile_pattern, fill_pattern
from sat.data.reading import natural_key, visible
from sat.data.recipes import Recipe, parse_values

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass
class CaseRef:
    """Where one case's files are.

    Attributes:
        case_id: dataset-unique id.
        images: one path per channel, or one multi-channel (4D) file, or a DICOM series folder.
        label: integer label map (or a folder of label slices), ``None`` when unlabelled.
        label_values: source label name -> its integer value(s) in ``label``.
        label_files: per-structure binary masks (TotalSegmentator layout): name -> path.
        split: ``train`` / ``val`` / ``test`` / ... or ``None`` when no split says.
        labelled: ``False`` for test images that ship without labels (MSD/nnU-Net ``imagesTs``).
    """

    case_id: str
    images: list[Path]
    label: Path | None = None
    label_values: dict[str, tuple[int, ...]] = field(default_factory=dict)
    label_files: dict[str, Path] = field(default_factory=dict)
    split: str | None = "train"
    labelled: bool = True


def stem(path: Path) -> str:
    """File name without its image suffix (``.nii.gz`` counts as one suffix)."""
    name = path.name
    for suf in IMAGE_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return path.stem


def _value_map(raw: dict, recipe: Recipe) -> dict[str, tuple[int, ...]]:
    """Name -> values from ``{"1": "liver"}`` (MSD) or ``{"liver": 1 | [1, 2]}`` (nnU-Net v2),
    updated with the recipe's own ``labels``."""
    values: dict[str, tuple[int, ...]] = {}
    for k, v in (raw or {}).items():
        if str(k).lstrip("-").isdigit() and isinstance(v, str):
            values[v] = (int(k),)
        else:
            values[str(k)] = tuple(parse_values(str(k), v))
    values.update({k: tuple(v) for k, v in recipe.labels.items()})
    return values


def _msd(root: Path, recipe: Recipe) -> list[CaseRef]:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():  # no index: pair imagesTr with labelsTr, imagesTs unlabelled
        refs = [CaseRef(stem(p), [p], root / "labelsTr" / p.name, _value_map({}, recipe))
                for p in _images_in(root / "imagesTr")]
        return refs + [CaseRef(stem(p), [p], None, split="test", labelled=False)
                       for p in _images_in(root / "imagesTs")]
    meta = json.loads(meta_path.read_text())
    values = _value_map(meta.get("labels", {}), recipe)
    sections = {"training": "train", "validation": "val", "test": "test", **recipe.source.split_map}
    refs = []
    for section, split in sections.items():
        for item in meta.get(section) or []:
            image = item if isinstance(item, str) else item["image"]
            label = None if isinstance(item, str) else item.get("label")
            img = root / image
            if visible(img):
                refs.append(CaseRef(stem(img), [img], root / label if label else None, values,
                                    split=split, labelled=label is not None))
    return refs


def _images_in(folder: Path, suffix: str | None = None) -> list[Path]:
    if not folder.is_dir():
        return []
    ok = (lambda n: n.endswith(suffix)) if suffix else (lambda n: n.lower().endswith(IMAGE_SUFFIXES))
    return sorted((p for p in folder.iterdir() if visible(p) and ok(p.name)), key=lambda p: p.name)


def _nnunet(root: Path, recipe: Recipe) -> list[CaseRef]:
    meta = json.loads((root / "dataset.json").read_text())
    ending = meta.get("file_ending", ".nii.gz")
    n_ch = len(meta.get("channel_names") or meta.get("modality") or {"0": ""})
    values = _value_map(meta.get("labels", {}), recipe)
    refs = []
    for folder, split in (("imagesTr", "train"), ("imagesTs", "test")):
        for first in _images_in(root / folder, f"_0000{ending}"):
            case = first.name[: -len(f"_0000{ending}")]
            images = [root / folder / f"{case}_{c:04d}{ending}" for c in range(n_ch)]
            label = root / "labelsTr" / f"{case}{ending}" if split == "train" else None
            refs.append(CaseRef(case, images, label, values, split=split, labelled=label is not None))
    return refs


def _class_map(recipe: Recipe, *folders: Path) -> dict[str, tuple[int, ...]]:
    name = recipe.source.class_map
    if not name:
        return _value_map({}, recipe)
    for folder in folders:
        if (folder / name).is_file():
            raw = json.loads((folder / name).read_text())
            key = recipe.source.class_map_key
            return _value_map(raw[key] if key else raw, recipe)
    raise FileNotFoundError(f"class map {name!r} not found in {[str(f) for f in folders]}")


def _totalseg(root: Path, recipe: Recipe) -> list[CaseRef]:
    src = recipe.source
    image = src.images[0] if src.images else "ct.nii.gz"
    single = (root / image).exists()
    dirs = [root] if single else sorted(
        (p for p in root.iterdir() if p.is_dir() and visible(p)
         and ((p / image).exists() or (p / src.masks).is_dir() or (src.label and (p / src.label).exists()))),
        key=lambda p: p.name)
    refs = []
    for d in dirs:
        if src.label:  # one multilabel file with a value -> name class map
            refs.append(CaseRef(d.name, [d / image], d / src.label, _class_map(recipe, d, root)))
        else:
            seg = d / src.masks
            files = {stem(p): p for p in _images_in(seg)}
            refs.append(CaseRef(d.name, [d / image], label_files=files, labelled=seg.is_dir()))
    meta = root / "meta.csv"  # TotalSegmentator's own split column
    if not recipe.split_file and meta.is_file():
        _apply_split(refs, _read_split_csv(meta, ["image_id", "split"]))
    return refs


def _row_ref(row: dict, base: Path, recipe: Recipe) -> CaseRef:
    imgs = row["image"]
    images = [base / p for p in (imgs if isinstance(imgs, list) else str(imgs).split(";"))]
    labels = row.get("labels") or {}
    labels = json.loads(labels) if isinstance(labels, str) else labels
    label = base / row["label"] if row.get("label") else None
    return CaseRef(str(row.get("case_id") or stem(images[0])), images, label,
                   _value_map(labels, recipe), split=row.get("split") or "train",
                   labelled=label is not None)


def _listing(root: Path, recipe: Recipe) -> list[CaseRef]:
    """Generic CSV or JSONL listing: ``image`` (``;``-separated channels), ``label``, ``labels``."""
    path = root / recipe.source.list  # type: ignore[operator]
    text = path.read_text()
    rows = ([json.loads(line) for line in text.splitlines() if line.strip()]
            if path.suffix == ".jsonl" else list(csv.DictReader(text.splitlines())))
    return [_row_ref(row, path.parent, recipe) for row in rows]


def _patterns(root: Path, recipe: Recipe) -> list[CaseRef]:
    src = recipe.source
    glob, rx, _ = compile_pattern(src.images[0])
    refs = []
    for path in sorted(root.glob(glob), key=lambda p: natural_key(str(p))):
        rel = path.relative_to(root)
        match = rx.fullmatch(rel.as_posix())
        if not match or not all(visible(Path(part)) for part in rel.parts):
            continue
        fields = match.groupdict()
        case = (src.case_id or ("{case}" if "case" in fields else "_".join("{%s}" % k for k in fields)))
        split = src.split_map.get(fields["split"], fields["split"]) if "split" in fields else "train"
        label = fill_pattern(root, src.label, fields) if src.label else None
        images = [path] + [fill_pattern(root, p, fields) for p in src.images[1:]]
        if label is None and "{" in src.masks:  # a folder of per-structure mask files per case
            seg = fill_pattern(root, src.masks, fields)
            refs.append(CaseRef(case.format(**fields), images, split=split, labelled=seg.is_dir(),
                                label_files={stem(p): p for p in _images_in(seg)}))
            continue
        refs.append(CaseRef(case.format(**fields), images, label, _value_map({}, recipe), split=split,
                            labelled=label is not None))
    return refs


def _read_split_csv(path: Path, columns: list[str]) -> dict[str, str]:
    text = path.read_text()
    dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    id_col, split_col = columns
    return {row[id_col]: row[split_col] for row in csv.DictReader(text.splitlines(), dialect=dialect)}


def read_split_file(path: Path, recipe: Recipe) -> dict[str, str]:
    """case id -> split name from a JSON or CSV split file (see :class:`Recipe`)."""
    if path.suffix.lower() in (".csv", ".tsv"):
        return _read_split_csv(path, recipe.split_columns)
    data = json.loads(path.read_text())
    key = recipe.split_key if recipe.split_key is not None else recipe.name
    if isinstance(data, list):  # nnU-Net splits_final.json: [{"train": [...], "val": [...]}, ...]
        data = data[int(key) if str(key).isdigit() else 0]
    elif key in data:
        data = data[key]
    return {str(cid): split for split, ids in data.items() for cid in ids}


def _apply_split(refs: list[CaseRef], split_of: dict[str, str]) -> None:
    for r in refs:
        r.split = split_of.get(r.case_id)


def hold_out(refs: list[CaseRef], fraction: float) -> None:
    """Move a fixed ``fraction`` of the ``train`` cases to ``val``, chosen by a hash of the case id.

    The hash makes the choice independent of which other cases exist, so adding cases never moves
    an old one between the splits.
    """
    for r in refs:
        h = int(hashlib.sha256(r.case_id.encode()).hexdigest()[:8], 16) / 2**32
        if r.split == "train" and h < fraction:
            r.split = "val"


def find_cases(recipe: Recipe, root: Path) -> list[CaseRef]:
    """Every case of the dataset at ``root`` (labelled and not), with its split assigned."""
    if recipe.layout == "msd":
        refs = _msd(root, recipe)
    elif recipe.layout == "nnunet":
        refs = _nnunet(root, recipe)
    elif recipe.layout == "totalseg":
        refs = _totalseg(root, recipe)
    else:
        refs = _listing(root, recipe) if recipe.source.list else _patterns(root, recipe)
    if recipe.split_file:
        _apply_split(refs, read_split_file(root / recipe.split_file, recipe))
    if recipe.holdout > 0:
        hold_out(refs, recipe.holdout)
    inc, exc = recipe.source.include, recipe.source.exclude
    refs = [r for r in refs if (not inc or re.search(inc, r.case_id)) and not (exc and re.search(exc, r.case_id))]
    seen: dict[str, CaseRef] = {}
    for r in refs:
        if r.case_id in seen:
            raise ValueError(f"{recipe.name}: case id {r.case_id!r} occurs twice ({seen[r.case_id].images[0]} "
                             f"and {r.images[0]}); set source.case_id to make ids unique")
        seen[r.case_id] = r
    return sorted(refs, key=lambda r: natural_key(r.case_id))
