"""The resolver's lexical stages: exact, reworded and abbreviated matches against the tree's terms.

:data:`LEXICAL_STAGES` holds them in order; the first that names one concept decides
(:func:`first_lexical`), before any embedding. Each stage is a small named function that takes a
:class:`Lookup` (what the stages share about one prompt, built by :func:`lookup`) and a
:class:`StageContext` (the tree, its :class:`~sat.knowledge.lexicon.LexicalIndex` and a
thesaurus; a ``Resolver`` is one) and returns ``(concept id, method)`` or ``None``, so each can be
called and tested alone. The pipeline around them is described in
:mod:`sat.knowledge.resolver_stages`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sat.knowledge.glossary import english_reading, latin_endings, organ_reading, tg263_reading
from sat.knowledge.lexicon import LexicalIndex, abbreviation_key, bag_key, canonical_token
from sat.knowledge.normalize import tokens
from sat.knowledge.prompt_parse import ParsedPrompt, parse_prompt
from sat.knowledge.sides import enforce_laterality
from sat.knowledge.thesaurus import Thesaurus
from sat.knowledge.tree import KnowledgeTree

# Words that say what kind of structure a name is ("gracilis muscle", "musculus obturator
# internus", "sacrum bone"): the ``kind`` stage drops them when the rest names a concept of that kind.
KIND_WORDS = {"muscle": "muscle", "musculus": "muscle", "musculi": "muscle", "bone": "bone", "os": "bone",
              "ossis": "bone", "ossa": "bone", "gland": "gland", "glandula": "gland", "glandulae": "gland"}

# Head nouns a one-word name may leave out (the ``noun`` stage).
HEAD_NOUNS = ("muscle", "bone", "vein", "artery", "nerve", "joint", "gland", "ligament", "cartilage",
              "sinus", "lobe", "duct")

Hit = tuple[str, str]  # (concept id, method: exact | lexical | thesaurus)


class StageContext(Protocol):
    """What the lexical stages read."""

    tree: KnowledgeTree
    lexicon: LexicalIndex

    @property
    def thesaurus(self) -> Thesaurus | None: ...


@dataclass
class LexicalContext:
    """A plain :class:`StageContext`, for running lexical stages without a ``Resolver``."""

    tree: KnowledgeTree
    lexicon: LexicalIndex
    thesaurus: Thesaurus | None = None

    @classmethod
    def for_tree(cls, tree: KnowledgeTree, thesaurus: Thesaurus | None = None) -> LexicalContext:
        """The context of ``tree``, the thesaurus restricted to the tree's words."""
        lexicon = LexicalIndex.for_tree(tree)
        return cls(tree, lexicon, thesaurus.restricted(lexicon.words) if thesaurus is not None else None)


@dataclass
class Lookup:
    """What the lexical stages share about one prompt."""

    raw: str
    p: ParsedPrompt
    words: list[str]  # normalised tokens of the anatomy
    plain: str | None  # English reading of the anatomy (of a TG-263 name, its parts spelled out), if it differs
    key: str | None  # abbreviation key, if the anatomy is written as one
    candidates: tuple[str, ...] = ()  # concepts whose initials are the key
    rewrites: tuple[str, ...] = ()  # concepts named by thesaurus rewrites (set by ``thesaurus``)


def lookup(raw: str, p: ParsedPrompt, lexicon: LexicalIndex) -> Lookup:
    """The shared keys of a screened prompt: its anatomy's words, English reading (of the whole
    prompt when it is a TG-263 name) and initials (of the anatomy, or of its one word beside a side
    word: "right IIA")."""
    key = abbreviation_key(raw, p.anatomy)
    candidates = lexicon.initials_candidates(key) if key else ()
    if key is None and p.laterality in ("left", "right"):  # "right IIA": concepts with that side
        rest = [w for w in p.anatomy.split() if canonical_token(w) not in ("left", "right")]
        key = abbreviation_key(raw, rest[0]) if len(rest) == 1 else None
        candidates = tuple(c for c in (lexicon.initials_candidates(key) if key else ())
                           if lexicon.tree.get(enforce_laterality(lexicon.tree, c, p.laterality)).laterality
                           == p.laterality)
        key = key if candidates else None
    code = tg263_reading(raw)  # "A_Mesenteric_S": one-letter parts the parse takes for words
    plain = (english_reading(code) or code) if code else english_reading(p.anatomy)
    return Lookup(raw, p, tokens(p.anatomy), plain, key, candidates)


def by_terms(q: Lookup, ctx: StageContext) -> Hit | None:
    """A term of the tree: the whole prompt, then its anatomy (exact, order-free, compact)."""
    cid, method = ctx.lexicon.match(q.raw, q.p.anatomy)
    return (cid, method) if cid else None


def by_english(q: Lookup, ctx: StageContext) -> Hit | None:
    """The anatomy read in plain English (Latin, structure-name abbreviations)."""
    cid = ctx.lexicon.match_bag(q.plain) if q.plain else None
    return (cid, "lexical") if cid else None


def by_organ(q: Lookup, ctx: StageContext) -> Hit | None:
    """Organ adjectives as nouns, in the prompt ("hepatic segment IVb" = "liver segment 4b") and
    in the terms ("kidney cortex", "medulla of kidney" = renal cortex, renal medulla)."""
    organ = organ_reading(q.p.anatomy)
    cid = ctx.lexicon.match_bag(organ) if organ else None
    cid = cid or ctx.lexicon.organ_bags.get(bag_key(organ or q.p.anatomy))
    return (cid, "lexical") if cid else None


