"""Each resolver stage alone, on a small hand-made tree (no encoder, no torch): the stages of
:mod:`sat.knowledge.resolver_stages`, :mod:`sat.knowledge.lexical_stages` and
:mod:`sat.knowledge.sides`."""
from __future__ import annotations

import pytest

from sat.knowledge import lexical_stages as stages
from sat.knowledge.agreement import agreeing_first, agreement_keys, concept_keys
from sat.knowledge.lexical_stages import LEXICAL_STAGES, LexicalContext, first_lexical, lookup
from sat.knowledge.prompt_parse import parse_prompt
from sat.knowledge.resolver_stages import (MAX_PROMPT_CHARS, MAX_SUGGESTIONS, PLACEHOLDERS, embedding_query,
                                           narrowed, refusal, screen)
from sat.knowledge.sides import enforce_laterality, unsided
from sat.knowledge.thesaurus import Thesaurus
from sat.knowledge.tree import Concept, KnowledgeTree


def _c(cid: str, name: str, kind: str = "organ", **kw) -> Concept:
    return Concept(cid, name, "d", "abdomen", kind, **kw)


TREE = KnowledgeTree([
    _c("kidneys", "kidneys", "group"),
    _c("kidney_left", "left kidney", is_a=("kidneys",), laterality="left", mirror="kidney_right"),
    _c("kidney_right", "right kidney", is_a=("kidneys",), laterality="right", mirror="kidney_left"),
    _c("fibula", "fibula", "bone", synonyms=("calf bone",)),
    _c("fibula_left", "left fibula", "bone", is_a=("fibula",), laterality="left", mirror="fibula_right"),
    _c("fibula_right", "right fibula", "bone", is_a=("fibula",), laterality="right", mirror="fibula_left"),
    _c("liver", "liver"),
    _c("liver_segment_4", "liver segment 4", "substructure", part_of=("liver",)),
    _c("liver_segment_6", "liver segment 6", "substructure", part_of=("liver",)),
    _c("spleen", "spleen"),
    _c("parotid_gland", "parotid gland", "gland"),
    _c("gastroduodenal_artery", "gastroduodenal artery", "vessel"),
    _c("duodenal_papilla", "duodenal papilla", "substructure"),
    _c("hepatic_vein", "hepatic vein", "vessel"),
    _c("hemiazygos_vein", "hemiazygos vein", "vessel"),
    _c("colon", "colon"),
])


def _ctx(thesaurus: Thesaurus | None = None) -> LexicalContext:
    return LexicalContext.for_tree(TREE, thesaurus)


def _lookup(text: str, ctx: LexicalContext | None = None) -> stages.Lookup:
    return lookup(text, parse_prompt(text[:MAX_PROMPT_CHARS]), (ctx or _ctx()).lexicon)


def test_lexical_stages_run_in_one_documented_order():
    assert [name for name, _ in LEXICAL_STAGES] == [
        "terms", "english", "organ", "core", "kind", "noun", "locator", "initials", "sided", "thesaurus",
        "latin", "spelling"]


@pytest.mark.parametrize("text,reason", [
    ("", "empty prompt"), ("   ", "empty prompt"), ("?!...", "names no anatomy"),
    ("x" * (MAX_PROMPT_CHARS + 1), f"longer than {MAX_PROMPT_CHARS} characters"),
])
def test_screen_refuses_what_cannot_name_anatomy(text, reason):
    assert reason in screen(text, parse_prompt(text[:MAX_PROMPT_CHARS]))


def test_screen_passes_a_prompt_with_anatomy():
    assert screen("liver on CT", parse_prompt("liver on CT")) == ""


@pytest.mark.parametrize("text", ["N/A", "n/a", " NA ", "None", "null", "NaN", "TBD", "not applicable", "unknown"])
def test_screen_refuses_placeholders_of_a_missing_value(text):
    assert "placeholder for a missing value" in screen(text, parse_prompt(text))


