"""Find ground-truth cases and their predictions, with every structure keyed by concept id.

Integer labels never meet: recipe layouts map source labels to concepts (``load_case``), and
per-structure file names are resolved to concepts through the knowledge tree's exact lookup
(canonical name, synonym or id). The accepted folder layouts are listed in ``sat.eval.evaluate``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from sat.data.adapters import CaseRef, list_cases, load_case
from sat.data.recipes import Recipe, load_recipe, recipe_dir
from sat.errors import InputError
from sat.io.headers import open_nifti
from sat.knowledge.tree import KnowledgeTree
from sat.safe_open import Limits

AFFINE_ATOL_MM = 1e-3  # prediction and ground-truth affines must agree this closely
_SKIP_STEMS = ("multilabel",)  # writer outputs that are not one structure


@dataclass
class GTCase:
    """One ground-truth case: where its masks are, and how to label it in tables."""

    case_id: str
    dataset: str
    modality: str
    ref: CaseRef | None = None  # recipe layouts
    recipe: Recipe | None = None
    files: dict[str, Path] = field(default_factory=dict)  # per-structure layout: concept id -> file


@dataclass
class PredCase:
    """The predictions found for one case: concept id -> mask file (``folder`` None = none found)."""

    folder: Path | None
    files: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def nifti_stem(path: Path) -> str | None:
    """``liver`` for ``liver.nii.gz`` / ``liver.nii``; ``None`` for other files."""
    for suffix in (".nii.gz", ".nii"):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def _niftis(folder: Path) -> list[Path]:
    sub = folder / "segmentations"
    folder = sub if sub.is_dir() else folder
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and nifti_stem(p))


def resolve_files(files: list[Path], tree: KnowledgeTree, what: str) -> tuple[dict[str, Path], list[str]]:
    """Map per-structure files to concept ids by name; returns (concept id -> file, notes)."""
    out: dict[str, Path] = {}
    notes = []
    for path in files:
        stem = nifti_stem(path) or path.name
        if stem in _SKIP_STEMS or stem.endswith("_prob"):
            continue
        concept = tree.lookup(stem)
        if concept is None:
            notes.append(f"{what}: {path.name} names no known concept; ignored")
        elif concept.id in out:
            kept = out[concept.id].name
            notes.append(f"{what}: {path.name} and {kept} both name {concept.id}; kept {kept}")
        else:
            out[concept.id] = path
    return out, notes


def _recipe_names() -> set[str]:
    folder = recipe_dir()
    return {p.stem for p in folder.glob("*.yaml")} if folder.is_dir() else set()


def _recipe_cases(recipe: Recipe, root: Path, split: str | None) -> list[GTCase]:
    try:
        refs = list_cases(recipe, root, split)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"--gt {root}: cannot list {recipe.layout} cases for recipe {recipe.name!r} "
                         f"({_one_line(exc)})") from None
    return [GTCase(r.case_id, recipe.name, recipe.modality, ref=r, recipe=recipe) for r in refs]


def find_gt_cases(
    gt_root: str | Path,
    tree: KnowledgeTree,
    recipe: str | None = None,
    *,
    split: str | None = None,
    modality: str | None = None,
) -> tuple[list[GTCase], list[str]]:
    """List the ground-truth cases under ``gt_root`` (see ``sat.eval.evaluate`` for the layouts).

    Returns:
        The cases sorted by (dataset, case id), and notes on files that were ignored.

    Raises:
        InputError: missing folder, unknown recipe, or no case found.
    """
    root = Path(gt_root)
    if not root.is_dir():
        raise InputError(f"--gt {root}: ground-truth folder not found")
    notes: list[str] = []
    known = _recipe_names()
    if recipe is not None:
        try:
            rec = load_recipe(recipe)
        except (FileNotFoundError, ValueError) as exc:
            raise InputError(f"--recipe {recipe}: {_one_line(exc)}; known recipes: {sorted(known)}") from None
        cases = _recipe_cases(rec, root / rec.name if (root / rec.name).is_dir() else root, split)
    elif root.name in known:
        cases = _recipe_cases(load_recipe(root.name), root, split)
    elif any((root / name).is_dir() for name in known):
        cases = []
        for name in sorted(n for n in known if (root / n).is_dir()):
            cases += _recipe_cases(load_recipe(name), root / name, split)
    else:
        if split is not None:
            raise InputError(f"--split {split}: splits come from a recipe, but {root} is not a recipe layout "
                             "(pass --recipe)")
        cases = []
        for case_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files, case_notes = resolve_files(_niftis(case_dir), tree, f"gt {case_dir.name}")
            notes += case_notes
            if files:
                cases.append(GTCase(case_dir.name, root.name, modality or "unknown", files=files))
    if not cases:
        raise InputError(f"--gt {root}: no ground-truth cases found (expected a recipe layout with --recipe, "
                         "or one folder per case holding <structure>.nii.gz files)")
    return sorted(cases, key=lambda c: (c.dataset, c.case_id)), notes


def load_gt(case: GTCase) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read a ground-truth case: concept id -> (X, Y, Z) bool mask, and the (4, 4) affine.

    Raises:
        InputError: unreadable files or masks on different grids.
    """
    try:
        if case.ref is not None:
            data = load_case(case.ref, case.recipe)  # also reads the image, whose grid labels must share
            return dict(zip(data["concepts"], data["masks"])), np.asarray(data["affine"], dtype=np.float64)
        masks, affine, shape = {}, None, None
        for cid, path in case.files.items():
            img, _ = open_nifti(Path(path), Limits.from_env(), str(path))  # regular file, sizes checked first
            if affine is None:
                affine, shape = np.asarray(img.affine, dtype=np.float64), img.shape[:3]
            elif img.shape[:3] != shape or not np.allclose(img.affine, affine, atol=AFFINE_ATOL_MM):
                raise InputError(f"{path.name} grid {img.shape[:3]} differs from the case's other masks {shape}")
            masks[cid] = np.asanyarray(img.dataobj) > 0
        return masks, affine
    except InputError as exc:
        raise InputError(f"gt {case.dataset}/{case.case_id}: {_one_line(exc)}") from None
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as exc:
        raise InputError(f"gt {case.dataset}/{case.case_id}: cannot read ground truth ({_one_line(exc)})") from None


