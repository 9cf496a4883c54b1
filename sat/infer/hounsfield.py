"""Absolute Hounsfield-unit plausibility for CT masks: could this tissue have these densities?

Normalised intensities are relative to each image (a head-and-neck scan full of air shifts them),
so a CT mask is also checked in Hounsfield units, on the original image before normalisation:

* the mask's mean HU must lie within what the concept's tissue can be. The reference is, in order:
  the range of per-case means the training data showed (``intensity_hu`` in the checkpoint's
  ``concept_stats``, from :mod:`sat.data.concept_stats`, at least :data:`MIN_HU_CASES` cases),
  widened by :data:`HU_MARGIN` (contrast phases move parenchyma by ~100-150 HU); otherwise the
  conservative range of the concept's tissue class (:data:`TISSUE_HU`), found from the knowledge
  tree (:func:`tissue_classes`);
* a mask of a solid tissue (anything but air-filled and gas-holding hollow structures) must not be
  mostly air: at most :data:`AIR_FRACTION_MAX` of its voxels below :data:`AIR_HU`.

Lesions (a calcification, an abscess with gas, an effusion) and concepts of no known tissue are
not checked. MR and PET intensities are arbitrary units, so only CT gets these checks.
"""
from __future__ import annotations

import numpy as np

from sat.knowledge.tree import KnowledgeTree

AIR_HU = -400.0  # below: air or lung parenchyma
AIR_FRACTION_MAX = 0.5  # a solid structure whose mask is mostly air is not that structure
HU_MARGIN = 150.0  # HU added on each side of a measured training range (at least half its width)
MIN_HU_CASES = 3  # fewer training cases than this: the tissue-class range is used instead

# Mean HU a correct mask of each tissue class can have (coarse masks included: partial volume with
# neighbours, fatty or oedematous organs, iodinated contrast). Deliberately wide: they flag the
# impossible (a liver of -490 HU, a heart half air), not the unusual.
TISSUE_HU: dict[str, tuple[float, float]] = {
    "air_filled": (-1100.0, 300.0),  # lungs, airways, sinuses, pharynx, larynx: air with walls
    "gas_hollow": (-1100.0, 800.0),  # stomach, bowel, oesophagus: gas, fluid or oral contrast
    "soft": (-250.0, 600.0),  # parenchymal organs, glands, muscle, nervous tissue
    "blood": (-200.0, 1200.0),  # heart and vessels, with or without intravenous contrast
    "fluid": (-200.0, 1500.0),  # bladder, gallbladder, CSF spaces (excreted contrast is dense)
    "fat": (-300.0, 150.0),
    "bone": (0.0, float("inf")),  # marrow to enamel and metal
}
SOLID = frozenset(TISSUE_HU) - {"air_filled", "gas_hollow"}
WORDS = {"air_filled": "air-filled structures", "gas_hollow": "hollow organs", "soft": "soft tissue",
         "blood": "blood", "fluid": "fluid", "fat": "fat", "bone": "bone"}

# Concepts whose tissue their ``kind`` does not tell (parts inherit through is_a / part_of).
EXPLICIT: dict[str, str] = {
    **dict.fromkeys(("lung_left", "lung_right", "lungs", "pair_of_lungs", "trachea", "larynx", "larynx_air",
                     "pharynx", "nasopharynx", "oropharynx", "hypopharynx", "upper_respiratory_tract",
                     "nasal_cavity", "nasal_cavity_left", "nasal_cavity_right", "paranasal_sinuses",
                     "maxillary_sinus", "maxillary_sinus_left", "maxillary_sinus_right", "frontal_sinus",
                     "sphenoid_sinus", "ethmoid_sinus", "oral_cavity", "auditory_canal", "middle_ear",
                     "tympanic_cavity", "eustachian_tube", "pleural_cavity_left", "pleural_cavity_right"),
                    "air_filled"),
    **dict.fromkeys(("esophagus", "stomach", "stomach_lumen", "duodenum", "small_bowel", "bowel", "jejunum",
                     "ileum", "colon", "large_intestine", "cecum", "appendix", "rectum", "anal_canal"),
                    "gas_hollow"),
    **dict.fromkeys(("heart", "heart_atrium_left", "heart_atrium_right", "heart_ventricle_left",
                     "heart_ventricle_right"), "blood"),
    **dict.fromkeys(("urinary_bladder", "bladder_lumen", "gallbladder", "cerebrospinal_fluid",
                     "ventricular_system", "lateral_ventricles", "lateral_ventricle_left", "lateral_ventricle_right",
                     "third_ventricle", "fourth_ventricle", "subarachnoid_space"), "fluid"),
    **dict.fromkeys(("perirenal_fat", "renal_fat_pad", "mesorectum", "greater_omentum", "lesser_omentum",
                     "mesentery", "parametrial_fat_pad"), "fat"),
    "teeth": "bone", "vertebral_column": "bone",
}
KIND_CLASS: dict[str, str] = {"organ": "soft", "gland": "soft", "muscle": "soft", "vessel": "blood",
                              "bone": "bone", "airway": "air_filled"}


