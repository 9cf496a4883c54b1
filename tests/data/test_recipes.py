"""Every recipe loads, and every concept it maps exists in the knowledge tree."""
from __future__ import annotations

import pytest

from sat.data.recipes import all_recipes, load_recipe, parse_values, recipe_dir, recipe_from_dict
from sat.knowledge.tree import KnowledgeTree

PROJECT_OWNED = {"phantom_msd", "phantom_nnunet", "phantom_totalseg", "totalseg_sample"}
REQUIRED = {"totalsegmentator", "btcv", "amos22_ct", "amos22_mr", "kits23", "lits", "brats2023_gli",
            "acdc", "flare22", "word", "chaos_ct", "abdomenct1k", "ct_org"}


@pytest.fixture(scope="module")
def tree() -> KnowledgeTree:
    return KnowledgeTree.load()


def test_every_recipe_loads_and_maps_only_tree_concepts(tree):
    recipes = all_recipes()
    assert len(recipes) == len(list(recipe_dir().glob("*.yaml")))
    for r in recipes:
        r.validate(tree)  # raises naming the recipe and concept on an unknown id
        assert all(cid in tree for cid in r.concepts), r.name
        assert all(m in ("CT", "MR", "PET") for m in r.channels), r.name
        assert r.license, f"{r.name}: licence note missing"
        assert len(r.spacing) == 3 and min(r.spacing) > 0


def test_public_dataset_coverage():
    public = {r.name: r for r in all_recipes() if r.name not in PROJECT_OWNED}
    assert len(public) >= 15
    assert REQUIRED <= set(public)
    assert sum(n.startswith("msd_task") for n in public) == 10
    for r in public.values():
        assert r.url and r.split_note, r.name
    assert public["brats2023_gli"].channel_names == ["T1n", "T1c", "T2w", "T2f"]
    assert public["amos22_mr"].channels == ["MR"] and public["amos22_mr"].concepts == public["amos22_ct"].concepts


def test_sample_recipe_extends_totalsegmentator():
    sample, full = load_recipe("totalseg_sample"), load_recipe("totalsegmentator")
    assert sample.concepts == full.concepts and len(sample.concepts) == 117
    assert sample.spacing == (3.0, 3.0, 3.0) and sample.source.label == "seg.nii.gz"
    assert full.source.label is None and full.source.masks == "segmentations"


@pytest.mark.parametrize("raw, match", [
    ({"layout": "msd"}, r"recipe: missing field\(s\) \['channels', 'concepts'\]"),
    ({"layout": "weird", "channels": ["CT"], "concepts": {"liver": ["x"]}}, "layout 'weird'"),
    ({"layout": "msd", "channels": ["CT"], "concepts": {"liver": []}}, "maps to no source label"),
    ({"layout": "msd", "channels": ["CT"], "concepts": {"liver": ["x"]}, "colour": 1}, r"unknown field\(s\) \['colour'\]"),
    ({"layout": "msd", "channels": ["CT"], "concepts": {"liver": ["x"]}, "source": {"imgs": 1}},
     r"recipe: source: unknown field\(s\) \['imgs'\]"),
    ({"layout": "generic", "channels": ["CT"], "concepts": {"liver": ["x"]}}, "source.images or source.list"),
    ({"layout": "msd", "channels": ["CT"], "concepts": {"liver": ["x"]}, "labels": {"x": "a..b"}}, "not an integer"),
    ({"layout": "msd", "channels": ["CT"], "concepts": {"liver": ["x"]}, "spacing": [1, 0, 1]}, "spacing"),
])
def test_malformed_recipes_name_the_problem(raw, match):
    with pytest.raises(ValueError, match=match):
        recipe_from_dict({"name": "bad", **raw})


def test_unknown_concept_is_caught_by_the_tree(tree):
    recipe = recipe_from_dict({"name": "x", "layout": "msd", "channels": ["CT"], "concepts": {"livr": ["liver"]}})
    with pytest.raises(ValueError, match="'livr' is not in the knowledge tree"):
        recipe.validate(tree)


def test_label_value_forms_and_bad_yaml(tmp_path):
    assert parse_values("a", 3) == [3] and parse_values("a", [1, "2"]) == [1, 2]
    assert parse_values("a", "55..57") == [55, 56, 57]
    (tmp_path / "broken.yaml").write_text("name: broken\nnotes: `x`\n")
    with pytest.raises(ValueError, match="invalid YAML"):
        load_recipe(tmp_path / "broken.yaml")
    with pytest.raises(FileNotFoundError):
        load_recipe("no_such_recipe")