def test_no_tree_term_is_a_placeholder():
    """Refusing a placeholder never refuses a name the project's tree holds."""
    from sat.knowledge.normalize import tokens
    from sat.knowledge.tree import load_tree

    clash = [(c.id, term) for c in load_tree(None).concepts.values() for term in (c.id.replace("_", " "), *c.terms)
             if " ".join(tokens(term)) in PLACEHOLDERS]
    assert clash == []


@pytest.mark.parametrize("stage,text,hit", [
    (stages.by_terms, "kidney, left", ("kidney_left", "exact")),
    (stages.by_terms, "Kidney Left", ("kidney_left", "exact")),
    (stages.by_english, "glandula parotidea", ("parotid_gland", "lexical")),
    (stages.by_organ, "hepatic segment IV", ("liver_segment_4", "lexical")),
    (stages.by_core, "splenic tissue", ("spleen", "lexical")),
    (stages.by_initials, "GDA", ("gastroduodenal_artery", "lexical")),
    (stages.by_side, "left calf bone", ("fibula_left", "lexical")),
    (stages.by_side, "Rt calf bone", ("fibula_right", "lexical")),
])
def test_each_lexical_stage_finds_its_own_kind_of_wording(stage, text, hit):
    ctx = _ctx()
    assert stage(_lookup(text, ctx), ctx) == hit
    # and it is the first stage that does
    assert first_lexical(_lookup(text, ctx), ctx) == (
        next(n for n, s in LEXICAL_STAGES if s is stage), hit)


@pytest.mark.parametrize("stage,text", [
    (stages.by_terms, "glandula parotidea"),
    (stages.by_english, "liver"),  # nothing to translate
    (stages.by_organ, "splenic tissue"),  # an organ reading, but no term without the core
    (stages.by_core, "liver"),  # no generic noun to drop
    (stages.by_initials, "HV"),  # two concepts share the initials
    (stages.by_side, "left colon"),  # the colon has no sides
    (stages.by_side, "calf bone"),  # no side written
])
def test_a_stage_passes_what_is_not_its_own(stage, text):
    ctx = _ctx()
    assert stage(_lookup(text, ctx), ctx) is None


def test_ambiguous_initials_narrow_the_embedding_to_their_concepts():
    q = _lookup("HV")
    assert q.candidates == ("hemiazygos_vein", "hepatic_vein")
    eq = embedding_query(q)
    assert (eq.candidates, eq.method) == (("hemiazygos_vein", "hepatic_vein"), "lexical")


def test_thesaurus_stage_decides_on_one_rewrite_and_narrows_on_several():
    ctx = _ctx(Thesaurus([("zorp bone", "calf bone"), ("blorp", "liver", "spleen")]))
    assert stages.by_thesaurus(_lookup("zorp bone", ctx), ctx) == ("fibula", "thesaurus")
    q = _lookup("blorp", ctx)
    assert stages.by_thesaurus(q, ctx) is None and q.rewrites == ("liver", "spleen")
    eq = embedding_query(q)
    assert (eq.candidates, eq.method) == (("liver", "spleen"), "thesaurus")
    assert stages.by_thesaurus(_lookup("zorp bone"), _ctx(None)) is None  # no thesaurus, no stage


def test_embedding_query_readings_and_agreement_keys():
    # the anatomy as written, its English reading, its core; no repeats
    eq = embedding_query(_lookup("glandula parotidea tissue"))
    assert eq.readings == ("glandula parotidea tissue", "gland parotid tissue", "glandula parotidea")
    assert embedding_query(_lookup("liver")).readings == ("liver",)
    assert embedding_query(_lookup("cord piece C6")).keys == agreement_keys(["cord", "piece", "c6"])
    # a sentence is not a name: no agreement asked of it
    long = embedding_query(_lookup("the small thing near the front of the big round organ in the belly"))
    assert long.keys == (frozenset(), frozenset())
    # and the whole sentence is embedded too, since the parse may cut its content
    text = "The lower, narrowing part of the stomach leading to the pyloric canal in the abdomen."
    assert embedding_query(_lookup(text)).readings[-1] == text


