"""Fixtures for the agent tests: an allowed root holding one phantom CT, and an in-process Segmenter."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def phantom_ct(tiny_phantoms) -> Path:
    """One phantom CT volume (TotalSegmentator-style case)."""
    return sorted((tiny_phantoms / "phantom_totalseg").glob("*/ct.nii.gz"))[0]


@pytest.fixture(scope="session")
def agent_root(tmp_path_factory, phantom_ct) -> Path:
    """An allowed root with ``ct.nii.gz`` copied in (a link would be a symlink escape)."""
    root = tmp_path_factory.mktemp("agent_root")
    shutil.copy(phantom_ct, root / "ct.nii.gz")
    return root


@pytest.fixture(scope="session")
def term_tables():
    """Build the resolver's term-embedding table (needed by non-exact prompts) once per session, so a
    server subprocess finds it cached instead of building it inside a timed tool call."""
    from sat.knowledge.tree import load_tree
    from sat.text.cache import term_table
    from sat.text.encoder import TextEncoderSpec

    term_table(load_tree(), TextEncoderSpec(), None)


@pytest.fixture(scope="session")
def segmenter(tiny_checkpoint):
    from sat.infer.segmenter import Segmenter

    return Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")
