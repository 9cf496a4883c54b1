"""English readings of Latin and structure-name prompts; abbreviations with compound initials."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from sat import knowledge
from sat.knowledge.glossary import english, split_camel
from sat.knowledge.lexicon import LexicalIndex, abbreviation_key, compact_key, initials
from sat.knowledge.prompt_parse import parse_prompt
from sat.knowledge.resolver import Resolver
from sat.knowledge.tree import KnowledgeTree


@pytest.mark.parametrize("text, plain", [
    ("arteria hepatica communis", "common hepatic artery"), ("glandula parotidea", "parotid gland"),
    ("mediastinum posterius", "posterior mediastinum"), ("pulmo dexter", "right lung"),
    ("OpticNrv_L", "optic nerve l"), ("BuccalMucosa", "buccal mucosa"),
    ("left kidney", "left kidney"), ("lumbar vertebrae", "lumbar vertebra"),
])
def test_english_readings(text, plain):
    assert english(text) == plain


def test_camel_case_split_spares_abbreviations():
    assert split_camel("TemporalLobe_L") == "Temporal Lobe_L"
    assert [split_camel(t) for t in ("pNET", "LCx", "IVb", "IVC")] == ["pNET", "LCx", "IVb", "IVC"]
    assert parse_prompt("TemporalLobe_L on T2 MRI").anatomy == "temporal lobe l"


def test_trailing_segment_is_anatomy_but_leading_segment_is_a_verb():
    assert parse_prompt("right anterior inferior segment").anatomy == "right anterior inferior segment"
    assert parse_prompt("segment the liver").anatomy == "liver"
    assert parse_prompt("liver region seen on ultrasound").anatomy == "liver"


def test_compact_key_ignores_spacing_and_hyphens_but_not_order():
    assert compact_key("rib cage") == compact_key("ribcage") == compact_key("Rib-Cage")
    assert compact_key("ilio-psoas") == compact_key("iliopsoas")
    assert compact_key("left kidney") != compact_key("kidney left")


def test_english_reading_only_for_short_changed_terms():
    from sat.knowledge.glossary import english_reading

    assert english_reading("arteria carotis communis") == "common carotid artery"
    assert english_reading("kidney, left") is None  # nothing to rewrite
    assert english_reading("the vein formed behind the joint, ending in the superior vena cava") is None


def test_organ_reading_names_the_organ():
    from sat.knowledge.glossary import organ_reading

    assert organ_reading("hepatic segment IVb") == "liver segment ivb"
    assert organ_reading("renal cyst") == "kidney cyst"
    assert organ_reading("liver") is None


def test_compound_initials_and_abbreviation_keys():
    assert initials("gastroduodenal artery", {"duodenal"}) == {"ga", "gda"}
    assert initials("liver", {"liver"}) == set()
    assert abbreviation_key("contour of the IVC", "ivc") == "ivc"
    assert abbreviation_key("HVs on CT", "hvs") == "hv"
    assert abbreviation_key("LCx", "lcx") == "lcx"
    assert abbreviation_key("contour of the ivc", "ivc") is None  # lower case: a word, not initials
    assert abbreviation_key("liver", "liver") is None


def _without_synonyms(tree: KnowledgeTree, ids: tuple[str, ...]) -> KnowledgeTree:
    """``tree`` with the synonyms of ``ids`` dropped (so only readings and initials can match)."""
    return KnowledgeTree([dataclasses.replace(c, synonyms=()) if c.id in ids else c
                          for c in tree.concepts.values()], tree.hash + "-test")


def test_resolver_reads_latin_camel_case_and_initials_without_embeddings():
    tree = _without_synonyms(knowledge.default_tree(), ("parotid_glands", "gastroduodenal_artery",
                                                        "buccal_mucosa", "liver_segment_4b"))

    def fail(*_):
        raise AssertionError("embeddings used for a prompt the lexicon can decide")

    r = Resolver(tree, None, None, encode=fail, load_terms=fail)
    got = {t: r.resolve(t) for t in ("glandula parotidea", "BuccalMucosa on CT",
                                     "contour of the GDA", "hepatic segment IVb on CT")}
    assert {t: x.concept for t, x in got.items()} == {
        "glandula parotidea": "parotid_glands", "BuccalMucosa on CT": "buccal_mucosa",
        "contour of the GDA": "gastroduodenal_artery", "hepatic segment IVb on CT": "liver_segment_4b"}
    assert all(x.method in ("exact", "lexical") for x in got.values())


def test_ambiguous_initials_narrow_the_embedding_choice_and_are_taken():
    tree = knowledge.default_tree()
    index = LexicalIndex.for_tree(tree)
    key = next(k for k, v in index._initials.items() if len(v) >= 2 and k.isalpha() and len(k) == 3
               and tree.lookup(k) is None)
    allowed = set(index.initials_candidates(key))
    ids = list(tree.concepts)
    outsider = next(c for c in ids if c not in allowed and tree.get(c).laterality == "none")
    emb = torch.eye(len(ids))
    wanted = sorted(allowed)[-1]
    # the prompt looks most like an outsider, then like one of the candidates
    vec = emb[ids.index(outsider)] + 0.9 * emb[ids.index(wanted)]
    r = Resolver(tree, ids, emb, lambda texts: torch.nn.functional.normalize(vec, dim=0).expand(len(texts), -1),
                 threshold=0.99)
    res = r.resolve(f"contour of the {key.upper()}")
    # the initials are the evidence; similarity (0.67, below the threshold) only ranks candidates
    assert res.concept == wanted and res.method == "lexical" and res.score < 0.99


def test_latin_endings_read_into_the_vocabulary_only():
    from sat.knowledge.glossary import latin_endings

    vocab = {"mitral", "valve", "xiphoid", "process", "transverse", "colon", "anal", "canal", "calcarine", "sulcus"}
    assert latin_endings(["valva", "mitralis"], vocab) == ["valve", "mitral"]
    assert latin_endings(["processus", "xiphoideus"], vocab) == ["process", "xiphoid"]
    assert latin_endings(["colon", "transversum"], vocab) == ["colon", "transverse"]
    assert latin_endings(["sulcus", "calcarinus"], vocab) == ["sulcus", "calcarine"]
    assert latin_endings(["canalis", "analis"], vocab) == ["canal", "anal"]
    assert latin_endings(["colon", "valve"], vocab) is None  # nothing to read
    assert latin_endings(["valva", "qwertyus"], vocab) is None  # an ending that reads into no known word


@pytest.mark.parametrize("text, reading", [
    ("C5", "cervical vertebra 5"), ("D6", "thoracic vertebra 6"), ("Th12", "thoracic vertebra 12"),
    ("L4 vertebra", "lumbar vertebra 4"), ("S2 level", "sacral vertebra 2"),
    ("L1 segment", "1 lumbar spinal cord segment"), ("T4 spinal cord segment", "4 thoracic spinal cord segment"),
    ("C5-C6 disc", None), ("right S1", None), ("C5 nerve root", None), ("cervical", None),
])
def test_spine_level_codes_are_spelled_out(text, reading):
    from sat.knowledge.glossary import spine_level, words

    assert spine_level(words(text)) == reading


@pytest.mark.parametrize("text, reading", [
    ("base of proximal phalanx of thumb", "proximal epiphysis of proximal phalanx of manual digit 1"),
    ("3rd toe intermediate phalanx", "pedal digit 3 middle phalanx"),
    ("head of distal phalanx of fourth toe", "distal epiphysis of distal phalanx of pedal digit 4"),
    ("basal epiphysis of phalanx of little finger", "proximal epiphysis of phalanx of manual digit 5"),
    ("base of phalanx of fourth digit of hand", "proximal epiphysis of phalanx of manual digit 4"),
    ("big toe", "pedal digit 1"), ("foot digit 2", "pedal digit 2"), ("liver", None),
])
def test_fingers_and_toes_read_as_numbered_digits(text, reading):
    from sat.knowledge.glossary import digit_reading

    assert digit_reading(text) == reading


@pytest.mark.parametrize("text, plain", [
    ("facies anterior prostatae", "prostate anterior surface"), ("tuberculum majus", "greater tubercle"),
    ("epicondylus medialis humeri", "humerus medial epicondyle"), ("orificium ureteris", "ureter orifice"),
    ("teres major", "teres major"),  # English names keep their words
])
def test_more_latin_nouns_and_genitives(text, plain):
    assert english(text) == plain


def test_long_finger_names_still_get_a_reading():
    from sat.knowledge.glossary import english_reading

    text = "basal epiphysis of proximal phalanx of middle finger"  # 8 words: no English reading
    assert english_reading(text) == "proximal epiphysis of proximal phalanx of manual digit 3"
    assert english_reading("the cortex of the left kidney is thin here today") is None


@pytest.mark.parametrize("text, reading", [
    ("A_Mesenteric_S", "superior mesenteric artery"), ("V_Venacava_I", "inferior vena cava"),
    ("V_Portal", "portal vein"), ("Musc_Constrict_I_L", "inferior musc constrict l"),
    ("A_Carotid_L", "carotid artery l"),
    ("A_Aorta", None),  # nothing to spell out
    ("Glnd_Submand_R", None), ("a liver", None), ("segment I", None),  # no one-letter part, or free text
])
def test_tg263_names_spell_out_their_one_letter_parts(text, reading):
    from sat.knowledge.glossary import tg263_reading

    assert tg263_reading(text) == reading


def test_resolver_reads_tg263_vessel_and_level_parts_without_embeddings():
    def fail(*_):
        raise AssertionError("embeddings used for a prompt the lexicon can decide")

    r = Resolver(knowledge.default_tree(), None, None, encode=fail, load_terms=fail)
    # the parse alone reads "A" as an article and "S" as a stray letter: "mesenteric"
    got = {t: r.resolve(t).concept for t in ("A_Mesenteric_S", "A_Pulmonary", "Musc_Constrict_S")}
    assert got == {"A_Mesenteric_S": "superior_mesenteric_artery", "A_Pulmonary": "pulmonary_artery",
                   "Musc_Constrict_S": "superior_pharyngeal_constrictor"}


@pytest.mark.parametrize("text, plain", [
    ("costa secunda sinistra", "left 2 rib"), ("vertebra cervicalis prima", "1 cervical vertebra"),
    ("vertebra lumbalis quinta", "5 lumbar vertebra"),
    ("nona", "nona"),  # an ordinal alone is no number
    ("musculus peroneus tertius", "muscle peroneus tertius"),  # nor in a muscle's name
])
def test_latin_ordinals_read_as_numbers_beside_a_rib_or_vertebra(text, plain):
    assert english(text) == plain
