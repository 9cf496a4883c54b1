"""SNOMED CT codes of DICOM-SEG segments (sat.io.snomed)."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from sat.io.snomed import ABNORMAL, ANATOMY, PRIVATE, SIDES, TABLE, code_meanings, segment_codes, write_table
from sat.knowledge.tree import load_tree
from sat.resources import shared_dir

TOTALSEG = (shared_dir() or Path("../shared")) / "ontologies" / "totalsegmentator_snomed_mapping.csv"


def test_codes_from_the_tree_with_side_modifier_and_lesion_region():
    tree = load_tree()
    liver = segment_codes("liver", "liver", tree)
    assert liver.category == ANATOMY and liver.type == ("SCT", "10200004", "Liver") and liver.modifier is None
    right = segment_codes("kidney_right", "right kidney", tree)
    assert right.type[1] == tree.get("kidney_right").snomed and right.modifier == SIDES["right"]
    assert "right" not in right.type[2].lower()  # the side is the modifier, not part of the type
    tumour = segment_codes("liver_tumor", "liver tumour", tree)
    assert tumour.category == ABNORMAL and tumour.region == liver.type


def test_concepts_without_a_code_stay_private():
    tree = load_tree()
    uncoded = next(c for c in tree.concepts.values() if not c.snomed and c.laterality == "none")
    assert segment_codes(uncoded.id, uncoded.name, tree).type == (PRIVATE, uncoded.id[:16], uncoded.name[:64])
    assert segment_codes("my_label", "my label", None).type == (PRIVATE, "my_label", "my label")


@pytest.mark.skipif(not TOTALSEG.is_file(), reason="../shared/ontologies is absent")
def test_shipped_table_is_what_the_reference_gives(tmp_path):
    out = tmp_path / "meanings.csv"
    assert write_table(TOTALSEG, out) == len(code_meanings()) > 100
    assert out.read_text(encoding="utf-8") == files("sat.io").joinpath(TABLE).read_text(encoding="utf-8")