def _classes(tree: KnowledgeTree, cid: str, depth: int = 0) -> set[str]:
    """One concept's tissue classes (empty: unknown)."""
    c = tree.get(cid)
    if c.kind == "lesion":
        return set()
    if cid in EXPLICIT:
        return {EXPLICIT[cid]}
    ancestors = tree.ancestors(cid)
    own = {EXPLICIT[a] for a in ancestors if a in EXPLICIT}
    if c.kind in KIND_CLASS:
        return own | {KIND_CLASS[c.kind]}
    if c.kind == "substructure":  # a part is made of what its wholes are made of
        return own | {KIND_CLASS[k] for k in (tree.get(a).kind for a in ancestors) if k in KIND_CLASS}
    if c.kind == "group" and depth < 4:  # what its healthy members are made of, when all are known
        members = [_classes(tree, m, depth + 1) for m in tree.children(cid) if tree.get(m).kind != "lesion"]
        return set().union(*members) if members and all(members) else set()
    return set()  # a cavity or tissue holds what its walls do not tell: unchecked


def tissue_classes(tree: KnowledgeTree, concepts: list[str]) -> frozenset[str] | None:
    """The tissue classes a mask of the union of ``concepts`` may show (``None``: unknown, unchecked).

    A concept's class is its curated one (:data:`EXPLICIT`), else its kind's (:data:`KIND_CLASS`)
    together with every curated class among its ancestors (a lung lobe is air-filled, a muscle of the
    larynx may hold air); a substructure takes its wholes' kinds too, a group its members' classes.
    A lesion, or any concept of unknown tissue, leaves the whole union unchecked.
    """
    out: set[str] = set()
    for cid in concepts:
        own = _classes(tree, cid) if cid in tree else set()
        if not own:
            return None
        out |= own
    return frozenset(out)


def _tissue_words(classes: frozenset[str]) -> str:
    return " or ".join(WORDS[c] for c in sorted(classes))


def hu_reference(name: str, own_stats: dict | None, classes: frozenset[str] | None
                 ) -> tuple[float, float, str] | None:
    """``(low, high, why)`` the mask's mean HU must lie within, or ``None`` when nothing is known.

    Args:
        name: the concept id, for ``why``. own_stats: the concept's CT entry of ``concept_stats``
            (may hold ``intensity_hu`` and ``hu_cases``). classes: :func:`tissue_classes` of the structure.
    """
    measured = (own_stats or {}).get("intensity_hu")
    n_cases = (own_stats or {}).get("hu_cases", (own_stats or {}).get("cases"))
    if measured and int(n_cases or 0) >= MIN_HU_CASES:
        lo, hi = (float(v) for v in measured)
        margin = max(HU_MARGIN, 0.5 * (hi - lo))
        return lo - margin, hi + margin, f"far outside the {lo:.0f} to {hi:.0f} HU of {name} in training CT scans"
    if not classes:
        return None
    lo, hi = min(TISSUE_HU[c][0] for c in classes), max(TISSUE_HU[c][1] for c in classes)
    span = f"{lo:.0f} to {hi:.0f} HU" if hi < float("inf") else f"above {lo:.0f} HU"
    return lo, hi, f"impossible for {_tissue_words(classes)} ({span})"


def check_hu(name: str, hu: np.ndarray, own_stats: dict | None, classes: frozenset[str] | None) -> dict:
    """Mean-HU and air checks of one CT mask.

    Args:
        name: the concept id, for the message. hu: (N,) HU of the original image on the mask.
        own_stats: the concept's CT ``concept_stats`` entry or ``None``. classes: its tissue classes.

    Returns:
        ``{"hu_mean", "air_fraction", "flags": [{"check": "hounsfield", "message"}]}``.
    """
    hu = np.asarray(hu, dtype=np.float64).ravel()
    out: dict = {"hu_mean": None, "air_fraction": None, "flags": []}
    if hu.size == 0:
        return out
    mean, air = float(hu.mean()), float((hu < AIR_HU).mean())
    out.update(hu_mean=round(mean, 1), air_fraction=round(air, 4))
    ref = hu_reference(name, own_stats, classes)
    if ref is not None and not ref[0] <= mean <= ref[1]:
        message = f"mean {mean:.0f} HU ({air:.0%} air) is {ref[2]}"
    elif classes and classes <= SOLID and air > AIR_FRACTION_MAX:
        message = f"{air:.0%} of the mask is air (below {AIR_HU:.0f} HU), impossible for {_tissue_words(classes)}"
    else:
        return out
    out["flags"].append({"check": "hounsfield", "message": message})
    return out
