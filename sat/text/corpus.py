"""Training texts generated from the knowledge tree for knowledge pretraining.

Every text in ``concept_texts(...)[cid]`` is a positive of every other text of the same concept:
the canonical name, the training synonyms, the definition (unless held out), relation sentences
("the left kidney is a kind of kidneys", "the liver is part of the hepatobiliary system") and
prompt-style variants built from ``TRAIN_TEMPLATES``. Held-out synonyms and definitions
(:mod:`sat.text.splits`) never appear here.
"""
from __future__ import annotations

from sat.knowledge.normalize import normalize
from sat.knowledge.tree import Concept, KnowledgeTree
from sat.text.splits import ConceptSplit, unit_hash

# Prompt templates seen in pretraining; evaluation uses a disjoint set (sat.text.queries).
TRAIN_TEMPLATES = ("the {t}", "{t} on CT", "{t} in MRI", "segment the {t}", "{t} mask",
                   "{t} segmentation", "show me the {t}", "{t} on the scan", "label {t}",
                   "a CT of the {t}", "{t} structure", "the patient's {t}")
_KIND_WORDS = {"organ": "an organ", "vessel": "a blood vessel", "bone": "a bone",
               "muscle": "a muscle", "gland": "a gland", "airway": "an airway",
               "cavity": "a cavity", "substructure": "a part of an organ", "tissue": "a tissue",
               "lesion": "a lesion", "group": "a group of structures"}
_REGION_WORDS = {"brain": "the brain", "head_neck": "the head and neck", "thorax": "the chest",
                 "abdomen": "the abdomen", "pelvis": "the pelvis", "spine": "the spine",
                 "upper_limb": "the arm", "lower_limb": "the leg", "whole_body": "the body"}


def relation_sentences(tree: KnowledgeTree, c: Concept) -> list[str]:
    """Sentences stating the concept's place in the tree, laterality, kind and region."""
    out = [f"the {c.name} is a kind of {tree.get(p).name}" for p in c.is_a if p in tree]
    out += [f"the {c.name} is part of the {tree.get(p).name}" for p in c.part_of if p in tree]
    if c.laterality in ("left", "right"):
        out.append(f"the {c.name}, on the {c.laterality} side of the body")
    out.append(f"{c.name}: {_KIND_WORDS.get(c.kind, c.kind)} of {_REGION_WORDS.get(c.region, c.region)}")
    return out


def mentions_held_out(text: str, s: ConceptSplit) -> bool:
    """Whether ``text`` contains one of the concept's held-out synonyms as whole words (a
    definition that says "the brainstem (truncus encephali) ..." would leak the held-out Latin
    name into training)."""
    padded = f" {normalize(text)} "
    return any(f" {normalize(t)} " in padded for role in ("calib", "eval") for t in s.terms(role)
               if normalize(t))


def concept_texts(tree: KnowledgeTree, split: dict[str, ConceptSplit], *, seed: int = 0,
                  templates_per_concept: int = 3) -> dict[str, list[str]]:
    """Positive texts of every concept, from training material only.

    Args:
        tree: the full tree.
        split: :func:`sat.text.splits.split_tree` of the same tree.
        seed: picks which terms go into which prompt templates.
        templates_per_concept: prompt-style variants added per concept.

    Returns:
        concept id -> list of distinct texts (at least the canonical name).
    """
    out: dict[str, list[str]] = {}
    for c in tree.concepts.values():
        s = split[c.id]
        terms = [c.name, *s.terms("train")]
        texts = list(terms)
        if s.definition == "train":
            texts.append(c.definition)
        texts += relation_sentences(tree, c)
        texts = [t for t in texts if not mentions_held_out(t, s)]
        for k in range(templates_per_concept):
            t = terms[int(unit_hash(seed, "tt", c.id, str(k)) * len(terms))]
            tpl = TRAIN_TEMPLATES[int(unit_hash(seed, "tp", c.id, str(k)) * len(TRAIN_TEMPLATES))]
            texts.append(tpl.format(t=t))
        out[c.id] = list(dict.fromkeys(texts))
    return out
