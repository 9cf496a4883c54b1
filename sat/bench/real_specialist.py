"""Per-dataset specialists of the real-data benchmark: MONAI DynUNet (nnU-Net style) with one
sigmoid output per structure, trained with the universal model's partial-label loss.

A specialist sees only its own dataset, through the same shards and crop sampler as the
universal model. Each crop asks for every structure its case annotates (positives and
annotated-but-absent negatives); unannotated structures are never supervised, exactly as for the
universal model, because the same :class:`~sat.losses.partial_label.PartialLabelLoss` is applied
to the output channels of the crop's queries.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sat.errors import InputError
from sat.losses.partial_label import LossConfig, PartialLabelLoss


@dataclass
class Specialist:
    """A trained specialist: the network, its output channels and how it was trained."""

    net: torch.nn.Module
    concepts: list[str]  # output channel k = concepts[k]
    spacing: tuple[float, float, float]
    patch: tuple[int, int, int]
    steps: int
    train_s: float
    intensity: dict | None = None  # IntensityRule fields of its shards (None: the modality's default)

    def preprocess(self):
        """The :class:`PreprocessSpec` its shards were built with."""
        from sat.volume.preprocess import IntensityRule, PreprocessSpec

        spec = PreprocessSpec(spacing=self.spacing)
        if self.intensity:
            spec.rules.update({m: IntensityRule(**r) for m, r in self.intensity.items()})
        return spec


def build_dynunet(filters: tuple[int, ...], n_out: int) -> torch.nn.Module:
    """DynUNet with ``len(filters)`` levels, 3x3x3 kernels and stride-2 downsampling."""
    from monai.networks.nets import DynUNet

    levels = len(filters)
    return DynUNet(spatial_dims=3, in_channels=1, out_channels=n_out, kernel_size=[3] * levels,
                   strides=[1] + [2] * (levels - 1), upsample_kernel_size=[2] * (levels - 1),
                   filters=list(filters), norm_name="instance", res_block=True)


def query_logits(logits: torch.Tensor, batch: dict, channel: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather the output channels of each crop's queries.

    Args:
        logits: (B, K, X, Y, Z) one channel per structure. batch: a training batch
            (``concepts``: B lists of query ids, ``valid``: (B, Q) bool).
        channel: concept id -> output channel.

    Returns:
        ``(logits (B, Q, X, Y, Z), valid (B, Q))``; queries without a channel are marked invalid.
    """
    b, q = batch["valid"].shape
    idx = torch.zeros((b, q), dtype=torch.long)
    valid = batch["valid"].clone()
    for i, ids in enumerate(batch["concepts"]):
        for j, cid in enumerate(ids):
            if cid in channel:
                idx[i, j] = channel[cid]
            else:
                valid[i, j] = False
    gathered = torch.gather(logits, 1, idx.view(b, q, 1, 1, 1).expand(b, q, *logits.shape[2:]))
    return gathered, valid


def train_specialist(name: str, pattern: str, concepts: list[str], *, spacing, patch, filters,
                     sampling: dict, loss: LossConfig, batch_size: int, lr: float, weight_decay: float,
                     seconds: float, steps: int, seed: int, loader_workers: int = 1,
                     warmup_steps: int = 50, intensity: dict | None = None) -> Specialist:
    """Train one specialist on dataset ``name`` until ``seconds`` (if > 0) or ``steps`` run out.

    Args:
        pattern: the dataset's training shard pattern. concepts: its structures (output channels).
        sampling: :class:`~sat.data.sampling.SamplingConfig` fields of the universal run.
    """
    from sat.data.datamodule import ShardDataModule
    from sat.data.sampling import SamplingConfig
    from sat.train.optim import param_groups, warmup_cosine

    torch.manual_seed(seed)
    fields = {**sampling, "patch_size": tuple(patch), "max_queries": 4 * len(concepts),
              "negative_ratio": float(len(concepts))}  # every annotated structure in every crop
    dm = ShardDataModule({name: pattern}, sampling=SamplingConfig(**fields), batch_size=batch_size,
                         num_workers=loader_workers, steps_per_epoch=10**9, shuffle_buffer=16,
                         crops_per_case=2, seed=seed)
    net = build_dynunet(tuple(filters), len(concepts)).train()
    opt = torch.optim.AdamW(param_groups(net, lr=lr, weight_decay=weight_decay))
    budget = steps if seconds <= 0 else 10**9
    t0 = time.perf_counter()
    progress = (lambda: (time.perf_counter() - t0) / seconds) if seconds > 0 else None
    sched = warmup_cosine(opt, warmup_steps=warmup_steps, total_steps=max(budget, 1), progress=progress)
    loss_fn, channel = PartialLabelLoss(loss), {c: k for k, c in enumerate(concepts)}
    done = 0
    for batch in dm.train_dataloader():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = net(batch["image"])  # (B, K, X, Y, Z)
        out, valid = query_logits(logits.float(), batch, channel)
        terms = loss_fn(out, batch["target"], valid)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        done += 1
        if done >= budget or (seconds > 0 and time.perf_counter() - t0 >= seconds):
            break
    return Specialist(net.eval(), list(concepts), tuple(spacing), tuple(patch), done, time.perf_counter() - t0,
                      intensity)


