"""Streaming training data from WebDataset shards, and exactly-once validation data.

Training streams are infinite (``ResampledShards``), mixed across datasets with weights, and the
epoch length is set on the loader (``with_epoch``), so every DDP rank yields the same number of
batches whatever the shard counts: no rank waits for another at epoch end. Shard order and
shuffles are seeded per rank and per worker. An epoch continues the stream where the previous
one stopped (:class:`_Continuing`): restarted, every epoch read the same first cases of a shard.
"""
from __future__ import annotations

import glob
import os
import tarfile
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
import webdataset as wds
from torch.utils.data import Dataset

from sat.data.shard_rules import shard_rules
from sat.data.repeat_factor import case_crops, concept_frequencies, repeat_factors
from sat.data.sampling import SamplingConfig, add_group_concepts, sample_crop
from sat.data.shard_format import decode_case, decode_sample
from sat.model.universal import modality_index


COMMAND_SCHEMES = ("pipe:", "gs://", "s3://")  # WebDataset runs a shell command to open these


def expand_urls(spec: str, allow_pipe: bool = False) -> list[str]:
    """Local globs become sorted file lists; brace patterns and http(s):// pass through.

    ``pipe:``, ``gs://`` and ``s3://`` URLs make WebDataset run a shell command (``pipe:cmd``,
    ``gsutil``, ``aws``); they are refused unless ``allow_pipe`` (``data.allow_pipe``) is set.
    """
    if spec.startswith(COMMAND_SCHEMES) and not allow_pipe:
        raise ValueError(f"shard URL {spec!r} runs a shell command (as in WebDataset); set data.allow_pipe: true "
                         "to allow it")
    if spec.startswith(("http://", "https://", *COMMAND_SCHEMES)):
        return list(wds.shardlists.expand_urls(spec))
    files = sorted(f for part in wds.shardlists.expand_urls(spec) for f in glob.glob(part))
    if not files:
        raise FileNotFoundError(f"no shards match {spec!r}")
    return files


def collate(examples: list[dict]) -> dict:
    """Stack crops and pad queries.

    Returns:
        ``image`` (B, C, P, P, P), ``target`` (B, Q, P, P, P) bool (float32 when any crop has
        soft targets), ``valid`` (B, Q) bool,
        ``concepts`` list of B lists of ids, ``modality`` (B,) long, ``dataset`` list of names.
    """
    q = max(len(e["concepts"]) for e in examples)
    patch = examples[0]["target"].shape[1:]
    soft = any(e["target"].dtype != np.bool_ for e in examples)  # float32 occupancy (soft targets)
    dtype = torch.float32 if soft else torch.bool
    target = torch.zeros((len(examples), q, *patch), dtype=dtype)
    valid = torch.zeros((len(examples), q), dtype=torch.bool)
    for b, e in enumerate(examples):
        n = len(e["concepts"])
        target[b, :n] = torch.from_numpy(e["target"])
        valid[b, :n] = True
    return {"image": torch.from_numpy(np.stack([e["image"] for e in examples])),
            "target": target, "valid": valid, "concepts": [e["concepts"] for e in examples],
            "modality": torch.tensor([modality_index(e["modality"]) for e in examples]),
            "dataset": [e["dataset"] for e in examples]}


