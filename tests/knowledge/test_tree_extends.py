"""Synonym fields, UBERON / SNOMED CT codes and ``extends:`` entries of the tree files."""
from __future__ import annotations

import re

import pytest

from sat.knowledge.tree import KnowledgeTree, load_tree
from sat.knowledge.validate import validate_tree
from sat.text.splits import SplitConfig, split_tree, train_view

BASE = """defaults: {region: abdomen}
concepts:
  - id: liver
    name: liver
    synonyms: [hepar]
    definition: The liver.
    kind: organ
  - id: spleen
    name: spleen
    definition: The spleen.
    kind: organ
"""


def _tree(tmp_path, extra: str) -> KnowledgeTree:
    (tmp_path / "a.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(extra, encoding="utf-8")
    return KnowledgeTree.load(tmp_path)


def test_extends_adds_terms_and_codes_without_overriding(tmp_path):
    tree = _tree(tmp_path, """extends:
  - {id: liver, latin: [jecur], abbreviations: [LIV], related: [hepatic organ], uberon: "UBERON:0002107", snomed: "10200004"}
  - {id: liver, uberon: "UBERON:9999999", synonyms: [hepar, hepatic parenchyma]}
""")
    c = tree.get("liver")
    assert (c.latin, c.abbreviations, c.related) == (("jecur",), ("LIV",), ("hepatic organ",))
    assert c.synonyms == ("hepar", "hepatic parenchyma")  # appended once, in order
    assert (c.uberon, c.snomed) == ("UBERON:0002107", "10200004")  # the first code stays
    assert c.terms == ("liver", "hepar", "hepatic parenchyma", "LIV", "jecur", "hepatic organ")
    assert tree.lookup("jecur").id == tree.lookup("LIV").id == "liver"
    assert validate_tree(tree) == []


@pytest.mark.parametrize("extra, message", [
    ("extends:\n  - {id: pancreas, latin: [x]}\n", "extends unknown concept id 'pancreas'"),
    ("extends:\n  - {id: liver, colour: red}\n", "extension of 'liver': unknown field(s) ['colour']"),
])
def test_bad_extension_is_named(tmp_path, extra, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _tree(tmp_path, extra)


def test_validate_checks_code_syntax_and_collisions_across_fields(tmp_path):
    tree = _tree(tmp_path, """extends:
  - {id: liver, uberon: "UBERON:12", snomed: "abc"}
  - {id: spleen, latin: [hepar]}
""")
    errors = " | ".join(validate_tree(tree))
    assert "is not UBERON:NNNNNNN" in errors and "not a SNOMED CT concept id" in errors
    assert "term 'hepar' used by both 'liver' and 'spleen'" in errors


def test_split_and_train_view_cover_every_synonym_field():
    tree = load_tree()
    parts = split_tree(tree, SplitConfig(seed=0))
    view = train_view(tree, parts)
    for c in tree.concepts.values():
        assert set(parts[c.id].synonyms) == set(c.all_synonyms)
        held = set(parts[c.id].terms("eval")) | set(parts[c.id].terms("calib"))
        assert not held & set(view.get(c.id).terms)


def test_default_tree_is_large_coded_and_consistent():
    tree = load_tree()
    assert len(tree) >= 3000 and validate_tree(tree) == []
    anatomy = [c for c in tree.concepts.values() if c.kind not in ("lesion", "group")]
    assert sum(bool(c.uberon) for c in anatomy) / len(anatomy) > 0.9
    assert sum(bool(c.snomed) for c in tree.concepts.values()) > 500
    for cid in ("brainstem", "spinal_cord", "parotid_gland_left", "parotid_gland_right", "esophagus", "larynx",
                "mandible", "hippocampus", "hippocampus_anterior", "hippocampus_posterior"):
        assert cid in tree  # ids other subsystems rely on
