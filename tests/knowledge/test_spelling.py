"""One-letter slips corrected into the tree's words, and the guards against wrong corrections."""
from __future__ import annotations

import pytest

from sat.knowledge.spelling import SpellingIndex, english_words, one_edit_apart


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

