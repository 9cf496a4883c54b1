"""Held-out split hygiene, the contrastive loss and threshold picking."""
from __future__ import annotations

import torch

from sat import knowledge
from sat.knowledge.normalize import normalize
from sat.text.calibrate import pick_threshold
from sat.text.contrastive import multi_positive_infonce
from sat.text.corpus import concept_texts
from sat.text.negatives import CALIB_NEGATIVES, EVAL_NEGATIVES
from sat.text.pretrain_data import KnowledgeBatches
from sat.text.queries import TEMPLATES, held_out_queries
from sat.text.splits import SplitConfig, split_tree, train_view


def test_split_is_deterministic_and_never_trained_on():
    tree = knowledge.default_tree()
    cfg = SplitConfig(seed=0)
    split = split_tree(tree, cfg)
    assert split == split_tree(tree, cfg)
    assert split != split_tree(tree, SplitConfig(seed=1))
    train = {normalize(t) for texts in concept_texts(tree, split).values() for t in texts}
    for role in ("eval", "calib"):
        queries = held_out_queries(tree, split, role, cfg)
        held = [q for q in queries if q.category in ("synonym", "description")]
        assert len(held) > 300
        assert not [q.text for q in held if normalize(q.text) in train]
    view = train_view(tree, split, cfg.seed)
    assert view.hash != tree.hash
    eval_syns = {s for cs in split.values() for s in cs.terms("eval")}
    assert not eval_syns & {t for c in view.concepts.values() for t in c.terms}


def test_negative_lists_are_disjoint_and_large():
    assert len(EVAL_NEGATIVES) >= 100 and len(set(EVAL_NEGATIVES)) == len(EVAL_NEGATIVES)
    assert not {normalize(t) for t in EVAL_NEGATIVES} & {normalize(t) for t in CALIB_NEGATIVES}
    assert not set(TEMPLATES["eval"]) & set(TEMPLATES["calib"])


def test_batches_put_mirrors_and_siblings_together():
    tree = knowledge.default_tree()
    texts = concept_texts(tree, split_tree(tree))
    batch_texts, labels = next(iter(KnowledgeBatches(texts, tree, groups=16, per_group=3, steps=1)))
    ids = sorted(texts)
    present = {ids[i] for i in labels.tolist()}
    lateral = [c for c in present if tree.get(c).mirror]
    # anchors bring their mirror; siblings drawn alongside may not, so at least one pair must be whole
    assert lateral and any(tree.get(c).mirror in present for c in lateral)
    assert len(batch_texts) == len(labels) and len(present) == 16


def test_infonce_prefers_grouped_embeddings():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    good = torch.nn.functional.normalize(torch.eye(3)[labels] + 0.05 * torch.randn(6, 3), dim=1)
    bad = torch.nn.functional.normalize(torch.randn(6, 3), dim=1)
    lg, lb = multi_positive_infonce(good, labels), multi_positive_infonce(bad, labels)
    assert lg["loss"] < lb["loss"] and lg["pos_sim"] > lg["neg_sim"]
    single = multi_positive_infonce(good[[0, 2, 4]], torch.tensor([0, 1, 2]))
    assert single["loss"] == 0  # no anchor has a positive


def test_pick_threshold_separates():
    t, acc, ref = pick_threshold([0.8, 0.9, 0.7, 1.0], [0.2, 0.4, 0.3])
    assert 0.4 < t < 0.7 and acc == ref == 1.0
    t, acc, ref = pick_threshold([0.5, 0.9], [0.6, 0.1])
    assert min(acc, ref) == 0.5
