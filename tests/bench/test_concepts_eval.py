"""`sat concepts eval` machinery on a small sub-tree (stand-in encoder) and the throughput helper."""
from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch import nn

from sat import knowledge
from sat.knowledge.resolver import Resolver
from sat.knowledge.tree import KnowledgeTree
from sat.bench.resolver_speed import throughput, workloads
from sat.text.encoder import TextEncoderSpec
from sat.bench.concepts_eval import evaluate_encoder, render_markdown
from sat.text.splits import SplitConfig

FAMILY = ("kidney", "renal", "lung", "liver", "spleen")


class TrigramEncoder(nn.Module):
    """A cheap stand-in encoder: hashed character trigrams, L2-normalised (deterministic)."""

    dim = 256

    def forward(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), self.dim)
        for i, t in enumerate(texts):
            t = f"  {t.lower()} "
            for j in range(len(t) - 2):
                out[i, hashlib.md5(t[j:j + 3].encode()).digest()[0]] += 1.0
        return F.normalize(out + 1e-6, dim=1)


def _subtree() -> KnowledgeTree:
    full = knowledge.default_tree()
    return KnowledgeTree([c for c in full.concepts.values() if any(f in c.id for f in FAMILY)],
                         f"{full.hash}-eval-subset-trigram")


def test_evaluate_encoder_on_subtree_and_markdown(monkeypatch):
    import sat.text.encoder

    monkeypatch.setattr(sat.text.encoder, "build_text_encoder", lambda spec=None: TrigramEncoder())
    tree = _subtree()
    split = SplitConfig(seed=0, eval_frac=0.3, calib_frac=0.3)
    report = evaluate_encoder(tree, TextEncoderSpec(), "raw MiniLM", split)
    m = report["metrics"]
    assert m["n_queries"] > 20 and m["n_lateral"] > 5 and m["n_negatives"] >= 100
    for key in ("emb_top1", "emb_top5", "resolver_top1", "anatomy_acceptance", "non_anatomy_refusal"):
        assert 0.0 <= m[key] <= 1.0
    assert m["emb_top5"] >= m["emb_top1"]
    assert m["resolver_lr_confusion"] <= m["emb_lr_confusion"] + 1e-9  # text laterality is enforced
    assert report["calibration"]["n_neg"] > 50 and -1.0 <= report["threshold"] <= 1.0001
    md = render_markdown([report], tree, split, "sat concepts eval")
    assert "| raw MiniLM |" in md and "top-1 (resolver)" in md


def test_evaluate_encoder_scores_the_calib_part_on_request(monkeypatch):
    import pytest
    import sat.text.encoder

    monkeypatch.setattr(sat.text.encoder, "build_text_encoder", lambda spec=None: TrigramEncoder())
    tree = _subtree()
    split = SplitConfig(seed=0, eval_frac=0.3, calib_frac=0.3)
    calib = evaluate_encoder(tree, TextEncoderSpec(), "raw MiniLM", split, part="calib")
    held = evaluate_encoder(tree, TextEncoderSpec(), "raw MiniLM", split)
    assert (calib["part"], held["part"]) == ("calib", "eval")
    assert {m["text"] for m in calib["misses"]}.isdisjoint({m["text"] for m in held["misses"]})
    assert "calib part" in render_markdown([calib], tree, split, "sat concepts eval --part calib")
    with pytest.raises(ValueError, match="'train'"):
        evaluate_encoder(tree, TextEncoderSpec(), "raw MiniLM", split, part="train")


def test_evaluate_encoder_adds_phrasing_consistency_and_tree_size(monkeypatch, tmp_path):
    import json

    import sat.text.encoder

    monkeypatch.setattr(sat.text.encoder, "build_text_encoder", lambda spec=None: TrigramEncoder())
    tree = _subtree()
    rows = [("liver", "segmentation of the liver in abdominal CT"), ("liver", "hepatic structure"),
            ("spleen", "spleen in the whole body region"), ("spleen", "splenic tissue (the abdomen)")]
    f = tmp_path / "phrasings.jsonl"
    f.write_text("".join(json.dumps({"class": c, "text": t}) + "\n" for c, t in rows), encoding="utf-8")
    split = SplitConfig(seed=0, eval_frac=0.3, calib_frac=0.3)
    report = evaluate_encoder(tree, TextEncoderSpec(), "raw MiniLM", split, phrasing_file=f)
    assert report["phrasings"]["phrasings"] == 4 and report["phrasings"]["accuracy"] == 1.0
    assert report["metrics"]["phrasing_consistency"] == 1.0
    md = render_markdown([report], tree, split, "sat concepts eval")
    assert "Phrasing consistency" in md and "| raw MiniLM | 1.0000 |" in md
    assert "| all |" in md and f" {len(tree)} |" in md  # tree size by region and kind


def test_throughput_reports_rates():
    tree = knowledge.default_tree()
    ids = list(tree.concepts)
    r = Resolver(tree, ids, torch.eye(len(ids)), lambda t: torch.eye(len(ids))[[0] * len(t)], 0.5)
    loads = workloads(tree, 50)
    assert set(loads) == {"lexical", "embedding", "mixed", "repeated"} and len(loads["lexical"]) == 50
    lex, emb = throughput(r, loads["lexical"]), throughput(r, loads["embedding"])
    assert lex["prompts"] == 50 and lex["prompts_per_s"] > 0
    assert lex["encoded_share"] < 0.2 and emb["encoded_share"] == 1.0