@torch.no_grad()
def predict(spec: Specialist, volume, modality: str, concepts: list[str], *, mirrors: dict[str, str] | None = None,
            overlap: float = 0.25) -> dict[str, np.ndarray]:
    """Probabilities of ``concepts`` on ``volume``'s own grid: ``{concept id: (X, Y, Z) float16}``
    (concepts the specialist was not trained on are left out; thresholds and the largest-component
    rule are applied by the caller, :mod:`sat.bench.real_postprocess`).

    Preprocessing and restoration are the universal model's (the same grid and the same trilinear
    restore to the input grid), so the two families differ only in their networks. With
    ``mirrors`` (concept id -> mirror id) the probabilities are averaged with a left-right
    mirrored pass whose lateral channels are swapped, nnU-Net's mirroring with sides kept right.
    """
    from monai.inferers import sliding_window_inference

    from sat.volume.preprocess import preprocess_case
    from sat.infer.restore import restore_prompts

    pre = preprocess_case(volume.array, volume.affine, modality, spec.preprocess(), crop=True)
    image = torch.from_numpy(pre["image"])[None]  # (1, 1, x, y, z)
    known = [c for c in concepts if c in spec.concepts]
    rows = [spec.concepts.index(c) for c in known]

    # an image smaller than the patch (the hippocampus crops) is padded with its minimum, as the
    # training crops were (sat.data.sampling pads with the image minimum); padding with 0, the mean
    # after normalisation, shifts the instance-norm statistics the network learnt
    pad = float(image.min())

    def window(x: torch.Tensor) -> torch.Tensor:  # (1, K, x, y, z) probabilities
        return torch.sigmoid(sliding_window_inference(x, spec.patch, 2, spec.net, overlap=overlap, mode="gaussian",
                                                      cval=pad).float())

    prob = window(image)[0]  # (K, x, y, z)
    if mirrors is not None:  # channel k of the mirrored pass answers mirror(concepts[k])
        flipped = window(image.flip(2))[0].flip(1)
        swap = [spec.concepts.index(mirrors.get(c, c)) if mirrors.get(c, c) in spec.concepts else k
                for k, c in enumerate(spec.concepts)]
        prob = 0.5 * (prob + flipped[swap])
    prob = prob[rows]  # (k, x, y, z)
    restored = restore_prompts(prob, pre["affine"], volume, ["none"] * len(known), keep_probabilities=True)
    return {c: r.prob for c, r in zip(known, restored)}


def save_specialists(trained: dict[str, Specialist], filters, path: Path) -> Path:
    """Write the trained specialists (weights and how they were trained) so a later
    ``sat benchmark real --rescore`` scores them again without training; returns ``path``."""
    torch.save({"format": "sat-specialists/1", "filters": [int(f) for f in filters],
                "nets": {n: s.net.state_dict() for n, s in trained.items()},
                "meta": {n: {"concepts": list(s.concepts), "spacing": [float(v) for v in s.spacing],
                             "patch": [int(v) for v in s.patch], "steps": int(s.steps), "train_s": float(s.train_s),
                             "intensity": s.intensity}
                         for n, s in trained.items()}}, path)
    return path


def load_specialists(path: Path) -> dict[str, Specialist]:
    """The specialists :func:`save_specialists` wrote (``weights_only`` loading); ``InputError``
    naming the file when it is missing or not such a file."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as e:  # missing, truncated or not a torch file
        raise InputError(f"cannot read specialists {path}: {e}") from None
    if not isinstance(blob, dict) or blob.get("format") != "sat-specialists/1":
        raise InputError(f"{path} is not a specialists file of sat benchmark real (format sat-specialists/1)")
    out = {}
    for name, m in blob["meta"].items():
        net = build_dynunet(tuple(blob["filters"]), len(m["concepts"]))
        net.load_state_dict(blob["nets"][name])
        out[name] = Specialist(net.eval(), list(m["concepts"]), tuple(m["spacing"]), tuple(m["patch"]),
                               int(m["steps"]), float(m["train_s"]), m.get("intensity"))
    return out
