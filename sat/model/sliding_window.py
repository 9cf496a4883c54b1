"""Sliding-window inference with a per-image feature cache.

The backbone runs once per window and its features are kept, so any number of prompts, asked at
once or later, costs only the text-conditioned head (the SAM "set the image once" pattern). Windows
are blended with a Gaussian importance map into a stitching buffer (float32 while it is small,
float16 past :data:`FLOAT32_BUFFER_BYTES`, so memory stays bounded for large grids).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from sat.model.universal import modality_index
from sat.vision.features import BackboneOutput

FLOAT32_BUFFER_BYTES = 512 * 2**20  # above this, the (Q, X, Y, Z) stitching buffer is float16
CLICK_REACH = 0.25  # decode_near: a click's answer is exact this fraction of a window around it


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start offsets covering ``size`` with windows of ``patch`` at the given overlap fraction."""
    if size <= patch:
        return [0]
    stride = max(1, int(round(patch * (1.0 - overlap))))
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def gaussian_map(patch: tuple[int, int, int], sigma_scale: float = 0.125) -> torch.Tensor:
    """(P, P, P) Gaussian importance weights, peak 1, floor 1e-3 (keeps borders defined)."""
    axes = []
    for p in patch:
        x = torch.arange(p, dtype=torch.float32) - (p - 1) / 2
        axes.append(torch.exp(-0.5 * (x / (p * sigma_scale)) ** 2))
    w = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    return (w / w.max()).clamp_min(1e-3)


@dataclass
class FeatureCache:
    """Backbone features of every window of one preprocessed image."""

    shape: tuple[int, int, int]
    patch: tuple[int, int, int]
    modality: int
    windows: list[tuple[tuple[int, int, int], BackboneOutput]] = field(default_factory=list)


@torch.no_grad()
def encode_image(net, image: torch.Tensor, modality: str | None, patch_size, *, overlap: float = 0.25,
                 device: str | torch.device = "cpu", sw_batch: int = 2,
                 keep_scales: int | None = None) -> FeatureCache:
    """Run the backbone over all windows of ``image`` (C, X, Y, Z) and cache the features.

    Args:
        keep_scales: coarsest encoder scales kept per window; default: the head's ``token_scales``
            (all scales for a head that does not declare it).
    """
    keep = keep_scales or getattr(getattr(net, "head", None), "token_scales", None)
    patch = tuple(int(p) for p in patch_size)
    shape = tuple(image.shape[1:])
    pad = [max(p - n, 0) for p, n in zip(patch, shape)]
    if any(pad):
        image = torch.nn.functional.pad(image, (0, pad[2], 0, pad[1], 0, pad[0]), value=float(image.min()))
    full = tuple(image.shape[1:])
    starts = [(a, b, c) for a in window_starts(full[0], patch[0], overlap)
              for b in window_starts(full[1], patch[1], overlap)
              for c in window_starts(full[2], patch[2], overlap)]
    cache = FeatureCache(shape=shape, patch=patch, modality=modality_index(modality))
    for i in range(0, len(starts), sw_batch):
        chunk = starts[i:i + sw_batch]
        x = torch.stack([image[:, a:a + patch[0], b:b + patch[1], c:c + patch[2]] for a, b, c in chunk])
        mod = torch.full((len(chunk),), cache.modality, dtype=torch.long, device=device)  # (n,)
        feats = net.encode_image(x.to(device), mod)
        for j, s in enumerate(chunk):
            light = BackboneOutput(pixel=feats.pixel[j:j + 1],
                                   encoder=[f[j:j + 1] for f in feats.encoder[-(keep or len(feats.encoder)):]],
                                   decoder=[])
            cache.windows.append((s, light))
    return cache


def _query_text(net, q: torch.Tensor) -> torch.Tensor:
    """(1, Q) indices -> (1, Q, E) the text the head was trained on (side vector included)."""
    return net.query_text(q) if hasattr(net, "query_text") else net.concept_embeddings[q]


@torch.no_grad()
def decode_prompts(net, cache: FeatureCache, concepts: list[str], *, device="cpu", prompts=None) -> torch.Tensor:
    """Probabilities (Q, X, Y, Z) float16 on the cached image's grid for ``concepts`` (ids).

    Only the text-conditioned head runs here; the backbone features come from ``cache``.
    ``prompts``: optional clicks and boxes (:class:`~sat.model.prompts.Prompts`, B = 1, Q queries)
    in voxels of the cached (unpadded) grid; each window sees them shifted to its own origin.
    """
    return _decode_windows(net, cache, concepts, device, prompts)[0]


