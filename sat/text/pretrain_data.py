"""Batches for knowledge pretraining: groups of concept texts with hard negatives side by side."""
from __future__ import annotations

import random
from dataclasses import asdict

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from sat.knowledge.tree import KnowledgeTree, load_tree
from sat.text.corpus import concept_texts
from sat.text.negatives import train_negatives
from sat.text.splits import SplitConfig, split_tree


class KnowledgeBatches(IterableDataset):
    """Endless-per-epoch stream of ``(texts, labels)`` batches.

    Each batch holds ``groups`` concepts with up to ``per_group`` texts each. With
    ``hard_negatives`` every randomly drawn concept brings its laterality mirror and one random
    sibling into the same batch, so the loss must tell "left kidney" from "right kidney" and
    "C3 vertebra" from "C4 vertebra".

    Args:
        texts: concept id -> positive texts (:func:`sat.text.corpus.concept_texts`).
        tree: the tree (for mirrors and siblings).
        groups: concepts per batch (>= 2).
        per_group: texts sampled per concept (>= 2).
        steps: batches per epoch.
        seed: base seed; each epoch draws different batches.
        hard_negatives: add mirrors and siblings of drawn concepts.
        background: non-anatomical texts; ``background_per_batch`` of them join each batch with
            unique negative labels (no positives), pushing everyday text away from anatomy.
        background_per_batch: background texts per batch.
    """

    def __init__(self, texts: dict[str, list[str]], tree: KnowledgeTree, *, groups: int = 32,
                 per_group: int = 4, steps: int = 1000, seed: int = 0, hard_negatives: bool = True,
                 background: list[str] | None = None, background_per_batch: int = 0) -> None:
        if groups < 2 or per_group < 2:
            raise ValueError(f"groups and per_group must be >= 2, got {groups} and {per_group}")
        self.texts, self.groups, self.per_group = texts, groups, per_group
        self.steps, self.seed, self.hard = steps, seed, hard_negatives
        self.background = list(background or [])
        self.n_background = min(background_per_batch, len(self.background))
        self.ids = sorted(texts)
        self.label = {cid: i for i, cid in enumerate(self.ids)}
        self.related = {cid: ([tree.get(cid).mirror] if tree.get(cid).mirror in texts else [],
                              [s for s in tree.siblings(cid) if s in texts]) for cid in self.ids}
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def _draw(self, rng: random.Random) -> list[str]:
        chosen: dict[str, None] = {}
        while len(chosen) < min(self.groups, len(self.ids)):
            anchor = rng.choice(self.ids)
            mirror, sibs = self.related[anchor]
            group = [anchor, *mirror, *([rng.choice(sibs)] if sibs else [])] if self.hard else [anchor]
            for cid in group:
                if len(chosen) < self.groups:
                    chosen[cid] = None
        return list(chosen)

    def __iter__(self):
        rng = random.Random(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        for _ in range(self.steps):
            texts, labels = [], []
            for cid in self._draw(rng):
                pool = self.texts[cid]
                pick = rng.sample(pool, min(self.per_group, len(pool)))
                texts += pick
                labels += [self.label[cid]] * len(pick)
            bg = rng.sample(self.background, self.n_background)
            yield texts + bg, torch.tensor(labels + [-1 - i for i in range(len(bg))])


class KnowledgeDataModule(pl.LightningDataModule):
    """Training texts from the knowledge tree, held-out splits removed.

    Args:
        split: which synonyms / definitions are held out (never trained on).
        groups_per_batch: concepts per batch.
        texts_per_group: texts per concept per batch.
        steps_per_epoch: batches per epoch.
        templates_per_concept: prompt-style variants generated per concept.
        hard_negatives: put mirrors and siblings of each drawn concept in the same batch.
        background_per_batch: non-anatomical background texts per batch
            (:func:`sat.text.negatives.train_negatives`); 0 disables them.
        max_concepts: use only the first N concepts (quick tests); ``None`` for all.
        tree_dir: knowledge tree folder; default ``knowledge_tree/`` or ``$SAT_KNOWLEDGE_TREE``.
        seed: batch sampling seed.
    """

    def __init__(self, split: SplitConfig | None = None, groups_per_batch: int = 32,
                 texts_per_group: int = 4, steps_per_epoch: int = 1000,
                 templates_per_concept: int = 3, hard_negatives: bool = True,
                 background_per_batch: int = 16, max_concepts: int | None = None,
                 tree_dir: str | None = None, seed: int = 0) -> None:
        super().__init__()
        self.split_cfg = split or SplitConfig()
        self.groups, self.per_group, self.steps = groups_per_batch, texts_per_group, steps_per_epoch
        self.templates, self.hard, self.max_concepts = templates_per_concept, hard_negatives, max_concepts
        self.n_background = background_per_batch
        self.tree_dir, self.seed = tree_dir, seed
        self.save_hyperparameters({"split": asdict(self.split_cfg)})
        self.tree: KnowledgeTree | None = None

    def setup(self, stage: str | None = None) -> None:
        self.tree = load_tree(self.tree_dir)
        texts = concept_texts(self.tree, split_tree(self.tree, self.split_cfg), seed=self.seed,
                              templates_per_concept=self.templates)
        if self.max_concepts:
            texts = dict(list(texts.items())[: self.max_concepts])
        self.texts = texts
        self.dataset = KnowledgeBatches(texts, self.tree, groups=self.groups, per_group=self.per_group,
                                        steps=self.steps, seed=self.seed, hard_negatives=self.hard,
                                        background=train_negatives(), background_per_batch=self.n_background)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=None, num_workers=0)
