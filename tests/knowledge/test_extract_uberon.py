"""The UBERON extractor on a tiny OBO release (the JSON release needs the dev-only packages)."""
from __future__ import annotations

from sat.knowledge.extract_uberon import Extraction, snake_id
from sat.knowledge.ontology import merge, read_obo
from sat.knowledge.tree import Concept, KnowledgeTree

OBO = """format-version: 1.2

[Term]
id: UBERON:0000061
name: anatomical structure

[Term]
id: UBERON:0001981
name: blood vessel
is_a: UBERON:0000061 ! anatomical structure

[Term]
id: UBERON:0001637
name: artery
is_a: UBERON:0001981 ! blood vessel

[Term]
id: UBERON:0000947
name: aorta
synonym: "arteria maxima" EXACT LATIN []
synonym: "great artery" RELATED []
xref: SCTID:15825003
xref: FMA:3734
is_a: UBERON:0001637 ! artery

[Term]
id: UBERON:0001532
name: internal carotid artery
def: "An artery that supplies the brain." [FMA:1]
synonym: "ICA" EXACT ABBREVIATION []
synonym: "arteria carotis interna" EXACT LATIN []
synonym: "accessory lamina of pallidum" RELATED []
xref: SCTID:86117002
xref: FMA:3947
is_a: UBERON:0001637 ! artery

[Term]
id: UBERON:0009999
name: fin ray artery
def: "An artery of the fish fin." []
is_a: UBERON:0001637 ! artery

[Term]
id: UBERON:2000001
name: opercular artery
is_a: UBERON:0001637 ! artery
"""


def _curated() -> KnowledgeTree:
    return KnowledgeTree([Concept("aorta", "aorta", "The aorta.", "thorax", "vessel"),
                          Concept("arteries", "arteries", "All arteries.", "whole_body", "group",
                                  synonyms=("artery",))])


def test_obo_reader_keeps_synonym_fields_relations_and_codes(tmp_path):
    f = tmp_path / "u.obo"
    f.write_text(OBO, encoding="utf-8")
    terms = read_obo(f)
    ica = terms["UBERON:0001532"]
    assert ica.abbreviations == ["ICA"] and ica.latin == ["arteria carotis interna"]
    assert ica.snomed == "86117002" and ica.human and ica.is_a == ["UBERON:0001637"]
    assert terms["UBERON:0000947"].latin == ["arteria maxima"]


def test_extraction_maps_curated_selects_human_classes_and_places_them(tmp_path):
    f = tmp_path / "u.obo"
    f.write_text(OBO, encoding="utf-8")
    terms = merge({}, read_obo(f))
    ex = Extraction(terms, _curated(), {})
    ex.map_curated()
    assert ex.uberon_of == {"aorta": "UBERON:0000947", "arteries": "UBERON:0001637"}
    chosen = [t.label for t in ex.select(10)]
    # human classes first; fish classes and the non-core UBERON ranges are left out
    assert chosen == ["internal carotid artery", "blood vessel"]
    c = ex.concept(terms["UBERON:0001532"])
    assert (c["id"], c["uberon"], c["snomed"], c["kind"]) == ("internal_carotid_artery", "UBERON:0001532",
                                                             "86117002", "vessel")
    assert c["abbreviations"] == ["ICA"] and c["latin"] == ["arteria carotis interna"]
    assert "related" not in c  # an unrelated "related" name is dropped
    assert c["is_a"] == ["arteries"]
    ext = ex.extension("aorta")
    assert ext["uberon"] == "UBERON:0000947" and ext["snomed"] == "15825003"
    assert ext["latin"] == ["arteria maxima"] and ext["related"] == ["great artery"]


def test_snake_id_is_ascii_and_keeps_plurals():
    assert snake_id("Teres major muscle") == "teres_major_muscle"
    assert snake_id("Müller's muscle") == "muller_s_muscle"
