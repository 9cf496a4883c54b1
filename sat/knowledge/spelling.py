"""Typing slips in prompt words: one letter added, dropped, changed or two swapped.

"pancrease", "oesophogus", "glutæus", "lumbarised", "amygdalae" and "vertebrae sacrales" are all one
edit away from a word of the tree's terms. :class:`SpellingIndex` maps such a word to the one
vocabulary word at Damerau-Levenshtein distance 1, with three guards, because a wrong correction
is worse than none:

- only alphabetic words of at least :data:`MIN_LETTERS` letters are corrected (short words and
  abbreviations have too many neighbours);
- a word that is itself English (any WordNet 3.0 lemma: "carpus", "pallium", "truck", "dimple") is
  never corrected, so a real word is not turned into its neighbour ("carpus" into "corpus");
- the neighbour must be unique; two at distance 1 mean no correction.

The resolver's ``spelling`` stage (:mod:`sat.knowledge.lexical_stages`) then accepts a correction
only when the corrected words name exactly one concept. Lookups use the symmetric-deletion trick:
every vocabulary word is filed under itself and each of its one-letter deletions, so the
neighbours of a word are found among the entries of its own deletions, then checked exactly.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable

from sat.knowledge.thesaurus import wordnet_dir

MIN_LETTERS = 5
_MEMO_LIMIT = 1 << 16


def one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one insertion, deletion, substitution or swap
    of two adjacent letters."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        return (a[i + 1:] == b[i + 1:]
                or (i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]))
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return short[i:] == long_[i + 1:]


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


class SpellingIndex:
    """Corrections of slips into a vocabulary.

    Args:
        vocabulary: the words to correct into (say, every normalised word of a tree's terms);
            only alphabetic words of 4+ letters are targets.
        known: words that are never corrected (English words); empty to guard by length alone.
    """

    def __init__(self, vocabulary: Iterable[str], known: frozenset[str] = frozenset()) -> None:
        self.vocabulary = frozenset(vocabulary)
        self.known = known
        self._filed: dict[str, set[str]] = {}
        self._memo: dict[str, str | None] = {}
        for w in self.vocabulary:
            if len(w) >= MIN_LETTERS - 1 and w.isalpha():
                for key in (w, *_deletions(w)):
                    self._filed.setdefault(key, set()).add(w)

    def correct(self, word: str) -> str | None:
        """The vocabulary word one edit from ``word``; ``word`` itself when it needs no
        correction (known, in the vocabulary, too short or not alphabetic); ``None`` when it is
        unknown and has no unique neighbour."""
        if word in self.vocabulary or word in self.known or len(word) < MIN_LETTERS or not word.isalpha():
            return word
        if word not in self._memo:
            if len(self._memo) >= _MEMO_LIMIT:  # a long-lived server sees unbounded new words
                self._memo.clear()
            near = set(self._filed.get(word, ()))
            for key in _deletions(word):
                near |= self._filed.get(key, set())
            near = {w for w in near if one_edit_apart(word, w)}
            self._memo[word] = next(iter(near)) if len(near) == 1 else None
        return self._memo[word]

    def corrected(self, words: list[str]) -> list[str] | None:
        """``words`` with each slip corrected, or ``None`` when none was corrected or one could
        not be."""
        out = [self.correct(w) for w in words]
        if any(w is None for w in out) or out == words:
            return None
        return out  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Every one-word lemma of WordNet 3.0 (nouns, verbs, adjectives, adverbs; hyphens dropped),
    or an empty set when WordNet is not installed."""
    folder = wordnet_dir()
    if folder is None:
        return frozenset()
    words = set()
    for pos in ("noun", "verb", "adj", "adv"):
        with open(folder / f"index.{pos}", encoding="latin-1") as fh:
            for line in fh:
                if not line.startswith(" "):  # licence header lines start with spaces
                    lemma = line.split(" ", 1)[0]
                    if "_" not in lemma:
                        words.add(lemma.replace("-", ""))
    return frozenset(words)
