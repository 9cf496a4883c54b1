"""Carry a knowledge-pretrained text encoder inside a model checkpoint.

Knowledge pretraining changes only the top transformer blocks of the text encoder, so a checkpoint
stores just the tensors that differ from the base encoder (the "delta", ~14 MB for two MiniLM
blocks) rather than a path that would not exist on another machine. On load the delta is written
once to ``$SAT_CACHE_DIR/encoders/<hash>.safetensors`` and the text spec points there; the encoder
loader accepts such partial state dicts (:func:`sat.text.encoder.build_text_encoder`).
"""
from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import torch

from sat.text.cache import cache_dir
from sat.text.encoder import TextEncoderSpec, build_text_encoder


def encoder_delta(spec: TextEncoderSpec) -> dict[str, torch.Tensor]:
    """Tensors of ``spec.finetuned`` that differ from the base encoder (empty without one)."""
    if not spec.finetuned:
        return {}
    from safetensors.torch import load_file

    tuned = load_file(spec.finetuned)
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


def materialize_delta(delta: dict[str, torch.Tensor], digest: str, sidecar: dict | None = None) -> Path:
    """Write ``delta`` (and its sidecar: calibrated threshold, provenance) to the cache once and
    return the file a text spec can name as ``finetuned``."""
    from safetensors.torch import save_file

    from sat.text.sidecar import sidecar_path, write_sidecar

    path = cache_dir() / "encoders" / f"{digest}.safetensors"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(delta, str(tmp))
        tmp.replace(path)
    if sidecar and not sidecar_path(path).is_file():
        write_sidecar(path, sidecar)
    return path
