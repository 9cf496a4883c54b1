"""Per-dataset specialists: one multi-class MONAI BasicUNet per phantom source (softmax, DiceCE).

A specialist sees only its own source, through the same shards, crop sampler and batch size as
the universal model; each crop asks for every annotated concept. Structures nest (the body holds
every organ, a kidney its cyst), so the classes of the exclusive label map are the combinations
of concepts that cover a voxel in the training shards ("body + left kidney + kidney cyst"), and a
concept's probability is the sum over the classes that contain it. Inference uses the universal
model's preprocessing and its restoration to the input grid
(:func:`sat.infer.restore.restore_prompts`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sat.bench.config import PhantomProfile

MAX_CONCEPTS = 20  # bit-coded label lookup of 2**n entries


@dataclass
class ClassPlan:
    """Label-map classes of one source: ``classes[k]`` (a set of concepts) is class ``k + 1``."""

    source: str
    concepts: list[str]  # bit k of a voxel code = concepts[k]
    classes: list[tuple[str, ...]]  # concept combinations seen in training, sorted
    members: dict[str, list[int]]  # concept -> classes (1-based) that contain it

    def lookup(self) -> torch.Tensor:
        """(2**n,) long: voxel bit code -> class (0 background, -1 for combinations never seen)."""
        table = torch.full((2 ** len(self.concepts),), -1, dtype=torch.long)
        table[0] = 0
        for k, combo in enumerate(self.classes):
            table[sum(1 << self.concepts.index(c) for c in combo)] = k + 1
        return table


def plan_classes(source: str, urls: list[str]) -> ClassPlan:
    """The concept combinations that occur in the source's training shards."""
    from sat.data.datamodule import ShardMapDataset

    concepts, combos = None, set()
    for sample in ShardMapDataset(urls):
        names, lut = sample["meta"]["concepts"], sample["lut"]  # lut: (K, n_codes) bool
        concepts = concepts or list(names)
        for code in np.unique(sample["codes"]):
            combo = tuple(sorted(names[k] for k in np.flatnonzero(lut[:, code])))
            if combo:
                combos.add(combo)
    if concepts is None:
        raise ValueError(f"no training samples for {source} in {urls}")
    if len(concepts) > MAX_CONCEPTS:
        raise ValueError(f"{source}: {len(concepts)} concepts; the specialist label code handles <= {MAX_CONCEPTS}")
    classes = sorted(combos)
    members = {c: [k + 1 for k, combo in enumerate(classes) if c in combo] for c in concepts}
    return ClassPlan(source, concepts, classes, members)


def label_maps(batch: dict, plan: ClassPlan, lookup: torch.Tensor) -> torch.Tensor:
    """(B, Q, P, P, P) per-query targets -> (B, 1, P, P, P) long class maps."""
    target = batch["target"]
    out = torch.zeros((target.shape[0], 1, *target.shape[2:]), dtype=torch.long)
    for b, ids in enumerate(batch["concepts"]):
        missing = [c for c in plan.concepts if c not in ids]
        assert not missing, f"crop lacks queries {missing}: specialist sampling must ask every concept"
        bits = sum(target[b, ids.index(c)].long() << k for k, c in enumerate(plan.concepts))  # (P, P, P)
        out[b, 0] = lookup[bits]
    assert bool((out >= 0).all()), "a crop holds a concept combination absent from the training shards"
    return out


def build_net(profile: PhantomProfile, n_classes: int) -> torch.nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=3, in_channels=1, out_channels=n_classes + 1,
                     features=tuple(profile.specialist_features))


