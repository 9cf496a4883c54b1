"""Split a free-text prompt into the anatomy it names and its qualifiers.

"liver in abdominal CT" -> anatomy "liver", modality CT; "right kidney on T2 MRI" -> anatomy
"right kidney", modality MR, laterality right. Laterality words stay in the anatomy text (they
are part of names such as "left kidney") and are also reported separately so the resolver can
enforce them. Only filler is removed: a region adjective is dropped when it qualifies a
modality ("abdominal CT") but kept in anatomy ("head of pancreas", "brain stem"), and "T2" is a
sequence only when it reads like one ("T2 MRI", "on T2w"), never in "T2 vertebra".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sat.knowledge.glossary import split_camel

_REGION = (r"(?:(?:abdominal|abdomen|abdo|thoracic|thorax|chest|pelvic|pelvis|head|neck|"
           r"head and neck|brain|cardiac|spine|spinal|whole[- ]body|liver|renal|lung)\s+)?")
_SEQ = r"(?:t1|t2)(?:[- ]?(?:w|weighted|ce|c|gd|fs|post))*"
_MODALITY_PATTERNS = [
    ("MR", rf"\b{_REGION}(?:{_SEQ}\s+)?(?:mri|mr|magnetic resonance(?: imaging)?|mra|"
           r"(?:contrast[- ]enhanced )?mr angiography)\b"),
    ("MR", rf"\b(?:{_SEQ}[- ]weighted|t1w|t2w|t1ce|t1c|t1gd|flair|dwi|adc|dixon)\b"),
    ("MR", rf"\b(?<=on |in )(?:{_SEQ})(?=\s*(?:$|[,.;)]))"),
    ("PET", rf"\b{_REGION}(?:pet(?:[- /]ct)?|fdg(?:[- ]pet)?|positron emission tomography)\b"),
    ("US", rf"\b{_REGION}(?:ultrasound|sonography|echography|ultrasonography)\b"),
    ("CT", rf"\b{_REGION}(?:(?:contrast[- ]enhanced|non[- ]contrast|low[- ]dose) )?"
           r"(?:ct|cta|computed tomography|cat scan|ncct|cect|ct angiography)\b"),
]
_PHASE = re.compile(r"\b(?:(?:portal[- ])?venous|arterial|delayed|non[- ]contrast|late|early|"
                    r"nephrographic|hepatobiliary)\s+phase\b")
_SCAN_REF = re.compile(r"\b(?:in|on|from|within|of|at|for)\s+(?:the|this|that|these|an?|my|our)?\s*"
                       r"(?:image|images|scan|scans|volume|study|series|sequence|exam|examination|"
                       r"slice|slices|dataset)\b")
_FILLER = frozenset((
    "in on from of at within using with for the a an this that these those please segment "
    "segmentation segmented mask masks delineate delineation outline outlined contour contours "
    "show me find locate mark highlight label draw give i need want can could would you us "
    "where is are it its which what patient patients patient's image scan volume study series "
    "sequence axial coronal sagittal view structure seen visible shown depicted").split())
# Filler that is a verb only when it leads: "segment the liver" but "posterior liver segment".
_LEADING_ONLY = frozenset(("segment",))
# Filler only when it trails other words: "liver region" is the liver.
_TRAILING_ONLY = frozenset(("region", "area"))
_LEFT = re.compile(r"\b(left|lt|l|sinister|sinistra|sinistral|sinistrum|sin)\b")
_RIGHT = re.compile(r"\b(right|rt|r|dexter|dextra|dextral|dextrum)\b")
# "two" as a count ("the two kidneys"), not inside a compound adjective ("two-headed muscle")
_BILATERAL = re.compile(r"\b(bilateral|both|either|two(?!-)|pair|paired)\b")
_WORD = re.compile(r"[a-z0-9]")


@dataclass
class ParsedPrompt:
    """A parsed prompt.

    Attributes:
        text: the original prompt.
        anatomy: the anatomy part (modality phrases, phase words and leading/trailing filler
            removed), lower case; empty when the prompt holds no letters or digits.
        modality: ``CT``/``MR``/``PET``/``US`` or ``None``.
        laterality: ``left``/``right`` if the prompt says so, ``None`` if it does not,
            ``both`` when both sides are named, or for bilateral wording when no one side is.
    """

    text: str
    anatomy: str
    modality: str | None
    laterality: str | None


def _strip_filler(words: list[str]) -> list[str]:
    """Drop filler words at both ends, keeping inner ones ("head of pancreas")."""
    while words and words[0].strip("?!.,;:'\"()") in _FILLER:
        words = words[1:]
    while words and words[-1].strip("?!.,;:'\"()") in (_FILLER - _LEADING_ONLY) | _TRAILING_ONLY \
            and len(words) > 1:
        words = words[:-1]
    return words


def parse_prompt(text: str) -> ParsedPrompt:
    """Separate qualifiers from anatomy in ``text`` (any string; never raises)."""
    text = text if isinstance(text, str) else str(text)
    low = " " + re.sub(r"[_\s]+", " ", split_camel(text).lower()) + " "
    modality = "US" if re.search(r"\bUS\b", text) else None
    if modality:
        low = re.sub(r"\bus\b", " ", low)
    for name, pattern in _MODALITY_PATTERNS:
        if re.search(pattern, low):
            modality = modality or name
            low = re.sub(pattern, " ", low)
    low = _SCAN_REF.sub(" ", _PHASE.sub(" ", low))
    left, right = bool(_LEFT.search(low)), bool(_RIGHT.search(low))
    # one named side wins over a count ("the two lobes of the left lung" is the left lung's)
    laterality = "both" if left and right else "left" if left else "right" if right else \
        "both" if _BILATERAL.search(low) else None
    words = [w.strip(",;:") for w in low.split()]
    words = _strip_filler([w for w in words if w])
    anatomy = " ".join(words).strip(" ?!.,;:'\"")
    if not _WORD.search(anatomy):
        # a prompt made only of filler ("the image") keeps its words for the resolver to judge
        anatomy = " ".join(low.split()) if _WORD.search(low) else ""
    return ParsedPrompt(text=text, anatomy=anatomy, modality=modality, laterality=laterality)