def find_prediction(pred_root: Path, case: GTCase, tree: KnowledgeTree) -> PredCase:
    """Find ``PRED/<dataset>/<case>/`` or ``PRED/<case>/`` and map its masks to concept ids.

    ``result.json`` (written by ``sat segment``) names each mask's concept; without it, file names
    are resolved through the tree.
    """
    folder = next((f for f in (pred_root / case.dataset / case.case_id, pred_root / case.case_id) if f.is_dir()), None)
    if folder is None:
        return PredCase(None)
    what = f"pred {case.case_id}"
    sidecar = folder / "result.json"
    if not sidecar.is_file():
        files, notes = resolve_files(_niftis(folder), tree, what)
        return PredCase(folder, files, notes)
    try:
        structures = json.loads(sidecar.read_text(encoding="utf-8")).get("structures", {})
        if not isinstance(structures, dict):
            raise ValueError(f"'structures' is a {type(structures).__name__}, not an object")
    except (OSError, ValueError, AttributeError) as exc:
        return PredCase(folder, {}, [f"{what}: unreadable result.json ({_one_line(exc)}); "
                                     "every structure counts as missing"])
    out = PredCase(folder)
    for prompt, entry in structures.items():
        cid, mask = (entry.get("concept"), entry.get("mask")) if isinstance(entry, dict) else (None, None)
        if not isinstance(cid, str) or not isinstance(mask, str) or not cid or not mask:
            out.notes.append(f"{what}: prompt {prompt!r} has no concept or no NIfTI mask in result.json; ignored")
        elif cid in out.files:
            out.notes.append(f"{what}: prompts {prompt!r} and another both gave {cid}; kept the first")
        else:
            out.files[cid] = folder / Path(mask).name  # relative to the case folder, so folders can move
    return out


def load_pred_mask(path: Path, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """Read a predicted mask and check it lies on the ground-truth grid; (X, Y, Z) bool.

    Raises:
        InputError: unreadable file, non-binary values, or a grid that differs from the ground truth.
    """
    try:
        img, _ = open_nifti(Path(path), Limits.from_env(), path.name)  # regular file, sizes checked first
        data = np.asanyarray(img.dataobj)
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as exc:
        raise InputError(f"{path.name}: cannot read prediction ({_one_line(exc)})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.shape != tuple(shape):
        raise InputError(f"{path.name}: prediction shape {data.shape} != ground-truth shape {tuple(shape)}; "
                         "predictions must lie on the ground-truth grid")
    if not np.allclose(img.affine, affine, atol=AFFINE_ATOL_MM):
        off = float(np.max(np.abs(img.affine - affine)))
        raise InputError(f"{path.name}: prediction affine differs from the ground truth's by up to {off:.3g} "
                         "(mm or direction cosines); predictions must lie on the ground-truth grid")
    if np.issubdtype(data.dtype, np.floating) and not np.isin(data, (0.0, 1.0)).all():
        raise InputError(f"{path.name}: prediction holds non-binary values; expected a 0/1 mask "
                         "(threshold probabilities first)")
    return data > 0
