"""The built wheel carries the package and its data folders (knowledge tree, configs, recipes)."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"knowledge_tree": "knowledge_tree", "configs": "configs", "data_shards/recipes": "recipes"}


def _files(folder: Path, pattern: str = "*") -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob(pattern)
            if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    tmp = tmp_path_factory.mktemp("wheel")
    extra = tmp / "build.cfg"  # a fresh build folder: ./build may hold modules that no longer exist
    extra.write_text(f"[build]\nbuild_base = {tmp / 'build'}\n", encoding="utf-8")
    env = {**os.environ, "DIST_EXTRA_CONFIG": str(extra), "PIP_NO_INDEX": "1"}
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "-w", str(tmp / "dist"), "--no-deps",
                          "--no-build-isolation", "-q"], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    (built,) = (tmp / "dist").glob("sat_universal-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_carries_every_module_and_package_file(wheel):
    names = set(wheel.namelist())
    modules = {f"sat/{n}" for n in _files(REPO / "sat", "*.py")}
    assert modules - names == set()
    assert {n for n in names if n.endswith(".py")} - modules == set()  # nothing stale from an old build
    tracked = subprocess.run(["git", "ls-files", "sat"], cwd=REPO, capture_output=True, text=True).stdout.split()
    data = {n for n in tracked if not n.endswith(".py") and (REPO / n).is_file()}  # e.g. sat/io/snomed_meanings.csv
    assert data - names == set()


def test_wheel_carries_the_data_folders(wheel):
    names = set(wheel.namelist())
    for src, name in FOLDERS.items():
        expected = {f"sat/_resources/{name}/{n}" for n in _files(REPO / src)}
        assert expected and expected <= names, f"{src}: {sorted(expected - names)[:5]}"
    assert any(n.startswith("sat_universal-") and n.endswith("entry_points.txt") for n in names)