def test_narrowed_takes_the_most_similar_allowed_candidate_first_on_ties():
    assert narrowed({"liver": 0.2, "spleen": 0.7}, ("liver", "spleen")) == ("spleen", 0.7)
    assert narrowed({"liver": 0.5, "spleen": 0.5}, ("liver", "spleen")) == ("liver", 0.5)


def test_agreement_moves_the_candidate_naming_the_number_first():
    ranked = [("liver_segment_4", 0.9), ("liver_segment_6", 0.8), ("liver", 0.7)]
    known = concept_keys(TREE)
    assert agreeing_first(ranked, agreement_keys(["segment", "6"]), known, TREE, 0.5)[0] == ("liver_segment_6", 0.8)
    # below the threshold a candidate is never promoted
    assert agreeing_first(ranked, agreement_keys(["segment", "6"]), known, TREE, 0.85) == ranked
    assert agreeing_first(ranked, agreement_keys(["liver"]), known, TREE, 0.5) == ranked


def test_refusal_names_the_threshold_and_suggests_at_most_five():
    ranked = [(cid, 0.5 - i / 100) for i, cid in enumerate(TREE.concepts)]
    reason, suggestions = refusal(ranked, 0.6, TREE)
    assert reason == "no concept is close enough (best 0.50 < threshold 0.60)"
    assert len(suggestions) == MAX_SUGGESTIONS
    assert suggestions[0] == {"concept": "kidneys", "name": "kidneys", "score": 0.5}


@pytest.mark.parametrize("cid,side,want", [
    ("kidney_left", "right", "kidney_right"),  # mirror
    ("kidneys", "left", "kidney_left"),  # lateral child
    ("kidney_left", "both", "kidneys"),  # bilateral parent
    ("kidney_left", "left", "kidney_left"), ("kidney_left", None, "kidney_left"),
    ("liver", "left", "liver"),  # no side to move to
])
def test_enforce_laterality(cid, side, want):
    assert enforce_laterality(TREE, cid, side) == want


def test_the_resolver_runs_the_module_stage_list(monkeypatch):
    torch = pytest.importorskip("torch")
    from sat.knowledge.resolver import Resolver

    ids = list(TREE.concepts)
    emb = torch.eye(len(ids))
    r = Resolver(TREE, ids, emb, lambda texts: emb[[ids.index("spleen")] * len(texts)], 0.5)
    assert (r.resolve("kidney, left").stage, r.resolve("left calf bone").stage) == ("terms", "sided")
    monkeypatch.setattr(stages, "LEXICAL_STAGES", ())  # no lexical stage: the encoder decides
    res = r.resolve("kidney, left")
    assert (res.concept, res.method, res.stage) == ("spleen", "embedding", "")


def test_concept_keys_are_computed_per_concept_on_demand():
    known = concept_keys(TREE)
    assert len(known) == 0  # nothing computed before a lookup
    assert {"6"} <= known["liver_segment_6"] and "liver_segment_6" in known and len(known) == 1
    with pytest.raises(KeyError, match="no_such_concept"):
        known["no_such_concept"]


LATIN_TREE = KnowledgeTree([
    _c("mitral_valve", "mitral valve", "substructure"),
    _c("anal_canal", "anal canal", "substructure"),
    _c("transverse_colon", "transverse colon", "organ"),
])


@pytest.mark.parametrize("text,cid", [
    ("valva mitralis", "mitral_valve"), ("canalis analis on T2 MRI", "anal_canal"),
    ("contour of the colon transversum", "transverse_colon"),
])
def test_latin_stage_reads_endings(text, cid):
    ctx = LexicalContext.for_tree(LATIN_TREE)
    q = _lookup(text, ctx)
    assert stages.by_latin(q, ctx) == (cid, "lexical")
    assert first_lexical(q, ctx)[1] == (cid, "lexical")


