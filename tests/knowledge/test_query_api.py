"""The module-level query API, the prompt parser and tree validation on the repository tree."""
from __future__ import annotations

import pytest

from sat import knowledge
from sat.knowledge import parse_prompt, validate_tree
from sat.knowledge.tree import Concept, KnowledgeTree


def test_repo_tree_validates():
    tree = knowledge.default_tree()
    assert len(tree) >= 600
    assert validate_tree(tree) == []


def test_get_lookup_search():
    assert knowledge.get("kidney_left").name == "left kidney"
    assert knowledge.lookup("postcava").id == "inferior_vena_cava"
    assert knowledge.lookup("no such organ") is None
    assert "inferior_vena_cava" in [c.id for c in knowledge.search("vena cava")]
    with pytest.raises(KeyError, match="kidny"):
        knowledge.get("kidny")


def test_ancestors_descendants_siblings_mirror():
    assert knowledge.mirror("kidney_left").id == "kidney_right"
    assert knowledge.mirror("kidney_right").id == "kidney_left"
    assert knowledge.mirror("liver") is None
    anc = knowledge.ancestors("kidney_left")
    assert anc[0] == "kidneys" and "urinary_system" in anc
    desc = knowledge.descendants("kidneys")
    assert {"kidney_left", "kidney_right"} <= set(desc)
    assert "renal_cortex_left" in desc  # transitive
    assert "kidney_right" in knowledge.siblings("kidney_left")
    assert "kidney_left" not in knowledge.siblings("kidney_left")
    for cid in ("kidney_left", "liver", "vertebrae_l1"):
        assert not set(knowledge.ancestors(cid)) & set(knowledge.descendants(cid))


@pytest.mark.parametrize("text, anatomy, modality, side", [
    ("liver in abdominal CT", "liver", "CT", None),
    ("right kidney on T2 MRI", "right kidney", "MR", "right"),
    ("Inferior vena cava in abdominal CT", "inferior vena cava", "CT", None),
    ("T2 vertebra", "t2 vertebra", None, None),  # a vertebra, not a sequence
    ("segment the head of pancreas", "head of pancreas", None, None),
    ("portal vein in portal venous phase CT", "portal vein", "CT", None),
    ("brain stem on brain MRI", "brain stem", "MR", None),
    ("left lung on PET/CT", "left lung", "PET", "left"),
    ("both kidneys", "both kidneys", None, "both"),
    ("!!!", "", None, None),
    ("", "", None, None),
])
def test_parse_prompt(text, anatomy, modality, side):
    p = parse_prompt(text)
    assert (p.anatomy, p.modality, p.laterality) == (anatomy, modality, side)


def test_validate_reports_broken_tree():
    base = dict(definition="d", region="abdomen", kind="organ")
    tree = KnowledgeTree([
        Concept(id="a", name="alpha", is_a=("b",), **base),
        Concept(id="b", name="beta", is_a=("a",), synonyms=("alpha",), **base),
        Concept(id="c_left", name="c left", laterality="left", mirror="missing",
                part_of=("nowhere",), **base),
        Concept(id="d", name="delta", **base),
        Concept(id="d", name="delta again", **base),
    ])
    errors = "\n".join(validate_tree(tree))
    for needle in ("duplicate id 'd'", "unknown id 'nowhere'", "cycle", "mirror references unknown",
                   "used by both"):
        assert needle in errors
