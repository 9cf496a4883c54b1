"""The resolver's stages around the lexical ones, and the order of all of them.

Each stage is a small named function that can be called and tested alone; the lexical stages
are in :mod:`sat.knowledge.lexical_stages`, the laterality rules in :mod:`sat.knowledge.sides`.

:meth:`sat.knowledge.resolver.Resolver.resolve_many` runs them in this order:

1. ``parse`` (:func:`sat.knowledge.prompt_parse.parse_prompt`): qualifiers cut out, the anatomy left.
2. ``screen`` (:func:`screen`): empty, over-long or letterless prompts, and placeholders of a
   missing value ("N/A", "none", "TBD"), are refused.
3. ``lookup`` (:func:`~sat.knowledge.lexical_stages.lookup`): the keys the lexical stages share
   (English reading, initials).
4. the lexical stages of :data:`~sat.knowledge.lexical_stages.LEXICAL_STAGES`, in order; the
   first that names one concept decides: ``terms``, ``english``, ``organ``, ``core``, ``kind``,
   ``noun``, ``locator``, ``initials``, ``sided``, ``thesaurus``, ``latin``, ``spelling``.
5. ``readings`` (:func:`embedding_query`): what to embed, the candidates an ambiguous
   abbreviation or several thesaurus rewrites allow, and the words a candidate must agree on.
6. ``embedding`` (batched over the prompts, in the resolver): best term similarity per concept.
7. ``narrow`` (:func:`narrowed`): with allowed candidates, the most similar of them wins.
8. ``agreement`` (:func:`sat.knowledge.agreement.agreeing_first`): otherwise the best candidate
   above the threshold naming the prompt's codes, numbers and direction words comes first.
9. ``unsided`` (:func:`~sat.knowledge.sides.unsided`): a prompt that names no side and no side
   code gets the concept holding both sides rather than one side of it, when that concept reaches
   the threshold.
10. ``threshold``: the first candidate is accepted at or above the threshold, else
   :func:`refusal` gives the reason and suggestions.
11. ``laterality`` (:func:`~sat.knowledge.sides.enforce_laterality`): the side written in the
    text always wins, for every accepted concept, lexical or embedded.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sat.knowledge.agreement import NO_KEYS, Keys, agreement_keys
from sat.knowledge.glossary import english
from sat.knowledge.lexical_stages import Lookup
from sat.knowledge.lexicon import canonical_token
from sat.knowledge.normalize import tokens
from sat.knowledge.prompt_parse import ParsedPrompt
from sat.knowledge.tree import KnowledgeTree

MAX_PROMPT_CHARS = 512
MAX_SUGGESTIONS = 5
# Code / number / direction agreement applies to names, not to sentences describing a structure.
MAX_AGREEMENT_WORDS = 8
# What a spreadsheet or a form puts where no value was given (tokens joined by spaces): a batch
# prompt file with such a cell gets a refusal that says so, not the nearest concept ("N/A" was
# answered with the non-coronary aortic sinus). No tree term normalises to one of these
# (tests/knowledge/test_resolver_stages.py checks).
PLACEHOLDERS = frozenset({
    "n a", "na", "n d", "nd", "none", "null", "nil", "nan", "void", "empty", "blank", "unknown", "unk",
    "undefined", "missing", "not applicable", "not available", "not given", "not specified",
    "unspecified", "tbd", "tba", "todo", "to do", "placeholder", "xxx", "xx", "x",
})


@dataclass(frozen=True)
class EmbeddingQuery:
    """What the embedding stage gets for one prompt: the readings of its anatomy (the best one
    counts) and, for an abbreviation with several expansions or thesaurus rewrites matching
    several concepts, the concepts allowed and the method that found them."""

    readings: tuple[str, ...]
    candidates: tuple[str, ...] = ()
    method: str = "lexical"
    keys: Keys = NO_KEYS  # agreement_keys of the anatomy


# ---------------------------------------------------------------- before the lexical stages
def screen(raw: str, p: ParsedPrompt) -> str:
    """Why ``raw`` (parsed as ``p``) cannot name a concept at all, or ``""`` when it may."""
    if not raw.strip():
        return "empty prompt"
    if len(raw) > MAX_PROMPT_CHARS:
        return f"prompt longer than {MAX_PROMPT_CHARS} characters ({len(raw)})"
    if not tokens(p.anatomy):
        return "prompt names no anatomy (no letters or digits)"
    if " ".join(tokens(raw)) in PLACEHOLDERS:
        return f"{raw.strip()!r} is a placeholder for a missing value, not a structure name"
    return ""


# ---------------------------------------------------------------- after the lexical stages
def embedding_query(q: Lookup) -> EmbeddingQuery:
    """What to embed for a prompt no lexical stage decided: its anatomy, English reading and core
    (and, for a sentence longer than :data:`MAX_AGREEMENT_WORDS` words, the whole text);
    the initials' candidates, else the thesaurus rewrites' ones; the agreement keys of a name
    (not of a sentence longer than :data:`MAX_AGREEMENT_WORDS` words)."""
    p = q.p
    sentence = len(q.words) > MAX_AGREEMENT_WORDS  # a description: the parse may cut its content
    readings = tuple(dict.fromkeys(r for r in (p.anatomy, q.plain, p.core, q.raw if sentence else "") if r))
    method, candidates = "lexical", q.candidates
    if not candidates and q.rewrites:
        candidates, method = q.rewrites, "thesaurus"
    keys = (agreement_keys([canonical_token(w) for w in tokens(english(p.anatomy))])
            if len(q.words) <= MAX_AGREEMENT_WORDS else NO_KEYS)
    return EmbeddingQuery(readings, tuple(candidates), method, keys)


def narrowed(scores: Mapping[str, float], candidates: tuple[str, ...]) -> tuple[str, float]:
    """The most similar of the allowed ``candidates`` (the first on ties) and its score; the
    initials or rewrites already named them, so no threshold applies."""
    best = max(candidates, key=lambda c: scores[c])
    return best, scores[best]


def refusal(ranked: list[tuple[str, float]], threshold: float, tree: KnowledgeTree
            ) -> tuple[str, list[dict]]:
    """``(reason, suggestions)`` when the best of ``ranked`` (best first) is below ``threshold``:
    up to :data:`MAX_SUGGESTIONS` concepts with their names and scores."""
    best = ranked[0][1]
    reason = f"no concept is close enough (best {best:.2f} < threshold {threshold:.2f})"
    return reason, [{"concept": cid, "name": tree.get(cid).name, "score": round(s, 3)}
                    for cid, s in ranked[:MAX_SUGGESTIONS]]
