"""An old checkpoint answers its prompts the same way after the knowledge tree grows."""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from sat.infer.segmenter import Segmenter
from sat.resources import knowledge_tree_dir

GROWN = """
concepts:
  - id: liver_graft
    name: liver graft
    definition: A transplanted liver (test concept the model never learned).
    region: abdomen
    kind: organ
    synonyms: [hepar]
  - id: glorp_gland
    name: glorp gland
    definition: A made-up gland only the grown tree knows.
    region: abdomen
    kind: gland
extends:
  - id: liver
    synonyms: [zzliver]
"""


def _grown_tree(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "tree"
    shutil.copytree(knowledge_tree_dir(), folder)
    (folder / "aaa_grown.yaml").write_text(GROWN, encoding="utf-8")  # read first: its terms come first
    monkeypatch.setenv("SAT_KNOWLEDGE_TREE", str(folder))
    return folder


def _answers(seg: Segmenter, prompts: list[str]) -> dict:
    return {p.prompt: (p.resolution.concept, p.concepts, bool(p.refused)) for p in seg.plan(prompts)}


def test_snapshot_keeps_old_answers_and_refuses_what_was_never_learned(tiny_checkpoint, tmp_path, monkeypatch,
                                                                       caplog):
    prompts = ["hepar", "left kidney", "kidneys", "zzliver", "glorp gland"]
    before = _answers(Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", threads=None), prompts[:3])
    _grown_tree(tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING):
        seg = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", threads=None)
    assert any(r.levelno == logging.WARNING and "knowledge tree changed" in r.getMessage() for r in caplog.records)
    after = _answers(seg, prompts)
    assert {p: after[p] for p in prompts[:3]} == before  # the same prompts, the same answers
    assert after["hepar"][:2] == ("liver", ["liver"])
    assert after["zzliver"][:2] == ("liver", ["liver"])  # a new term for a trained concept resolves
    assert after["glorp gland"][0] == "glorp_gland" and after["glorp gland"][2]  # resolves, then refused


def test_checkpoint_without_snapshot_warns_and_uses_the_current_tree(tiny_checkpoint, tmp_path, monkeypatch,
                                                                     caplog):
    blob = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    meta = {k: v for k, v in json.loads(blob["meta"]).items() if k != "vocabulary"}
    blob["meta"] = json.dumps({**meta, "format": "sat-checkpoint/1"})
    old = tmp_path / "v1.ckpt"
    torch.save(blob, old)
    _grown_tree(tmp_path, monkeypatch)
    with caplog.at_level(logging.WARNING):
        seg = Segmenter.from_checkpoint(old, device="cpu", threads=None)
    assert any("no vocabulary snapshot" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert _answers(seg, ["hepar"])["hepar"][0] == "liver_graft"  # what the snapshot prevents
