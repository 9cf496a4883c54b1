"""Phrasing consistency figures and the project's phrasing set."""
from __future__ import annotations

import json

import pytest

from sat.knowledge.consistency import DEFAULT_PHRASINGS, consistency, read_phrasings
from sat.knowledge.tree import load_tree


def test_consistency_counts_agreement_with_each_class_mode():
    rows = [("liver", "a"), ("liver", "b"), ("liver", "c"), ("spleen", "d"), ("spleen", "e")]
    out = consistency(rows, ["liver", "liver", "hepatobiliary_system", "spleen", None], {"liver", "spleen"})
    assert out["phrasings"] == 5 and out["classes"] == 2
    assert out["consistency"] == pytest.approx(3 / 5)  # a refusal never agrees
    assert out["classes_consistent"] == 0.0
    assert out["refused"] == pytest.approx(1 / 5)
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert {b["class"] for b in out["inconsistent"]} == {"liver", "spleen"}


def test_consistency_without_gold_classes():
    out = consistency([("x", "a"), ("x", "b")], ["liver", "liver"], {"liver"})
    assert out["consistency"] == 1.0 and out["classes_consistent"] == 1.0 and out["accuracy"] is None


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 phrasings but 1 answers"):
        consistency([("x", "a"), ("x", "b")], ["liver"])


def test_bad_line_is_named(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"class": "liver", "text": "liver"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"p\.jsonl:2"):
        read_phrasings(f)


def test_project_phrasing_set_is_large_and_its_classes_are_concepts():
    rows = read_phrasings(DEFAULT_PHRASINGS)
    classes = {c for c, _ in rows}
    assert len(rows) >= 1000 and len(classes) >= 150
    assert classes <= set(load_tree().concepts)


def test_independent_vocabulary_set_is_large_and_names_each_text_once():
    # written without the tree, so its classes are its own ids, not concepts
    rows = read_phrasings(DEFAULT_PHRASINGS.with_name("vocab_lists.jsonl"))
    assert len(rows) >= 1300 and len({c for c, _ in rows}) >= 220
    assert len(set(rows)) == len(rows)  # no line twice (case variants of a dataset label are kept)
    owner = {}
    assert all(owner.setdefault(t.lower(), c) == c for c, t in rows)  # one class per text
