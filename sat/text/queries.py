"""Held-out anatomical queries for calibration and evaluation of the resolver.

Four kinds of query per held-out role (``calib`` or ``eval``), none of which pretraining sees:

* ``synonym``: a held-out synonym as written in the tree ("postcava", "lt kidney");
* ``synonym_prompt``: a held-out synonym inside a prompt template of that role;
* ``name_prompt``: a canonical name inside a prompt template of that role;
* ``description``: a held-out definition ("the large vein running up ...").

The templates of the two roles are disjoint from each other and from
:data:`sat.text.corpus.TRAIN_TEMPLATES`.
"""
from __future__ import annotations

from dataclasses import dataclass

from sat.knowledge.tree import KnowledgeTree
from sat.text.splits import ConceptSplit, SplitConfig, unit_hash

TEMPLATES = {
    "eval": ("please outline the {t}", "{t} in abdominal CT", "where is the {t}?",
             "{t} on T2 MRI", "delineate {t} on this scan", "contour of the {t}",
             "I need the {t} segmented", "{t}, contrast-enhanced CT"),
    "calib": ("mark the {t}", "{t} region", "find {t} in this volume", "{t} on PET/CT",
              "highlight the {t} please", "{t} seen on ultrasound", "draw the {t}",
              "{t} in the image"),
}
CATEGORIES = ("synonym", "synonym_prompt", "name_prompt", "description")


@dataclass(frozen=True)
class Query:
    """One anatomical query with its gold concept id."""

    text: str
    gold: str
    category: str


def _template(role: str, seed: int, *key: str) -> str:
    tpls = TEMPLATES[role]
    return tpls[int(unit_hash(seed, "qt", role, *key) * len(tpls))]


def held_out_queries(tree: KnowledgeTree, split: dict[str, ConceptSplit], role: str = "eval",
                     cfg: SplitConfig | None = None) -> list[Query]:
    """All queries of one held-out role, in a fixed order.

    Args:
        tree: the full tree (the split's tree).
        split: :func:`sat.text.splits.split_tree` output.
        role: ``eval`` or ``calib``.
        cfg: the split config (its seed and ``name_prompt_frac``).

    Raises:
        ValueError: ``role`` is not ``eval`` or ``calib``.
    """
    if role not in TEMPLATES:
        raise ValueError(f"role must be 'eval' or 'calib', got {role!r}")
    cfg = cfg or SplitConfig()
    lo = 0.0 if role == "eval" else cfg.name_prompt_frac
    out: list[Query] = []
    for c in tree.concepts.values():
        s = split[c.id]
        for syn in s.terms(role):
            out.append(Query(syn, c.id, "synonym"))
            out.append(Query(_template(role, cfg.seed, c.id, syn).format(t=syn), c.id, "synonym_prompt"))
        if lo <= unit_hash(cfg.seed, "np", c.id) < lo + cfg.name_prompt_frac:
            out.append(Query(_template(role, cfg.seed, c.id).format(t=c.name), c.id, "name_prompt"))
        if s.definition == role:
            out.append(Query(c.definition, c.id, "description"))
    return out