class _ToExample:
    """Picklable per-sample transform: decode, add groups, crop, augment (per-worker RNG).

    Masks are expanded only for the crop and only for its queries (see :func:`sample_crop`).
    """

    def __init__(self, cfg: SamplingConfig, groups: dict, mirrors: dict, crops_per_case: int, seed: int,
                 factors: dict[str, float] | None = None):
        self.cfg, self.groups, self.mirrors = cfg, groups, mirrors
        self.crops_per_case, self.seed = crops_per_case, seed
        self.factors = factors or {}  # concept -> repeat factor (sat.data.repeat_factor); {} = uniform
        self.rng: np.random.Generator | None = None

    def _generator(self) -> np.random.Generator:
        if self.rng is None:
            info = torch.utils.data.get_worker_info()
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            self.rng = np.random.default_rng([self.seed, rank, info.id if info else 0])
        return self.rng

    def __call__(self, source):
        rng = self._generator()
        for raw in source:
            case = decode_case(raw)  # code map + lookup table: no per-concept masks yet
            meta = case.meta
            labels = add_group_concepts(case.labels.select(list(meta["annotated"])), self.groups)
            n = self.crops_per_case
            if self.factors:
                n = case_crops([c for c, p in zip(labels.concepts, labels.present) if p], self.factors, n, rng)
            for _ in range(n):
                ex = sample_crop(case.image, labels, self.cfg, rng, self.mirrors, meta.get("image_min"),
                                 center_weights=self.factors)
                ex["image"] = _augment(ex["image"], rng)
                ex.update(modality=meta["modality"], dataset=meta["dataset"])
                yield ex


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Intensity augmentation on a normalised crop: scale, shift, contrast (gamma-like), noise."""
    out = image * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
    if rng.random() < 0.3:
        out = out + rng.normal(0.0, rng.uniform(0.0, 0.1), size=out.shape).astype(np.float32)
    return out.astype(np.float32)


class _Continuing:
    """The training stream as one iterator per process, which every epoch resumes.

    A loader ending each epoch after ``steps_per_epoch`` batches calls ``iter`` on its dataset
    again; rebuilt from its start, a WebDataset pipeline then reads each shard from its first
    samples again, and a short epoch never reaches the rest: with 100 batches per epoch the
    real-patient experiment drew from only about a third of the 160 hippocampus training cases
    and half of the 167 OpenKBP patients. Kept per process (``os.getpid``), a worker builds its own
    stream after a fork and keeps it across epochs (``persistent_workers``).
    """

    def __init__(self, source) -> None:
        self.source, self._stream, self._pid = source, None, None

    def __call__(self):
        if self._stream is None or self._pid != os.getpid():
            self._stream, self._pid = iter(self.source), os.getpid()
        return self._stream


class ShardMapDataset(Dataset):
    """Map-style dataset over shard samples: each sample exactly once (validation / DDP sampler)."""

    def __init__(self, urls: list[str]) -> None:
        self.index: list[tuple[str, dict[str, str]]] = []
        for url in urls:
            groups: dict[str, dict[str, str]] = {}
            with tarfile.open(url) as tf:
                for m in tf.getmembers():
                    key, _, ext = m.name.partition(".")
                    groups.setdefault(key, {})[ext] = m.name
            self.index += [(url, members) for _, members in sorted(groups.items())]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        url, members = self.index[i]
        with tarfile.open(url) as tf:
            raw = {ext: tf.extractfile(name).read() for ext, name in members.items()}
        raw["__key__"] = Path(members["json"]).name.split(".")[0]
        return decode_sample(raw)


class ShardDataModule(L.LightningDataModule):
    """Lightning data module over shard sets.

    Args:
        train: shard URL patterns per dataset name, e.g. ``{"phantom_msd": "data/shards/phantom_msd-train-*.tar"}``.
        weights: sampling weight per dataset (default: 1/sqrt(cases) style equalisation is up to the
            user; missing names get 1.0).
        val: optional shard patterns for exactly-once validation.
        sampling: crop and query sampling. batch_size, num_workers: loader settings.
        steps_per_epoch: batches per epoch on every rank. shuffle_buffer: samples kept for shuffling.
        crops_per_case: crops drawn from each decoded case. seed: base seed.
        pin_memory: page-locked batches, for asynchronous copies to a GPU (see docs/training.md).
        tree_dir: knowledge tree folder (groups and laterality mirrors); default tree if None.
        dataset_sampling: per-dataset overrides of ``sampling`` fields, e.g.
            ``{"msd_task04_hippocampus": {"patch_size": [48, 64, 48]}}``: datasets of very
            different extent (a 35 mm hippocampus crop, a 450 mm head-and-neck CT) each get the
            crop that fits them. Every batch comes from one dataset, so crops in a batch match.
        allow_pipe: accept ``pipe:``, ``gs://`` and ``s3://`` shard URLs, which run shell commands.
    """

    def __init__(self, train: dict[str, str], weights: dict[str, float] | None = None,
                 val: dict[str, str] | None = None, sampling: SamplingConfig | None = None,
                 batch_size: int = 2, num_workers: int = 1, steps_per_epoch: int = 100,
                 shuffle_buffer: int = 8, crops_per_case: int = 2, seed: int = 0,
                 tree_dir: str | None = None, dataset_sampling: dict[str, dict] | None = None,
                 pin_memory: bool = False, allow_pipe: bool = False) -> None:
        super().__init__()
        self.train, self.weights, self.val = train, weights or {}, val or {}
        self.sampling = sampling or SamplingConfig()
        unknown = sorted(set(dataset_sampling or {}) - set(train))
        if unknown:
            raise ValueError(f"dataset_sampling names {unknown}, which are not training datasets {sorted(train)}")
        self.dataset_sampling = {name: replace(self.sampling, **{k: tuple(v) if isinstance(v, list) else v
                                                                 for k, v in over.items()})
                                 for name, over in (dataset_sampling or {}).items()}
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.steps_per_epoch, self.shuffle_buffer = steps_per_epoch, shuffle_buffer
        self.crops_per_case, self.seed, self.tree_dir = crops_per_case, seed, tree_dir
        self.allow_pipe = allow_pipe

    def _tree_maps(self) -> tuple[dict, dict]:
        from sat.knowledge.tree import load_tree

        tree = load_tree(self.tree_dir)
        mirrors = {c.id: c.mirror for c in tree.concepts.values() if c.mirror}
        groups = {c.id: tree.children(c.id) for c in tree.concepts.values() if c.kind == "group"}
        return groups, mirrors

    def sampling_for(self, dataset: str) -> SamplingConfig:
        """The crop and query sampling of one training dataset."""
        return self.dataset_sampling.get(dataset, self.sampling)

    def train_dataloader(self):
        groups, mirrors = self._tree_maps()
        shard_rules(self.train)  # one intensity rule per modality, or a ValueError before any step
        # with per-dataset crops, batches (not samples) are mixed: a batch holds one crop size
        per_source = bool(self.dataset_sampling)
        batching = [wds.shuffle(4 * self.batch_size),
                    wds.batched(self.batch_size, collation_fn=collate, partial=False)]
        sources, probs = [], []
        for name, spec in sorted(self.train.items()):
            cfg, urls = self.sampling_for(name), expand_urls(spec, self.allow_pipe)
            factors = repeat_factors(concept_frequencies(urls), cfg.repeat_threshold,
                                     cfg.repeat_power) if cfg.repeat_threshold > 0 else {}
            to_example = _ToExample(cfg, groups, mirrors, self.crops_per_case, self.seed, factors)
            pipe = wds.DataPipeline(
                wds.ResampledShards(urls, seed=self.seed, deterministic=True),
                wds.tarfile_to_samples(handler=wds.warn_and_continue),
                wds.shuffle(self.shuffle_buffer, initial=self.shuffle_buffer),
                to_example,
                *(batching if per_source else []),
            )
            sources.append(pipe)
            probs.append(float(self.weights.get(name, 1.0)))
        mix = sources[0] if len(sources) == 1 else wds.RandomMix(sources, probs)
        stream = wds.DataPipeline(lambda: iter(mix), *([] if per_source else batching))
        batched = wds.DataPipeline(_Continuing(stream))  # shuffle buffers and shard positions kept across epochs
        loader = wds.WebLoader(batched, batch_size=None, num_workers=self.num_workers,
                               persistent_workers=self.num_workers > 0, pin_memory=self.pin_memory)
        return loader.with_epoch(self.steps_per_epoch)

    def val_dataloader(self):
        if not self.val:
            return []
        urls = [u for spec in self.val.values() for u in expand_urls(spec, self.allow_pipe)]
        return torch.utils.data.DataLoader(ShardMapDataset(urls), batch_size=None,
                                           num_workers=0, collate_fn=lambda x: x)
