"""Map resolved prompts onto what a model was trained on.

A resolved concept is segmented directly when the model was trained on it. A grouping concept
("kidneys", "lumbar spine") that the model was not trained on becomes the union of its trained
descendants (lesions inside an organ are not parts of it). Anything else is refused, with trained
relatives as suggestions.
"""
from __future__ import annotations

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


def plan_prompt(res: Resolution, tree: KnowledgeTree, trained: set[str]) -> PromptPlan:
    """Decide which trained concepts answer a resolution."""
    plan = PromptPlan(prompt=res.text, resolution=res)
    if res.concept is None:
        plan.refused = res.reason or "not an anatomical concept"
        plan.suggestions = res.suggestions
        return plan
    if res.concept in trained:
        plan.concepts = [res.concept]
        return plan
    # an organ or group is the union of its trained parts, never of lesions inside it ("kidneys" is
    # not "kidney cyst"); a lesion prompt ("kidney lesions") may be answered by its lesion subtypes
    lesion = tree.get(res.concept).kind == "lesion"
    below = [d for d in tree.descendants(res.concept) if d in trained and (lesion or tree.get(d).kind != "lesion")]
    # keep the top-most trained descendants; a trained child of a trained child adds nothing
    top = [d for d in below if not any(a in below for a in tree.ancestors(d))]
    if top:
        plan.concepts = top
        return plan
    near = [c for c in (*tree.siblings(res.concept), *tree.ancestors(res.concept)) if c in trained]
    plan.refused = f"'{res.name}' is a known concept but this model was not trained to segment it"
    plan.suggestions = [{"concept": c, "name": tree.get(c).name} for c in near[:5]]
    return plan
