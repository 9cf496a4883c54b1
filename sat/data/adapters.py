"""Source adapters: list the cases of a dataset folder and read them as concept masks.

One code path serves every layout: :mod:`sat.data.sources` finds the cases the recipe's layout
describes, and :func:`read_case` turns any mix of integer label maps and per-structure mask files
into a compact *code map* plus a lookup table, from which every concept mask follows. Overlapping
concepts ("liver" and "liver tumour") are allowed. Unknown label names, undeclared label values,
channel-count and geometry mismatches raise ``ValueError`` naming the case: nothing is mismapped
silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sat.data.reading import read_channels, read_labels, read_slice_stack, same_grid
from sat.data.recipes import Recipe
from sat.data.sources import CaseRef, find_cases
from sat.knowledge.modality import canonical_modality

__all__ = ["Case", "CaseRef", "annotated_concepts", "codes_from_masks", "list_cases", "load_case", "read_case"]


def list_cases(recipe: Recipe, root: str | Path, split: str | None = None,
               include_unlabelled: bool = False) -> list[CaseRef]:
    """Cases of the dataset at ``root``.

    Args:
        split: keep only this split (``train``, ``val``, ``test``, ...); ``None`` keeps every
            labelled case. A named split may include unlabelled images (MSD ``imagesTs``).
        include_unlabelled: with ``split=None``, also return unlabelled images.

    Raises:
        FileNotFoundError: ``root`` (or its index file) does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    refs = find_cases(recipe, root)
    if split is not None:
        return [r for r in refs if r.split == split]
    return [r for r in refs if r.labelled or include_unlabelled]


@dataclass
class Case:
    """One case read from disk, still in its own voxel grid.

    Attributes:
        case_id: the dataset's id. image: (C, X, Y, Z) float32 in native units (HU for CT).
        affine: (4, 4) voxel -> world RAS+ mm. concepts: the recipe's concept ids (annotated).
        codes: (X, Y, Z) unsigned code map; code ``c`` stands for a set of source labels.
        lut: (K, n_codes) bool, ``lut[k, c]`` is True when code ``c`` lies inside concept ``k``.
        modality: modality reported by DICOM metadata, if any.
    """

    case_id: str
    image: np.ndarray
    affine: np.ndarray
    concepts: list[str]
    codes: np.ndarray
    lut: np.ndarray
    modality: str | None = None

    def masks(self) -> np.ndarray:
        """(K, X, Y, Z) bool concept masks (overlaps allowed)."""
        return self.lut[:, self.codes]


def _atoms(ref: CaseRef, recipe: Recipe, cid: str) -> set[tuple[str, object]]:
    """The label atoms (``("v", value)`` of the label map, ``("f", name)`` of a mask file) of a concept."""
    atoms: set[tuple[str, object]] = set()
    for src in recipe.concepts[cid]:
        if isinstance(src, int):
            atoms.add(("v", src))
        elif src in ref.label_values:
            atoms.update(("v", v) for v in ref.label_values[src])
        elif src in ref.label_files:
            atoms.add(("f", src))
        else:
            have = sorted(ref.label_values) + sorted(ref.label_files)
            raise ValueError(f"{ref.case_id}: source label {src!r} (for concept {cid}) not found; "
                             f"the case has {have[:40]}")
    return atoms


def _read_images(ref: CaseRef, recipe: Recipe) -> tuple[np.ndarray, np.ndarray, str | None]:
    vols = [v for path in ref.images for v in read_channels(path)]
    if len(vols) != len(recipe.channels):
        raise ValueError(f"{ref.case_id}: image has {len(vols)} channel(s), recipe {recipe.name!r} "
                         f"expects {len(recipe.channels)} ({recipe.channels})")
    for v in vols[1:]:
        if not same_grid(v.shape, v.affine, vols[0].shape, vols[0].affine):
            raise ValueError(f"{ref.case_id}: channel geometry differs ({v.source}: {v.shape} vs "
                             f"{vols[0].shape}); inconsistent geometry")
    dicom = next((v.modality for v in vols if v.modality), None)
    if dicom:
        got = canonical_modality(dicom) or dicom.upper()
        want = canonical_modality(recipe.modality) or recipe.modality.upper()
        if got != want:
            raise ValueError(f"{ref.case_id}: DICOM modality {dicom!r} but recipe {recipe.name!r} "
                             f"says {recipe.modality!r}")
    return np.stack([v.array for v in vols]), vols[0].affine, dicom


def _fold_mask(codes: np.ndarray, combos: list[frozenset], mask: np.ndarray, atom) -> np.ndarray:
    """Add ``atom`` to the label sets of the voxels in ``mask`` (codes may grow in place)."""
    old = codes[mask]
    if old.size == 0:
        return codes
    uniq, inv = np.unique(old, return_inverse=True)
    new = np.empty_like(uniq, dtype=np.int64)
    for i, c in enumerate(uniq):
        combo = combos[c] | {atom}
        if combo not in combos:
            combos.append(combo)
        new[i] = combos.index(combo)
    if len(combos) - 1 > np.iinfo(codes.dtype).max:
        codes = codes.astype(np.uint16 if len(combos) <= 65536 else np.uint32)
    codes[mask] = new[inv].astype(codes.dtype)
    return codes


