"""CheckpointMeta: typed metadata, one migration path, the committed checkpoint still loads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sat.errors import InputError
from sat.knowledge.tree import load_tree
from sat.model.checkpoint import load_checkpoint
from sat.model.checkpoint_meta import VERSION, CheckpointMeta, migrate

REAL = Path(__file__).resolve().parents[2] / "outputs" / "real" / "universal.ckpt"


def _raw(path) -> dict:
    return json.loads(torch.load(path, map_location="cpu", weights_only=True)["meta"])


def as_version_1(meta: dict) -> dict:
    """The metadata as sat wrote it before vocabulary snapshots (format 1)."""
    old = {k: v for k, v in meta.items() if k != "vocabulary"}
    return {**old, "format": "sat-checkpoint/1"}


def test_round_trip_and_snapshot(tiny_checkpoint):
    raw = _raw(tiny_checkpoint)
    meta = CheckpointMeta.from_dict(raw, "tiny")
    assert meta.version == VERSION == 2 and meta.format == raw["format"] == "sat-checkpoint/2"
    assert json.loads(json.dumps(meta.to_dict())) == raw
    ids = {c.id for c in meta.vocabulary}
    assert set(meta.trained_concepts) <= ids and {"kidneys", "kidney_right"} <= ids  # groups and mirrors too
    tree = load_tree()
    assert all(tree.get(c.id) == c for c in meta.vocabulary)


def test_version_1_migrates_without_a_snapshot(tiny_checkpoint):
    old = as_version_1(_raw(tiny_checkpoint))
    assert migrate(old, "x")["vocabulary"] is None and old["format"] == "sat-checkpoint/1"  # input untouched
    meta = CheckpointMeta.from_dict(old, "old")
    assert meta.vocabulary is None and meta.version == VERSION and meta.to_dict()["format"] == "sat-checkpoint/2"
    with pytest.raises(InputError, match="newer than this version"):
        migrate({**old, "format": "sat-checkpoint/3"}, "ckpt")


@pytest.mark.skipif(not REAL.is_file(), reason="the committed real-data checkpoint is absent")
def test_committed_real_checkpoint_still_loads():
    """The committed real checkpoint loads in whichever format it was written (format 1 files are
    covered by test_version_1_migrates_without_a_snapshot); a format-2 file carries its snapshot."""
    fmt = _raw(REAL)["format"]
    assert fmt in ("sat-checkpoint/1", "sat-checkpoint/2")
    net, meta = load_checkpoint(REAL)
    assert "mandible" in meta.trained_concepts
    assert (meta.vocabulary is None) == (fmt == "sat-checkpoint/1")
    head = _raw(REAL)["model"]["head"]
    assert (meta.model.head.d_model, meta.model.head.layers) == (head["d_model"], head["layers"])
    assert list(net.concept_ids) == meta.concept_ids
