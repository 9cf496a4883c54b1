"""sat.resources: one lookup for the knowledge tree, configs and recipes (env, package, checkout)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sat import resources
from sat.resources import RESOURCES, configs_dir, knowledge_tree_dir, recipes_dir, resource_dir, shipped_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_env(monkeypatch):
    for _, env in RESOURCES.values():
        monkeypatch.delenv(env, raising=False)


def test_checkout_folders_when_not_packaged(no_env):
    assert resources.checkout_root() == REPO
    assert knowledge_tree_dir() == REPO / "knowledge_tree"
    assert configs_dir("model") == REPO / "configs" / "model"
    assert recipes_dir() == REPO / "data_shards" / "recipes"
    assert (knowledge_tree_dir() / "abdomen.yaml").is_file()


def test_environment_variable_wins(no_env, monkeypatch, tmp_path):
    monkeypatch.setenv("SAT_CONFIGS", str(tmp_path))
    assert configs_dir() == tmp_path and configs_dir("model") == tmp_path / "model"
    monkeypatch.setenv("SAT_RECIPES", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="SAT_RECIPES"):
        recipes_dir()


def test_packaged_copy_before_checkout(no_env, monkeypatch, tmp_path):
    (tmp_path / "_resources" / "knowledge_tree").mkdir(parents=True)
    monkeypatch.setattr(resources, "files", lambda package: tmp_path)
    assert knowledge_tree_dir() == tmp_path / "_resources" / "knowledge_tree"
    assert recipes_dir() == REPO / "data_shards" / "recipes"  # not packaged here: the checkout's


def test_unknown_resource_names_itself():
    with pytest.raises(ValueError, match="'models'"):
        resource_dir("models")


def test_shipped_config_paths(no_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a working directory without configs/
    exp = "configs/experiment/phantom_nano.yaml"
    assert shipped_path(exp) == str(REPO / exp)
    assert shipped_path("configs/experiment/nope.yaml") == "configs/experiment/nope.yaml"
    (tmp_path / "configs" / "experiment").mkdir(parents=True)
    (tmp_path / exp).write_text("trainer: {}\n")
    assert shipped_path(exp) == exp  # a file of the working directory comes first


def test_no_module_finds_data_beside_its_own_file():
    """Data folders are found through sat.resources only, never ``Path(__file__).parents[n]``."""
    pattern = re.compile(r"Path\(__file__\)")
    offenders = [str(p.relative_to(REPO)) for p in sorted((REPO / "sat").rglob("*.py"))
                 if p.name != "resources.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