def codes_from_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compress (K, X, Y, Z) boolean masks (overlaps allowed) into a code map and lookup table.

    Returns:
        ``(codes (X, Y, Z) unsigned, lut (K, n_codes) bool)`` with ``lut[:, codes] == masks``.
    """
    codes = np.zeros(masks.shape[1:], dtype=np.uint8)
    combos: list[frozenset] = [frozenset()]
    for k, m in enumerate(masks):
        codes = _fold_mask(codes, combos, m, ("k", k))
    lut = np.array([[("k", k) in c for c in combos] for k in range(len(masks))], dtype=bool)
    return codes, lut.reshape(len(masks), len(combos))


def annotated_concepts(ref: CaseRef, recipe: Recipe) -> list[str]:
    """The recipe's concepts that this case annotates, in the recipe's order.

    With ``source.missing_masks: unannotated`` a concept built from per-structure mask files is
    annotated only when the case has every one of those files (a union with a missing part is
    not a complete mask); otherwise every concept is, and a missing file fails in :func:`_atoms`.
    """
    if recipe.source.missing_masks != "unannotated":
        return list(recipe.concepts)
    return [cid for cid, srcs in recipe.concepts.items()
            if all(isinstance(s, int) or s in ref.label_values or s in ref.label_files for s in srcs)]


def _binary_mask(m: np.ndarray, path: Path, ref: CaseRef, recipe: Recipe) -> np.ndarray:
    """A per-structure mask file as bool; values other than 0 and one foreground value fail."""
    values = np.flatnonzero(np.bincount(m.ravel().astype(np.int64, copy=False))) if m.size else []
    fg = [int(v) for v in values if v != 0]
    if len(fg) > 1:
        raise ValueError(f"{ref.case_id}: mask {path.name} holds values {fg[:10]}; a per-structure "
                         "mask must be 0 and one foreground value")
    if not fg and recipe.source.empty_masks == "error":
        raise ValueError(f"{ref.case_id}: mask {path.name} is empty (an annotated structure with no voxel)")
    return m > 0


def read_case(ref: CaseRef, recipe: Recipe, allow_unlabelled: bool = False) -> Case:
    """Read one case's image channels and labels.

    Raises:
        FileNotFoundError / ValueError (incl. ``sat.errors.InputError``): unreadable or missing
            files, no labels, unknown label names, undeclared label values, wrong channel count,
            inconsistent geometry between channels and labels.
    """
    if not ref.labelled and not allow_unlabelled:
        raise ValueError(f"{ref.case_id}: case has no labels (unlabelled {ref.split or ''} image)")
    image, affine, dicom = _read_images(ref, recipe)
    shape = image.shape[1:]
    concepts = annotated_concepts(ref, recipe) if ref.labelled else []
    atoms = {cid: _atoms(ref, recipe, cid) for cid in concepts}
    needed = set().union(*atoms.values()) if atoms else set()
    codes = np.zeros(shape, dtype=np.uint8)
    combos: list[frozenset] = [frozenset()]
    if ref.label is not None and ref.labelled:
        if ref.label.is_dir():  # 2D label slices (CHAOS) on the DICOM series' grid
            lab, lab_aff = read_slice_stack(ref.label, ref.images[0]), affine
        else:
            lab, lab_aff = read_labels(ref.label)
        if not same_grid(lab.shape, lab_aff, shape, affine):
            raise ValueError(f"{ref.case_id}: label geometry {lab.shape} / affine differs from the "
                             f"image {shape}; inconsistent geometry")
        present = np.flatnonzero(np.bincount(lab.ravel()))
        declared = {v for vs in ref.label_values.values() for v in vs} | {a[1] for a in needed if a[0] == "v"}
        stray = sorted(set(present.tolist()) - declared - {0})
        if ref.label_values and stray:
            raise ValueError(f"{ref.case_id}: label values {stray[:10]} are not declared in the label "
                             f"map {sorted(ref.label_values)[:20]}")
        used = sorted(v for kind, v in needed if kind == "v")
        remap = np.zeros(max(int(lab.max()), max(used, default=0)) + 1, dtype=np.uint16)
        for v in used:
            remap[v] = len(combos)
            combos.append(frozenset({("v", v)}))
        codes = remap[lab] if len(combos) > 255 else remap.astype(np.uint8)[lab]
    for name, path in ref.label_files.items():
        if ("f", name) not in needed:
            continue  # structures no concept uses are never read
        m, m_aff = read_labels(path)
        if not same_grid(m.shape, m_aff, shape, affine):
            raise ValueError(f"{ref.case_id}: mask {path.name} geometry differs from the image; "
                             "inconsistent geometry")
        codes = _fold_mask(codes, combos, _binary_mask(m, path, ref, recipe), ("f", name))
    lut = np.array([[bool(combo & atoms[cid]) for combo in combos] for cid in concepts],
                   dtype=bool).reshape(len(concepts), len(combos))
    return Case(ref.case_id, image, affine, concepts, codes, lut, dicom)


def load_case(ref: CaseRef, recipe: Recipe) -> dict:
    """Read one case as arrays (convenience form of :func:`read_case`).

    Returns:
        dict with ``image`` (C, X, Y, Z) float32 in native units, ``affine`` (4x4),
        ``concepts`` (concept ids, the recipe's order) and ``masks`` (K, X, Y, Z) bool.
    """
    case = read_case(ref, recipe)
    return {"image": case.image, "affine": case.affine, "concepts": case.concepts, "masks": case.masks()}