KIND_TREE = KnowledgeTree([
    _c("gracilis", "gracilis", "muscle"),
    _c("sacrum", "sacrum", "bone"),
    _c("tibialis", "tibialis", "muscle"),
])


@pytest.mark.parametrize("text,hit", [
    ("gracilis muscle", ("gracilis", "lexical")), ("musculus gracilis on T2 MRI", ("gracilis", "lexical")),
    ("sacrum bone", ("sacrum", "lexical")),
    ("tibialis bone", None),  # the rest names a muscle, not a bone
    ("gracilis muscle bone", None),  # two kinds
])
def test_kind_stage_drops_a_kind_word_of_the_right_kind(text, hit):
    ctx = LexicalContext.for_tree(KIND_TREE)
    assert stages.by_kind(_lookup(text, ctx), ctx) == hit


def test_spelling_stage_reads_the_corrected_words_through_the_other_stages():
    ctx = LexicalContext.for_tree(KIND_TREE)
    q = _lookup("musculus gracilsi", ctx)  # a swap, and a kind word
    assert first_lexical(q, ctx) == ("spelling", ("gracilis", "lexical"))


def test_organ_stage_reads_organ_adjectives_of_the_terms_too():
    tree = KnowledgeTree([_c("renal_cortex", "renal cortex", "substructure"),
                          _c("renal_medulla", "renal medulla", "substructure")])
    ctx = LexicalContext.for_tree(tree)
    for text, cid in (("kidney cortex", "renal_cortex"), ("medulla of kidney on CT", "renal_medulla")):
        q = _lookup(text, ctx)
        assert stages.by_organ(q, ctx) == (cid, "lexical")
    assert "cortex kidney" in ctx.lexicon.organ_bags and "cortex renal" not in ctx.lexicon.organ_bags


SPELLING_TREE = KnowledgeTree([
    _c("pancreas", "pancreas"),
    _c("esophagus", "esophagus", synonyms=("oesophagus",)),
    _c("sacral_spine", "sacral spine", "group", synonyms=("sacral vertebrae",)),
    _c("trunk", "trunk", "group"),
])


@pytest.mark.parametrize("text,cid", [
    ("pancrease", "pancreas"), ("segment the oesophogus on CT", "esophagus"),
    ("sacrl vertebrae", "sacral_spine"),
])
def test_spelling_stage_resolves_slips(text, cid):
    ctx = LexicalContext.for_tree(SPELLING_TREE)
    q = _lookup(text, ctx)
    assert stages.by_spelling(q, ctx) == (cid, "lexical")
    assert first_lexical(q, ctx) == ("spelling", (cid, "lexical"))


def test_spelling_stage_leaves_english_words_alone():
    from sat.knowledge.spelling import english_words

    if not english_words():
        pytest.skip("WordNet data not installed")
    ctx = LexicalContext.for_tree(SPELLING_TREE)
    q = _lookup("truck", ctx)  # one edit from "trunk", but English
    assert stages.by_spelling(q, ctx) is None



def _resolver_scoring(scores: dict[str, float], threshold: float = 0.5):
    """A resolver whose encoder scores every text with ``scores`` per concept (others 0)."""
    torch = pytest.importorskip("torch")
    from sat.knowledge.resolver import Resolver

    ids = list(TREE.concepts)
    emb = torch.eye(len(ids))
    row = torch.tensor([scores.get(c, 0.0) for c in ids])
    return Resolver(TREE, ids, emb, lambda texts: row.expand(len(texts), -1), threshold)


def test_a_prompt_without_a_side_gets_the_concept_holding_both_sides():
    # one side's terms may sit nearest ("right kidney" for "bean organ"), but no side was asked for
    r = _resolver_scoring({"kidney_right": 0.9, "kidney_left": 0.8, "kidneys": 0.7})
    res = r.resolve("bean organ")
    assert (res.concept, res.score, res.method) == ("kidneys", 0.7, "embedding")
    assert r.resolve("bean organ, left").concept == "kidney_left"  # a written side wins
    assert r.resolve("R bean organ").concept == "kidney_right"  # so does a side code
    assert r.resolve("bean organ both sides").concept == "kidneys"