def by_core(q: Lookup, ctx: StageContext) -> Hit | None:
    """The anatomy without a trailing generic noun ("splenic tissue" = spleen), read as is,
    in English and with organ adjectives as nouns."""
    core = q.p.core
    if not core:
        return None
    for text in (core, english_reading(core), organ_reading(core)):
        cid = ctx.lexicon.match_bag(text) if text else None
        if cid:
            return cid, "lexical"
    return None


def by_kind(q: Lookup, ctx: StageContext) -> Hit | None:
    """The anatomy without its kind word (:data:`KIND_WORDS`), when the rest names a concept of
    that kind ("fibularis longus muscle" = fibularis longus; "tibialis bone" names nothing)."""
    kinds = {KIND_WORDS[w] for w in q.words if w in KIND_WORDS}
    rest = [w for w in q.words if w not in KIND_WORDS]
    if len(kinds) != 1 or not rest:
        return None
    cid = ctx.lexicon.match_words(rest)
    return (cid, "lexical") if cid and ctx.tree.get(cid).kind in kinds else None


def by_head_noun(q: Lookup, ctx: StageContext) -> Hit | None:
    """A one-word name that leaves out its head noun ("azygos" = azygos vein, "nasalis" = nasalis
    muscle), when exactly one of :data:`HEAD_NOUNS` completes it to a term."""
    if len(q.words) != 1:
        return None
    found = {cid for noun in HEAD_NOUNS if (cid := ctx.lexicon.match_words([q.words[0], noun]))}
    return (found.pop(), "lexical") if len(found) == 1 else None


def by_locator(q: Lookup, ctx: StageContext) -> Hit | None:
    """A name without its "of ..." locator, when one concept alone has a term that adds one
    ("anterior cruciate ligament" = anterior cruciate ligament of knee joint)."""
    cid = ctx.lexicon.located.get(bag_key(q.p.anatomy)) if q.words else None
    return (cid, "lexical") if cid else None


def by_initials(q: Lookup, ctx: StageContext) -> Hit | None:
    """An abbreviation whose initials point to exactly one concept ("GDA")."""
    return (q.candidates[0], "lexical") if len(q.candidates) == 1 else None


def by_side(q: Lookup, ctx: StageContext) -> Hit | None:
    """The side concept named by a side word plus a term of its bilateral or mirror concept
    ("left peroneal bone" = the left fibula). Only a concept that really has that side counts:
    "left colon" is not "colon" on the left."""
    side = q.p.laterality
    if side not in ("left", "right"):
        return None
    words = [w for w in q.words if canonical_token(w) not in ("left", "right")]
    cid = ctx.lexicon.match_words(words) if words else None
    if cid is None:
        return None
    sided = enforce_laterality(ctx.tree, cid, side)
    return (sided, "lexical") if ctx.tree.get(sided).laterality == side else None


def by_thesaurus(q: Lookup, ctx: StageContext) -> Hit | None:
    """Rewrites through the thesaurus that name exactly one concept; several are kept in
    ``q.rewrites`` to narrow the embedding stage."""
    if q.candidates or ctx.thesaurus is None:
        return None
    q.rewrites = rewritten(q.p.anatomy, ctx.thesaurus, ctx.lexicon)
    return (q.rewrites[0], "thesaurus") if len(q.rewrites) == 1 else None


def by_latin(q: Lookup, ctx: StageContext) -> Hit | None:
    """Latin words by their endings, read into words of the tree's terms ("valva mitralis",
    "processus xiphoideus", "colon transversum"), when the reading names one concept."""
    read = latin_endings(q.words, ctx.lexicon.words) if len(q.words) > 1 else None
    cid = ctx.lexicon.match_words(read) if read else None
    return (cid, "lexical") if cid else None


def by_spelling(q: Lookup, ctx: StageContext) -> Hit | None:
    """The anatomy with its one-letter slips corrected (:mod:`sat.knowledge.spelling`:
    "pancrease", "oesophogus", "musculus ishiocavernosus"), read again by the other lexical stages."""
    fixed = " ".join(ctx.lexicon.spelling.corrected(q.words) or ()) if q.words else ""
    if not fixed:
        return None
    others = tuple(named for named in LEXICAL_STAGES if named[1] is not by_spelling)
    found = first_lexical(lookup(fixed, parse_prompt(fixed), ctx.lexicon), ctx, others)
    return (found[1][0], "lexical") if found else None


LexicalStage = Callable[[Lookup, StageContext], "Hit | None"]
# The lexical stages, in order.
LEXICAL_STAGES: tuple[tuple[str, LexicalStage], ...] = (
    ("terms", by_terms), ("english", by_english), ("organ", by_organ), ("core", by_core),
    ("kind", by_kind), ("noun", by_head_noun), ("locator", by_locator), ("initials", by_initials),
    ("sided", by_side), ("thesaurus", by_thesaurus), ("latin", by_latin), ("spelling", by_spelling))


def first_lexical(q: Lookup, ctx: StageContext,
                  stages: tuple[tuple[str, LexicalStage], ...] | None = None) -> tuple[str, Hit] | None:
    """``(stage name, hit)`` of the first of ``stages`` (default: :data:`LEXICAL_STAGES` as the
    module holds it when called) that names a concept, or ``None``."""
    for name, stage in LEXICAL_STAGES if stages is None else stages:
        hit = stage(q, ctx)
        if hit is not None:
            return name, hit
    return None


def rewritten(anatomy: str, thesaurus: Thesaurus, lexicon: LexicalIndex) -> tuple[str, ...]:
    """Concepts that a thesaurus rewrite of ``anatomy`` names exactly, sorted."""
    found = set()
    for variant in thesaurus.rewrites(anatomy):  # already normalised
        cid = lexicon.match_words(variant.split())
        if cid is not None:
            found.add(cid)
    return tuple(sorted(found))