@torch.no_grad()
def decode_near(net, cache: FeatureCache, concepts: list[str], point, *, device="cpu", prompts=None,
                reach: float = CLICK_REACH) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`decode_prompts` over only the windows that meet the box of ``reach`` times the window
    around ``point`` (a voxel, 3 numbers). Returns the (Q, X, Y, Z) float16 probabilities and the
    (X, Y, Z) bool voxels every window covering them ran for, where they equal
    :func:`decode_prompts`' (undefined elsewhere): at least ``reach`` times the window on each side
    of the point. At half-window overlap, ``reach`` 0.5 runs 4 windows per axis (64 in 3D) and 0.25
    runs 3 (27): on the OpenKBP validation CTs, a click's 90th-percentile latency went from 0.31 s
    to 0.19 s, mean Dice per click within 0.003 (``sat benchmark interactive``).

    Raises:
        ValueError: ``reach`` outside (0, 1].
    """
    if not 0.0 < reach <= 1.0:
        raise ValueError(f"reach must be in (0, 1] windows, got {reach!r}")
    p = np.asarray(point, dtype=float)
    half = [int(round(n * reach)) for n in cache.patch]
    # the voxels within ``half`` of the point: a window meets them when s <= q + r and q - r < s + n
    region = tuple(slice(int(np.floor(q - r)), int(np.floor(q + r)) + 1) for q, r in zip(p, half))
    return decode_region(net, cache, concepts, region, device=device, prompts=prompts)


@torch.no_grad()
def decode_region(net, cache: FeatureCache, concepts: list[str], region: tuple[slice, slice, slice], *,
                  device="cpu", prompts=None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`decode_prompts` over only the windows that meet ``region`` (three slices of the cached
    grid). Returns the (Q, X, Y, Z) float16 probabilities and the (X, Y, Z) bool voxels every window
    covering them ran for (the region among them), where they equal :func:`decode_prompts`'."""
    def meets(start) -> bool:
        return all(s < r.stop and r.start < s + n for s, n, r in zip(start, cache.patch, region))

    out, skipped = _decode_windows(net, cache, concepts, device, prompts, meets)
    return out, ~skipped


def _decode_windows(net, cache: FeatureCache, concepts: list[str], device, prompts, keep=None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stitched probabilities of the windows ``keep(start)`` accepts (all by default), and the
    (X, Y, Z) bool voxels some skipped window covers."""
    q = net.query_indices(concepts).to(device)[None]  # (1, Q)
    text = _query_text(net, q)
    if prompts is not None:
        prompts = prompts.to(device)
    mod = torch.tensor([cache.modality], device=device)
    full = tuple(max(p, n) for p, n in zip(cache.patch, cache.shape))
    small = len(concepts) * int(np.prod(full)) * 4 <= FLOAT32_BUFFER_BYTES
    acc = torch.zeros((len(concepts), *full), dtype=torch.float32 if small else torch.float16)
    norm = torch.zeros(full, dtype=torch.float32)
    skipped = torch.zeros(full, dtype=torch.bool)
    w = gaussian_map(cache.patch)
    for (a, b, c), feats in cache.windows:
        sl = (slice(a, a + cache.patch[0]), slice(b, b + cache.patch[1]), slice(c, c + cache.patch[2]))
        if keep is not None and not keep((a, b, c)):
            skipped[sl] = True
            continue
        if prompts is None:
            logits = net.head(feats, text, mod, None)
        else:
            logits = net.head(feats, text, mod, None, prompts.shifted((a, b, c)))
        prob = torch.sigmoid(logits.float())[0].cpu()
        acc[(slice(None), *sl)] += (prob * w).to(acc.dtype)
        norm[sl] += w
    crop = tuple(slice(0, n) for n in cache.shape)
    norm = norm[crop].clamp_min(1e-6)
    out = torch.empty((len(concepts), *cache.shape), dtype=torch.float16)
    for k in range(len(concepts)):  # one channel at a time: no float32 copy of the whole buffer
        out[k] = (acc[k][crop].float() / norm).half()
    return out, skipped[crop]


def flip_lr(x: torch.Tensor) -> torch.Tensor:
    """Mirror a (C, X, Y, Z) tensor on an axis-aligned RAS grid along its left-right axis (X)."""
    return x.flip(1)


@torch.no_grad()
def decode_tta(net, caches: list[FeatureCache], concepts: list[str], mirror_of: dict[str, str | None], *,
               device="cpu") -> torch.Tensor:
    """Probabilities (Q, X, Y, Z) float16, averaged with a left-right mirrored pass when available.

    Args:
        caches: features of the image and, optionally, of the image flipped by :func:`flip_lr`.
        concepts: concept ids asked of the original image.
        mirror_of: see :func:`mirror_queries`; the flipped image is asked for the mirror of each
            lateral concept ("left kidney" -> "right kidney"), whose answer, flipped back, is the
            original side's. Concepts the flip cannot answer keep the single-pass result.
    """
    probs = decode_prompts(net, caches[0], concepts, device=device)
    if len(caches) < 2:
        return probs
    rows, queries = mirror_queries(concepts, mirror_of)
    if rows:
        flipped = flip_lr(decode_prompts(net, caches[1], queries, device=device))
        probs[rows] = ((probs[rows].float() + flipped.float()) / 2).half()
    return probs


def mirror_queries(concepts: list[str], mirror_of: dict[str, str | None]) -> tuple[list[int], list[str]]:
    """Which concepts a left-right flipped image can answer, and what to ask it instead.

    Args:
        concepts: concept ids asked of the original image.
        mirror_of: concept id -> the id to ask of the flipped image (its trained mirror for a lateral
            concept, itself for an unpaired one), or ``None`` when the flip cannot answer it (a lateral
            concept whose mirror the model was not trained on).

    Returns:
        ``(rows of concepts the flip answers, queries for the flipped image)``.
    """
    rows = [i for i, c in enumerate(concepts) if mirror_of.get(c)]
    return rows, [mirror_of[concepts[i]] for i in rows]


def predict_preprocessed(net, image: torch.Tensor, concepts: list[str], modality: str | None,
                         patch_size, **kw) -> torch.Tensor:
    """One-shot helper: encode then decode -> (Q, X, Y, Z) probabilities (float32)."""
    was_training = net.training
    net.eval()
    try:
        device = next(net.parameters()).device
        cache = encode_image(net, image, modality, patch_size, device=device, **kw)
        return decode_prompts(net, cache, concepts, device=device).float()
    finally:
        net.train(was_training)