def test_the_side_stays_when_the_pair_is_not_close_enough():
    r = _resolver_scoring({"kidney_right": 0.9, "kidneys": 0.4})
    assert r.resolve("bean organ").concept == "kidney_right"


@pytest.mark.parametrize("text,cid", [
    ("bean organ", "kidneys"), ("L1 rib", "kidney_right"), ("RUL", "kidney_right"), ("LMB", "kidney_right"),
    ("R8", "kidney_right"), ("liver", "liver"),
])
def test_unsided_keeps_a_side_code(text, cid):
    best = "liver" if text == "liver" else "kidney_right"
    assert unsided(TREE, best, text, lambda c: 0.8, 0.5) == cid


SIDED_TREE = KnowledgeTree([
    _c("internal_iliac_arteries", "internal iliac arteries", "group", synonyms=("internal iliac artery",)),
    _c("internal_iliac_artery_left", "left internal iliac artery", "vessel", is_a=("internal_iliac_arteries",),
       laterality="left", mirror="internal_iliac_artery_right"),
    _c("internal_iliac_artery_right", "right internal iliac artery", "vessel", is_a=("internal_iliac_arteries",),
       laterality="right", mirror="internal_iliac_artery_left"),
    _c("inferior_vena_cava", "inferior vena cava", "vessel"),
])


def test_initials_beside_a_side_word_name_that_side():
    ctx = LexicalContext.for_tree(SIDED_TREE)
    q = lookup("right IIA", parse_prompt("right IIA"), ctx.lexicon)
    assert (q.key, q.candidates) == ("iia", ("internal_iliac_arteries",))
    # a concept without that side is no candidate: "left IVC" stays free text
    q = lookup("left IVC", parse_prompt("left IVC"), ctx.lexicon)
    assert (q.key, q.candidates) == (None, ())


NOUN_TREE = KnowledgeTree([
    _c("azygos_vein", "azygos vein", "vessel"),
    _c("nasalis_muscle", "nasalis muscle", "muscle"),
    _c("navicular_bone", "navicular bone", "bone"), _c("navicular_ligament", "navicular ligament", "substructure"),
])


@pytest.mark.parametrize("text,hit", [
    ("azygos", ("azygos_vein", "lexical")), ("the nasalis", ("nasalis_muscle", "lexical")),
    ("navicular", None),  # two head nouns complete it: not decided here
    ("azygos arch", None),  # one word only
])
def test_noun_stage_completes_a_one_word_name(text, hit):
    ctx = LexicalContext.for_tree(NOUN_TREE)
    assert stages.by_head_noun(lookup(text, parse_prompt(text), ctx.lexicon), ctx) == hit


LOCATED_TREE = KnowledgeTree([
    _c("acl", "anterior cruciate ligament of knee joint", "substructure"),
    _c("capitulum_of_humerus", "capitulum of humerus", "substructure"),
    _c("head_of_femur", "head of femur", "substructure"), _c("head_of_radius", "head of radius", "substructure"),
    _c("body_of_sphenoid", "body of sphenoid", "substructure", synonyms=("Entire body of sphenoid bone",)),
    _c("body_of_stomach", "body of stomach", "substructure"),
])


@pytest.mark.parametrize("text,hit", [
    ("anterior cruciate ligament", ("acl", "lexical")), ("capitulum", ("capitulum_of_humerus", "lexical")),
    ("head", None),  # two concepts locate a head
    ("entire body", None),  # SNOMED CT's "Entire ..." names no part
])
def test_locator_stage_adds_the_one_of_phrase_a_term_has(text, hit):
    ctx = LexicalContext.for_tree(LOCATED_TREE)
    assert stages.by_locator(lookup(text, parse_prompt(text), ctx.lexicon), ctx) == hit
