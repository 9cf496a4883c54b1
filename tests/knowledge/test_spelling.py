"""One-letter slips corrected into the tree's words, and the guards against wrong corrections."""
from __future__ import annotations

import pytest

from sat.knowledge.prompt_parse import parse_prompt
from sat.knowledge.resolver_stages import LexicalContext, by_spelling, first_lexical, lookup
from sat.knowledge.spelling import SpellingIndex, english_words, one_edit_apart
from sat.knowledge.tree import Concept, KnowledgeTree


@pytest.mark.parametrize("a,b,near", [
    ("pancrease", "pancreas", True),   # one added
    ("pancras", "pancreas", True),     # one dropped
    ("esophogus", "esophagus", True),  # one changed
    ("kindey", "kidney", True),        # two swapped
    ("kidney", "kidney", False),       # equal
    ("kidny", "kidneys", False),       # two apart
    ("spleen", "sleep", False),
])
def test_one_edit_apart(a, b, near):
    assert one_edit_apart(a, b) is near and one_edit_apart(b, a) is near


def test_index_corrects_a_slip_to_its_unique_neighbour_only():
    index = SpellingIndex(["pancreas", "kidney", "corpus", "colon", "femur", "femora"], known=frozenset({"carpus"}))
    assert index.correct("pancrease") == "pancreas"
    assert index.correct("kindey") == "kidney"
    assert index.correct("pancreas") == "pancreas"  # already a vocabulary word
    assert index.correct("carpus") == "carpus"  # an English word is never corrected
    assert index.correct("colm") == "colm"  # fewer than MIN_LETTERS letters: left as written
    assert index.correct("femurs") == "femur"
    assert index.correct("zzzzzzz") is None  # unknown, no neighbour
    assert index.corrected(["pancrease", "head"]) == ["pancreas", "head"]
    assert index.corrected(["pancreas"]) is None  # nothing corrected
    assert index.corrected(["pancrease", "zzzzzzz"]) is None  # one word beyond repair


def test_two_neighbours_mean_no_correction():
    index = SpellingIndex(["ileum", "ilium"])
    assert index.correct("ilxum") is None


def test_english_words_guard_real_words():
    words = english_words()
    if not words:
        pytest.skip("WordNet data not installed")
    assert {"carpus", "pallium", "truck", "dimple", "hearing"} <= words
    assert "pancrease" not in words and "oesophogus" not in words


TREE = KnowledgeTree([
    Concept("pancreas", "pancreas", "d", "abdomen", "organ"),
    Concept("esophagus", "esophagus", "d", "thorax", "organ", synonyms=("oesophagus",)),
    Concept("sacral_spine", "sacral spine", "d", "spine", "group", synonyms=("sacral vertebrae",)),
    Concept("trunk", "trunk", "d", "whole_body", "group"),
])


@pytest.mark.parametrize("text,cid", [
    ("pancrease", "pancreas"), ("segment the oesophogus on CT", "esophagus"),
    ("sacrl vertebrae", "sacral_spine"),
])
def test_spelling_stage_resolves_slips(text, cid):
    ctx = LexicalContext.for_tree(TREE)
    q = lookup(text, parse_prompt(text), ctx.lexicon)
    assert by_spelling(q, ctx) == (cid, "lexical")
    assert first_lexical(q, ctx) == ("spelling", (cid, "lexical"))


def test_spelling_stage_leaves_english_words_alone():
    if not english_words():
        pytest.skip("WordNet data not installed")
    ctx = LexicalContext.for_tree(TREE)
    q = lookup("truck", parse_prompt("truck"), ctx.lexicon)  # one edit from "trunk", but English
    assert by_spelling(q, ctx) is None

