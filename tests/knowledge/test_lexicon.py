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


def test_index_parts_are_built_only_when_a_prompt_needs_them():
    """An exact term builds nothing; other wording the keys; only an abbreviation the initials."""
    from sat.knowledge.lexicon import initials

    tree = knowledge.default_tree()
    idx = LexicalIndex(tree)
    assert idx.match("left kidney", "left kidney") == ("kidney_left", "exact")
    assert not {"words", "_keys", "_abbreviations"} & set(vars(idx))
    assert idx.match("kidney, Lt", "kidney, lt") == ("kidney_left", "lexical")
    assert "_keys" in vars(idx) and "_abbreviations" not in vars(idx)
    assert idx.initials_candidates("gda") == ("gastroduodenal_artery",)
    # the per-word memo of the build gives the initials a fresh call gives
    vocabulary = frozenset(w for w in idx.words if len(w) >= 4 and w.isalpha())
    memo: dict[str, list[str]] = {}
    for term in ("gastroduodenal artery", "left atrial appendage", "duodenal artery"):
        assert initials(term, vocabulary, memo) == initials(term, vocabulary)


def test_memoised_tokens_are_a_fresh_list_each_call():
    from sat.knowledge.normalize import tokens

    first = tokens("Hepatic_Veins")
    assert first == ["hepatic", "vein"]
    first.append("changed")
    assert tokens("Hepatic_Veins") == ["hepatic", "vein"]


def test_plurals_in_sses_lose_es():
    from sat.knowledge.normalize import tokens

    assert tokens("liver masses") == ["liver", "mass"] and tokens("spinous processes") == ["spinous", "process"]
    assert tokens("abscesses") == ["abscess"] and tokens("branches") == ["branch"]
