"""A fixed, seeded split of the knowledge tree's texts into train / calibration / evaluation.

Knowledge pretraining sees only the ``train`` part. The ``calib`` part sets the resolver's
acceptance threshold and the ``eval`` part measures it (``sat concepts eval``). Every synonym and
every definition is assigned by a hash of (seed, concept id, normalised text), so adding a
concept never reshuffles the others and the split is the same on every machine.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from sat.knowledge.normalize import normalize
from sat.knowledge.tree import SYNONYM_FIELDS, KnowledgeTree

ROLES = ("train", "calib", "eval")


@dataclass(frozen=True)
class SplitConfig:
    """How much of the tree's text is held out.

    Attributes:
        seed: changes every assignment.
        eval_frac: share of eligible synonyms held out for evaluation.
        calib_frac: share of eligible synonyms held out for threshold calibration.
        definition_eval_frac: share of concepts whose definition is held out for evaluation.
        definition_calib_frac: share of concepts whose definition is held out for calibration.
        name_prompt_frac: share of concepts whose canonical name is asked in an unseen template,
            per held-out role.
    """

    seed: int = 0
    eval_frac: float = 0.15
    calib_frac: float = 0.10
    definition_eval_frac: float = 0.10
    definition_calib_frac: float = 0.05
    name_prompt_frac: float = 0.25

    def __post_init__(self) -> None:
        for a, b in (("eval_frac", "calib_frac"), ("definition_eval_frac", "definition_calib_frac")):
            x, y = getattr(self, a), getattr(self, b)
            if x < 0 or y < 0 or x + y >= 1:
                raise ValueError(f"{a}={x} and {b}={y} must be >= 0 and sum to < 1")


def unit_hash(seed: int, *parts: str) -> float:
    """A deterministic number in [0, 1) from a seed and some strings."""
    h = hashlib.sha256("\0".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def _role(u: float, eval_frac: float, calib_frac: float) -> str:
    return "eval" if u < eval_frac else "calib" if u < eval_frac + calib_frac else "train"


@dataclass(frozen=True)
class ConceptSplit:
    """The role of each text of one concept (the canonical name is always ``train``)."""

    synonyms: dict  # synonym -> role
    definition: str  # role of the definition

    def terms(self, role: str) -> list[str]:
        return [s for s, r in self.synonyms.items() if r == role]


def split_tree(tree: KnowledgeTree, cfg: SplitConfig | None = None) -> dict[str, ConceptSplit]:
    """Assign every synonym and definition of ``tree`` to train / calib / eval.

    A synonym that normalises to the concept's name or id ("Left Kidney", "kidney_left") carries
    no new wording and always stays in ``train``; synonyms with the same normalised form share
    one role, so a held-out term never leaks through a spelling variant.
    """
    cfg = cfg or SplitConfig()
    out: dict[str, ConceptSplit] = {}
    for c in tree.concepts.values():
        fixed = {normalize(c.name), normalize(c.id)}
        roles = {}
        for s in c.all_synonyms:  # exact, abbreviation, Latin and related synonyms alike
            key = normalize(s)
            roles[s] = "train" if key in fixed else \
                _role(unit_hash(cfg.seed, "syn", c.id, key), cfg.eval_frac, cfg.calib_frac)
        u = unit_hash(cfg.seed, "def", c.id)
        out[c.id] = ConceptSplit(roles, _role(u, cfg.definition_eval_frac, cfg.definition_calib_frac))
    return out


def train_view(tree: KnowledgeTree, split: dict[str, ConceptSplit], seed: int = 0) -> KnowledgeTree:
    """The tree as pretraining and held-out evaluation see it: held-out synonyms removed.

    Its hash differs from the full tree's, so cached term embeddings never mix the two.
    """
    concepts = [dataclasses.replace(c, **{f: tuple(t for t in getattr(c, f) if split[c.id].synonyms.get(t) == "train")
                                          for f in SYNONYM_FIELDS})
                for c in tree.concepts.values()]
    return KnowledgeTree(concepts, f"{tree.hash}-train{seed}")
