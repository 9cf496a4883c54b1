"""Carry a knowledge-pretrained text encoder inside a model checkpoint.

Knowledge pretraining changes only the top transformer blocks of the text encoder, so a checkpoint
stores just the tensors that differ from the base encoder (the "delta", ~14 MB for two MiniLM
blocks) rather than a path that would not exist on another machine.

A checkpoint may come from a stranger, so its delta is data: on load the digest it claims must be
a 16-hex-digit string equal to :func:`delta_digest` recomputed from the tensors it carries; the
delta and its sidecar (calibrated threshold) are then kept **in memory** under a reference
``sat-delta:<digest>-<sidecar hash>`` that a text spec names as ``finetuned``. Nothing is written
to disk (so a read-only home works, and nothing is written for prompts that never need the
encoder), and two checkpoints can never share or overwrite each other's entry.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace

import torch

from sat.errors import InputError
from sat.text.encoder import TextEncoderSpec, build_text_encoder

MEMORY_PREFIX = "sat-delta:"
_DIGEST = re.compile(r"[0-9a-f]{16}")
_LOADED: dict[str, tuple[dict[str, torch.Tensor], dict]] = {}  # reference -> (delta, sidecar)


def encoder_delta(spec: TextEncoderSpec) -> dict[str, torch.Tensor]:
    """Tensors of ``spec.finetuned`` that differ from the base encoder (empty without one)."""
    if not spec.finetuned:
        return {}
    tuned = load_finetuned(spec.finetuned)
    base = build_text_encoder(replace(spec, finetuned=None)).state_dict()
    return {k: v.contiguous() for k, v in tuned.items() if k not in base or not torch.equal(v, base[k])}


def delta_digest(delta: dict[str, torch.Tensor]) -> str:
    """A short content hash of a delta (names, shapes and values)."""
    h = hashlib.sha256()
    for k in sorted(delta):
        h.update(k.encode())
        h.update(str(tuple(delta[k].shape)).encode())
        h.update(delta[k].float().numpy().tobytes())
    return h.hexdigest()[:16]


def register_delta(delta: dict, digest, sidecar: dict | None = None) -> str:
    """Verify a checkpoint's delta against the digest it claims and keep it in memory.

    Returns:
        The reference to use as ``TextEncoderSpec.finetuned``.

    Raises:
        InputError: the digest is not 16 hex digits, the delta is not a dict of named tensors, or
            the tensors do not hash to the digest.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InputError(f"checkpoint text_delta {str(digest)[:80]!r} is not a 16-hex-digit digest")
    if not isinstance(delta, dict) or not delta or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in delta.items()):
        raise InputError("checkpoint text_delta tensors are missing or not a dict of named tensors")
    actual = delta_digest(delta)
    if actual != digest:
        raise InputError(f"checkpoint text_delta claims digest {digest} but its tensors hash to {actual}; "
                         "the checkpoint was altered")
    if sidecar is not None and not isinstance(sidecar, dict):
        raise InputError(f"checkpoint text_sidecar must be a JSON object, got {type(sidecar).__name__}")
    side = dict(sidecar or {})
    threshold = side.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and -1.0 <= float(threshold) <= 1.0):
        raise InputError(f"checkpoint text_sidecar threshold {threshold!r} is not a cosine in [-1, 1]")
    side_hash = hashlib.sha256(json.dumps(side, sort_keys=True, default=str).encode()).hexdigest()[:8]
    ref = f"{MEMORY_PREFIX}{digest}-{side_hash}"
    _LOADED[ref] = ({k: v.contiguous() for k, v in delta.items()}, side)
    return ref


def is_memory_ref(finetuned) -> bool:
    return isinstance(finetuned, str) and finetuned.startswith(MEMORY_PREFIX)


def load_finetuned(finetuned: str) -> dict[str, torch.Tensor]:
    """The state dict a spec's ``finetuned`` names: a registered delta or a safetensors file."""
    if is_memory_ref(finetuned):
        if finetuned not in _LOADED:
            raise ValueError(f"{finetuned}: no such encoder delta in this process; load its checkpoint first")
        return _LOADED[finetuned][0]
    from safetensors.torch import load_file

    return load_file(finetuned)


def memory_sidecar(finetuned: str) -> dict:
    """The sidecar registered with a delta reference (``{}`` if unknown)."""
    return dict(_LOADED.get(finetuned, (None, {}))[1])
