"""A model's vocabulary snapshot laid over a grown tree (sat.knowledge.vocabulary)."""
from __future__ import annotations

import pytest

from sat.knowledge.tree import Concept, KnowledgeTree
from sat.knowledge.vocabulary import concept_from_record, concept_record, overlay, snapshot, snapshot_ids


def _c(cid, name, **kw) -> Concept:
    return Concept(id=cid, name=name, definition="d", region="abdomen", kind=kw.pop("kind", "organ"), **kw)


OLD = KnowledgeTree([
    _c("kidneys", "kidneys", kind="group"),
    _c("kidney_left", "left kidney", synonyms=("lk",), laterality="left", mirror="kidney_right", part_of=("kidneys",)),
    _c("kidney_right", "right kidney", laterality="right", mirror="kidney_left", part_of=("kidneys",)),
    _c("liver", "liver", synonyms=("hepar",)),
    _c("spleen", "spleen"),
], "old")


def test_snapshot_keeps_trained_concepts_mirrors_and_groups():
    assert snapshot_ids(OLD, ["kidney_left", "liver", "not_in_tree"]) == ["kidney_left", "kidney_right", "kidneys",
                                                                          "liver"]
    records = snapshot(OLD, ["liver"])
    assert records == [concept_record(OLD.get("liver"))] and records[0]["synonyms"] == ["hepar"]
    assert concept_from_record(records[0], "x") == OLD.get("liver")


@pytest.mark.parametrize("bad, match", [([], "must be a mapping"), ({"id": "a"}, "lacks"),
                                        ({**concept_record(OLD.get("liver")), "shell": 1}, "unknown fields"),
                                        ({**concept_record(OLD.get("liver")), "synonyms": "hepar"}, "list of strings")])
def test_bad_records_name_the_problem(bad, match):
    with pytest.raises(ValueError, match=match):
        concept_from_record(bad, "ckpt")


def test_overlay_answers_old_terms_the_old_way():
    vocabulary = [OLD.get(c) for c in snapshot_ids(OLD, ["liver", "kidney_left"])]
    grown = KnowledgeTree([
        _c("graft", "liver graft", synonyms=("hepar", "graft")),  # a new concept that claims an old term
        _c("liver", "hepatic organ", synonyms=("hepar", "new liver term")),  # renamed, new synonym
        *[OLD.get(c) for c in ("kidneys", "kidney_left", "kidney_right", "spleen")],
        _c("appendix", "appendix"),
    ], "new")
    assert grown.lookup("hepar").id == "graft"  # without the snapshot the old term changes its answer
    tree = overlay(grown, vocabulary)
    assert tree.hash.startswith("new+") and tree.hash != grown.hash
    assert tree.lookup("hepar").id == "liver" and tree.lookup("liver").id == "liver"
    assert tree.get("liver").name == "liver"  # the name it was trained with
    assert tree.lookup("new liver term").id == tree.lookup("hepatic organ").id == "liver"  # new terms for it
    assert "hepar" not in tree.get("graft").synonyms and tree.lookup("graft").id == "graft"
    assert tree.lookup("appendix").id == "appendix"  # only the new tree knows it: still resolves
    assert tree.mirror("kidney_left").id == "kidney_right" and "kidney_left" in tree.children("kidneys")
    assert overlay(OLD, vocabulary) is OLD  # nothing changed: the tree itself
