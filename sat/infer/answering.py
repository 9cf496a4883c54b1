"""Map resolved prompts onto what a model was trained on.

A resolved concept is segmented directly when the model was trained on it. A grouping concept
("kidneys", "lumbar spine") that the model was not trained on becomes the union of its trained
descendants (lesions inside an organ are not parts of it). Anything else is refused, quoting the
user's words, and only with suggestions the model can answer. A prompt naming both sides of one
structure ("right left kidney") is refused instead of being read as both kidneys.

:func:`answering` is the one rule every caller uses (``sat segment``, ``sat concepts ...
--checkpoint``, the agent's ``list_concepts`` and ``segment``), so they never disagree on which
concepts answer a prompt.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from sat.knowledge.resolver import Resolution
from sat.knowledge.tree import KnowledgeTree


@dataclass
class PromptPlan:
    """How one prompt will be answered.

    Attributes:
        prompt: the user's text. resolution: the resolver's answer.
        concepts: trained concept ids whose masks are unioned (empty when refused).
        refused: reason when the prompt cannot be answered, else ``""``.
        suggestions: alternatives offered when refused.
    """

    prompt: str
    resolution: Resolution
    concepts: list[str] = field(default_factory=list)
    refused: str = ""
    suggestions: list[dict] = field(default_factory=list)


_SIDE = re.compile(r"\b(?:(left|lt|sinister|sinistra)|(right|rt|dexter|dextra))\b")
_BOTH = re.compile(r"\b(?:and|or|both|bilateral|either|vs|versus)\b|[&+/,]")


def contradicting_sides(text: str) -> bool:
    """Whether ``text`` names the left and the right side of one thing ("right left kidney"),
    as opposed to both sides joined by a conjunction ("left and right kidneys")."""
    low = text.lower()
    marks = [(m.start(), "L" if m.group(1) else "R") for m in _SIDE.finditer(low)]
    for (a, sa), (b, sb) in zip(marks, marks[1:]):
        if sa != sb and not _BOTH.search(low[a:b]):
            return True
    return False


def answering(tree: KnowledgeTree, trained: set[str], cid: str) -> list[str]:
    """The trained concepts whose union answers ``cid`` (empty: the model cannot answer it).

    ``cid`` itself when trained; else the top-most trained descendants, never lesions inside an
    organ ("kidneys" is not "kidney cyst"), though a lesion concept ("kidney lesions") may be
    answered by its lesion subtypes.
    """
    if cid in trained:
        return [cid]
    lesion = tree.get(cid).kind == "lesion"
    below = [d for d in tree.descendants(cid) if d in trained and (lesion or tree.get(d).kind != "lesion")]
    return [d for d in below if not any(a in below for a in tree.ancestors(d))]


def answerable(tree: KnowledgeTree, trained: set[str]) -> dict[str, list[str]]:
    """Every concept the model can segment -> the trained concepts whose union answers it."""
    out = {}
    for cid in tree.concepts:
        via = answering(tree, trained, cid)
        if via:
            out[cid] = via
    return out


def _named(tree: KnowledgeTree, ids) -> list[dict]:
    return [{"concept": c, "name": tree.get(c).name} for c in ids]


def plan_prompt(res: Resolution, tree: KnowledgeTree, trained: set[str]) -> PromptPlan:
    """Decide which trained concepts answer a resolution."""
    plan = PromptPlan(prompt=res.text, resolution=res)
    if contradicting_sides(res.text):
        plan.refused = (f"{res.text!r} names both the left and the right side of one structure; ask for one "
                        f"side, or for both with 'and' (e.g. 'left and right kidney')")
        return plan
    if res.concept is None:
        plan.refused = f"{res.text[:80]!r} was not recognised: {res.reason or 'not an anatomical concept'}"
        plan.suggestions = [s for s in res.suggestions if answering(tree, trained, s["concept"])]
        return plan
    plan.concepts = answering(tree, trained, res.concept)
    if plan.concepts:
        return plan
    near = [c for c in dict.fromkeys((*tree.siblings(res.concept), *tree.ancestors(res.concept)))
            if answering(tree, trained, c)]
    plan.refused = (f"{res.text[:80]!r} means {res.name!r}, which this model was not trained to segment "
                    f"(nor any part of it)")
    plan.suggestions = _named(tree, near[:5])
    return plan
