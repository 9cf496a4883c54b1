"""Lexical keys: order, side abbreviations, roman numerals, ordinals and initials."""
from __future__ import annotations

import pytest

from sat import knowledge
from sat.knowledge.lexicon import LexicalIndex, acronym, bag_key


@pytest.mark.parametrize("a, b", [
    ("left kidney", "kidney, Lt"), ("Couinaud segment VII", "couinaud segment 7"),
    ("hepatic segment IVb", "hepatic segment 4b"), ("seventh thoracic vertebra", "thoracic vertebra 7th"),
    ("lobe of the liver, right", "R liver lobe"),
])
def test_bag_keys_match(a, b):
    assert bag_key(a) == bag_key(b)


def test_bag_keys_keep_meaning():
    assert bag_key("left kidney") != bag_key("right kidney")
    assert bag_key("C1 vertebra") != bag_key("C2 vertebra")
    assert acronym("left atrial appendage") == "laa" and acronym("liver") == "" and acronym("C1 vertebra") == ""


def test_index_is_unambiguous_and_case_aware():
    idx = LexicalIndex(knowledge.default_tree())
    assert idx.match("kidney, Lt", "kidney, lt") == ("kidney_left", "lexical")
    assert idx.match("IVC", "ivc") == ("inferior_vena_cava", "exact")
    owners: dict[str, set[str]] = {}
    for c in knowledge.default_tree().concepts.values():
        for t in c.terms:
            if "_" not in t:
                owners.setdefault(acronym(t), set()).add(c.id)
    assert idx.acronyms and all(owners[k] == {cid} for k, cid in idx.acronyms.items())
    assert idx.match("todo", "todo") == (None, "")  # initials only for upper-case words
