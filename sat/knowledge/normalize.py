"""Text normalisation shared by the tree validator and the resolver.

A synonym collides with another concept's synonym when their normalised forms are equal, so this
function defines what "the same term" means across the whole project.
"""
from __future__ import annotations

import functools
import re
import unicodedata

_IRREGULAR = {
    "vertebrae": "vertebra",
    "metastases": "metastasis",
    "teeth": "tooth",
    "feet": "foot",
    "lumina": "lumen",
    "diverticula": "diverticulum",
    "ganglia": "ganglion",
    "nuclei": "nucleus",
    "lobi": "lobus",
    "femora": "femur",
    "cortices": "cortex",
    "vertices": "vertex",
    "bronchi": "bronchus",
    "ossa": "os",
    "crura": "crus",
    "analyses": "analysis",
    "hypertrophies": "hypertrophy",
}
# Words ending in "s" that are singular: never strip their final "s".
_SINGULAR_S = ("ss", "us", "is", "as", "os", "ys", "ics")
_SPLIT = re.compile(r"[\s_\-/,;:.()\[\]{}'\"`+*&|\\]+")


def singular(word: str) -> str:
    """Return a crude singular form of one lower-case English word ("kidneys" -> "kidney")."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_SINGULAR_S):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]  # "branches", "boxes", "masses", "processes"
    return word[:-1]


def tokens(text: str) -> list[str]:
    """Split text into lower-case ASCII word tokens, singularised; punctuation is a separator.

    Args:
        text: any string; non-ASCII letters are folded to their ASCII base ("oesophagus").

    Returns:
        The list of normalised tokens, possibly empty.
    """
    return list(_tokens(text))


@functools.lru_cache(maxsize=1 << 17)
def _tokens(text: str) -> tuple[str, ...]:
    """:func:`tokens`, memoised: loading a tree, its lexical index and agreement keys tokenise
    each of ~18,000 terms about six times (110,000 calls on the first free-text prompt)."""
    folded = text if text.isascii() else \
        unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return tuple(singular(t) for t in _SPLIT.split(folded.lower()) if t)


def normalize(text: str) -> str:
    """Canonical lookup key of a term: tokens joined by one space ("Kidney_Left" -> "kidney left")."""
    return " ".join(tokens(text))
