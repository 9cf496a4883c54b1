"""Split a free-text prompt into the anatomy it names and its qualifiers.

"liver in abdominal CT" -> anatomy "liver", modality CT; "right kidney on T2 MRI" -> anatomy
"right kidney", modality MR, laterality right. Laterality words stay in the anatomy text (they
are part of names such as "left kidney") and are also reported separately so the resolver can
enforce them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_MODALITY_PATTERNS = [
    ("MR", r"\b(mri|mr|magnetic resonance( imaging)?|t1w?|t2w?|flair|dwi|adc|dixon|t1ce|t1c|"
           r"(contrast[- ]enhanced )?mr angiography|mra)\b"),
    ("PET", r"\b(pet|pet[- /]ct|fdg|positron emission tomography)\b"),
    ("US", r"\b(ultrasound|us|sonography|echography)\b"),
    ("CT", r"\b(ct|cta|computed tomography|cat scan|ncct|cect|contrast[- ]enhanced ct)\b"),
]
_CONTEXT = re.compile(
    r"\b(in|on|from|of|at|within|using|with|for|the|a|an|this|that|these|image|images|scan|scans|"
    r"volume|study|series|sequence|weighted|abdominal|thoracic|chest|pelvic|head|neck|brain|"
    r"whole[- ]body|axial|coronal|sagittal|contrast|enhanced|non|phase|venous|arterial|portal|"
    r"please|segment|segmentation|mask|delineate|outline|show|find|locate|me|patient|patients)\b")
_LEFT = re.compile(r"\b(left|lt|l|sinister|sinistra|sinistral|sin)\b")
_RIGHT = re.compile(r"\b(right|rt|r|dexter|dextra|dextral)\b")
_BILATERAL = re.compile(r"\b(bilateral|both|either|two|pair|paired)\b")


@dataclass
class ParsedPrompt:
    """A parsed prompt.

    Attributes:
        text: the original prompt. anatomy: the anatomy part (modality phrases removed).
        modality: ``CT``/``MR``/``PET``/``US`` or ``None``.
        laterality: ``left``/``right`` if the prompt says so, ``None`` if it does not,
            ``both`` for bilateral wording.
    """

    text: str
    anatomy: str
    modality: str | None
    laterality: str | None


def parse_prompt(text: str) -> ParsedPrompt:
    """Separate qualifiers from anatomy in ``text`` (any string, never raises)."""
    low = " " + re.sub(r"[_\s]+", " ", text.lower()) + " "
    modality = None
    for name, pattern in _MODALITY_PATTERNS:
        if re.search(pattern, low):
            modality = modality or name
            low = re.sub(pattern, " ", low)
    left, right = bool(_LEFT.search(low)), bool(_RIGHT.search(low))
    laterality = "both" if (left and right) or _BILATERAL.search(low) else \
        "left" if left else "right" if right else None
    core = " ".join(_CONTEXT.sub(" ", low).split())
    # a prompt made only of context words ("the image") keeps its words for the resolver
    anatomy = core if re.search(r"[a-z0-9]", core) else " ".join(low.split())
    return ParsedPrompt(text=text, anatomy=anatomy, modality=modality, laterality=laterality)