def train_specialist(profile: PhantomProfile, source: str, shards: Path, base: dict, seed: int
                     ) -> tuple[torch.nn.Module, ClassPlan, dict]:
    """Train the specialist of ``source`` for ``profile.specialist_steps`` steps.

    Args:
        base: the parsed ``base_config`` experiment (crop sampling, weight decay and gradient
            clipping as in the universal run).

    Returns:
        ``(net in eval mode, class plan, {"steps", "train_s", "seed"})``.
    """
    from monai.losses import DiceCELoss

    from sat.data.datamodule import ShardDataModule, expand_urls
    from sat.data.sampling import SamplingConfig
    from sat.train.optim import param_groups, warmup_cosine

    torch.set_num_threads(profile.threads)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    pattern = str(shards / f"{source}-train-*.tar")
    plan = plan_classes(source, expand_urls(pattern))
    data, steps = base.get("data", {}), profile.specialist_steps
    n, lookup = len(plan.concepts), plan.lookup()
    sampling = SamplingConfig(patch_size=tuple(profile.patch_size),
                              foreground_prob=float(data.get("sampling", {}).get("foreground_prob", 0.8)),
                              max_queries=4 * n, negative_ratio=float(n))  # every annotated concept (+ groups)
    dm = ShardDataModule({source: pattern}, sampling=sampling, batch_size=profile.batch_size,
                         num_workers=profile.loader_workers, steps_per_epoch=steps,
                         shuffle_buffer=int(data.get("shuffle_buffer", 8)),
                         crops_per_case=int(data.get("crops_per_case", 2)), seed=seed)
    net = build_net(profile, len(plan.classes)).train()
    wd = float(base.get("model", {}).get("optim", {}).get("weight_decay", 1e-4))
    opt = torch.optim.AdamW(param_groups(net, lr=profile.lr, weight_decay=wd))  # the universal run's groups
    sched = warmup_cosine(opt, warmup_steps=min(profile.warmup_steps, steps // 2), total_steps=max(steps, 1))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    clip = float(base.get("trainer", {}).get("gradient_clip_val") or 0.0)
    bf16 = profile.precision == "bf16-mixed"
    done = 0
    while done < steps:
        for batch in dm.train_dataloader():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = net(batch["image"])  # (B, C + 1, P, P, P)
            loss = loss_fn(logits.float(), label_maps(batch, plan, lookup))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            sched.step()
            done += 1
            if done >= steps:
                break
    return net.eval(), plan, {"steps": done, "train_s": time.perf_counter() - t0, "seed": seed}


@torch.no_grad()
def predict(net: torch.nn.Module, plan: ClassPlan, volume, modality: str, concepts: list[str],
            spacing: tuple[float, ...], patch: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Masks of ``concepts`` on ``volume``'s own grid: concept id -> (X, Y, Z) bool."""
    from monai.inferers import sliding_window_inference

    from sat.volume.preprocess import PreprocessSpec, preprocess_case
    from sat.infer.restore import restore_prompts
    from sat.knowledge.tree import load_tree

    pre = preprocess_case(volume.array, volume.affine, modality, PreprocessSpec(spacing=tuple(spacing)), crop=True)
    image = torch.from_numpy(pre["image"])[None]  # (1, 1, x, y, z)
    logits = sliding_window_inference(image, tuple(patch), 2, net, overlap=0.25, mode="gaussian")
    prob = torch.softmax(logits, dim=1)[0]  # (K + 1, x, y, z)
    known = [c for c in concepts if c in plan.members]
    per = torch.stack([prob[plan.members[c]].sum(0) for c in known]) if known else prob[:0]  # (k, x, y, z)
    tree = load_tree()
    restored = restore_prompts(per, pre["affine"], volume, [tree.get(c).laterality for c in known])
    return {c: r.mask for c, r in zip(known, restored)}


def evaluate_specialist(net: torch.nn.Module, plan: ClassPlan, phantoms: Path, spacing: tuple[float, ...],
                        patch: tuple[int, ...]) -> list[dict]:
    """Rows ``dataset, case, concept, style, prompt, resolved, dice, nsd`` on the source's held-out cases."""
    from sat.bench.phantom_cases import held_out_cases, score

    rows = []
    for case in held_out_cases(phantoms, (plan.source,)):
        masks = predict(net, plan, case.volume, case.modality, case.concepts, spacing, patch)
        for k, cid in enumerate(case.concepts):
            rows.append({"dataset": case.dataset, "case": case.case_id, "concept": cid, "style": "label",
                         "prompt": None, "resolved": cid if cid in masks else None,
                         **score(masks.get(cid), case.masks[k], case.volume)})
    return rows
