"""Report mention extraction: offsets, laterality, lesion words, sizes, negation, concepts."""
from __future__ import annotations

import pytest

from sat.agent.mentions import combine, extract_mentions
from sat.knowledge.tree import load_tree


@pytest.fixture(scope="module")
def tree():
    return load_tree()


def _check_offsets(text, mentions):
    for m in mentions:
        assert text[m.start:m.end] == m.text
        assert text[m.anatomy_start:m.anatomy_end] == m.anatomy
        assert m.start <= m.anatomy_start < m.anatomy_end <= m.end


def test_cyst_in_left_kidney(tree):
    text = "Findings: there is a 3 cm cyst in the left kidney."
    (m,) = extract_mentions(text, tree)
    _check_offsets(text, [m])
    assert m.text == "3 cm cyst in the left kidney"
    assert (m.anatomy, m.lesion, m.laterality, m.sizes_mm) == ("left kidney", "cyst", "left", [30.0])
    assert m.concept == "kidney_cyst_left" and not m.negated


def test_two_sentences_decimal_sizes_and_modifiers(tree):
    text = "The liver is enlarged with a 2.1 x 1.5 cm hypodense lesion. Spleen normal."
    ms = extract_mentions(text, tree)
    _check_offsets(text, ms)
    assert [m.sentence for m in ms] == [0, 1]  # "2.1" does not end a sentence
    liver, spleen = ms
    assert liver.concept == "liver_tumor" and liver.sizes_mm == [21.0, 15.0]
    assert {"enlarged", "hypodense"} <= set(liver.modifiers)
    assert spleen.concept == "spleen" and spleen.modifiers == ["normal"]


def test_negation_side_words_and_lists(tree):
    text = ("No gallstones. Liver, spleen and pancreas are unremarkable. "
            "Renal cyst on the right; bilateral kidney stones.")
    ms = extract_mentions(text, tree)
    _check_offsets(text, ms)
    by = {m.anatomy.lower(): m for m in ms}
    assert by["gallstones"].negated and by["gallstones"].concept == "gallstones"
    assert [by[k].concept for k in ("liver", "spleen", "pancreas")] == ["liver", "spleen", "pancreas"]
    assert not any(by[k].negated for k in ("liver", "spleen", "pancreas"))
    assert by["renal cyst"].laterality == "right" and by["renal cyst"].concept == "kidney_cyst_right"
    assert by["kidney stones"].laterality == "bilateral"


def test_no_anatomy_gives_no_mentions(tree):
    assert extract_mentions("Technique: helical acquisition, 120 kVp. Comparison: none.", tree) == []
    assert extract_mentions("", tree) == []


def test_combine_lesion_and_anatomy(tree):
    g = tree.get
    assert combine(tree, g("cyst"), g("kidney_left")).id == "kidney_cyst_left"
    assert combine(tree, g("cyst"), g("liver")).id == "liver_cyst"
    assert combine(tree, g("tumor"), g("pancreas")).id == "pancreas_tumor"
    assert combine(tree, g("cyst"), g("aorta")) is None
