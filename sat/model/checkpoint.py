"""Self-contained inference checkpoints.

A checkpoint holds everything inference needs and nothing executable: the model config, the text
encoder spec, the knowledge-tree hash, the concept-embedding table (inside the state dict), the
preprocessing spec and the list of trained concepts, plus, for a knowledge-pretrained text encoder,
the tensors it changed (:mod:`sat.text.bundle`), so prompts resolve the same on any machine. It is
a dict of tensors and one JSON string, loaded with ``torch.load(weights_only=True)``, and written
atomically (temp file + rename).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from sat.errors import InputError
from sat.model.builder import build_model
from sat.model.config import ModelConfig

FORMAT = "sat-checkpoint/1"


def save_checkpoint(path: str | Path, net, *, model_cfg: ModelConfig, text_spec: dict,
                    tree_hash: str, preprocess: dict, trained_concepts: list[str],
                    extra: dict | None = None, text_delta: dict | None = None) -> Path:
    """Write ``net`` and its metadata to ``path`` atomically.

    ``text_delta``: tensors of the fine-tuned text encoder that differ from its base
    (:func:`sat.text.bundle.encoder_delta`); stored so the checkpoint does not depend on a path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "model": model_cfg.to_dict(), "text": text_spec, "tree_hash": tree_hash,
            "preprocess": preprocess, "trained_concepts": sorted(trained_concepts),
            "concept_ids": list(net.concept_ids), "extra": extra or {}}
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    blob = {"state_dict": state}
    if text_delta:
        from sat.text.bundle import delta_digest
        from sat.text.sidecar import read_sidecar

        blob["text_delta"] = text_delta
        meta["text_sidecar"] = read_sidecar(text_spec.get("finetuned"))  # the calibrated threshold
        meta["text"] = {**text_spec, "finetuned": None}
        meta["text_delta"] = delta_digest(text_delta)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"meta": json.dumps(meta), **blob}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """Load a checkpoint safely and rebuild the network.

    Returns:
        ``(net in eval mode, meta dict)``.

    Raises:
        InputError: missing, corrupt or foreign file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
        state = blob["state_dict"]
    except Exception as exc:
        raise InputError(f"checkpoint {path} is corrupt or not a sat checkpoint "
                         f"({type(exc).__name__})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        cfg = ModelConfig.from_dict(meta["model"])
    except (ValueError, TypeError) as exc:  # e.g. written by a newer version with more fields
        raise InputError(f"checkpoint {path} has a model config this version cannot build: {exc}") from None
    if meta.get("text_delta"):  # the fine-tuned text encoder travels inside the checkpoint
        from sat.text.bundle import materialize_delta

        meta["text"] = {**meta["text"], "finetuned": str(materialize_delta(blob["text_delta"], meta["text_delta"],
                                                                        meta.get("text_sidecar")))}
    emb = state["concept_embeddings"]
    net = build_model(cfg, meta["concept_ids"], emb)
    net.load_state_dict(state, strict=True)
    return net.to(device).eval(), meta
