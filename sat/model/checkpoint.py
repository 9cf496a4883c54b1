"""Self-contained inference checkpoints.

A checkpoint holds everything inference needs and nothing executable: the model config, the text
encoder spec, the knowledge-tree hash, the concept-embedding table (inside the state dict), the
preprocessing spec, the trained concepts and their vocabulary snapshot (all in one
:class:`~sat.model.checkpoint_meta.CheckpointMeta`), plus, for a knowledge-pretrained text encoder,
the tensors it changed (:mod:`sat.text.bundle`), so prompts resolve the same on any machine. It is
a dict of tensors and one JSON string, loaded with ``torch.load(weights_only=True)``, and written
atomically (temp file + rename). Loading treats the file as untrusted data (:func:`load_checkpoint`).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from sat.errors import InputError
from sat.atomic import atomic_path
from sat.knowledge.tree import KnowledgeTree
from sat.knowledge.vocabulary import snapshot_ids
from sat.model.builder import build_model
from sat.model.checkpoint_meta import CheckpointMeta
from sat.model.config import ModelConfig
from sat.volume.preprocess import PreprocessSpec


def save_checkpoint(path: str | Path, net, *, model_cfg: ModelConfig, text_spec: dict,
                    tree_hash: str, preprocess: dict, trained_concepts: list[str],
                    extra: dict | None = None, text_delta: dict | None = None,
                    tree: KnowledgeTree | None = None) -> Path:
    """Write ``net`` and its metadata (:class:`CheckpointMeta`) to ``path`` atomically.

    ``text_delta``: tensors of the fine-tuned text encoder that differ from its base
    (:func:`sat.text.bundle.encoder_delta`); stored so the checkpoint does not depend on a path.
    ``tree``: the knowledge tree the model was trained with (its hash must be ``tree_hash``); the
    checkpoint keeps a snapshot of the trained concepts from it (:mod:`sat.knowledge.vocabulary`).

    Raises:
        ValueError: ``tree`` is not the tree of ``tree_hash``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vocabulary = None
    if tree is not None:
        if tree.hash != tree_hash:
            raise ValueError(f"tree hash {tree.hash!r} differs from tree_hash {tree_hash!r}")
        vocabulary = tuple(tree.get(c) for c in snapshot_ids(tree, trained_concepts))
    meta = CheckpointMeta(model=model_cfg, text=dict(text_spec), tree_hash=tree_hash,
                          preprocess=PreprocessSpec.from_dict(preprocess), trained_concepts=sorted(trained_concepts),
                          concept_ids=list(net.concept_ids), vocabulary=vocabulary, extra=dict(extra or {}))
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    blob = {"state_dict": state}
    if text_delta:
        from sat.text.bundle import delta_digest
        from sat.text.sidecar import read_sidecar

        blob["text_delta"] = text_delta
        meta.text_sidecar = read_sidecar(text_spec.get("finetuned"))  # the calibrated threshold
        meta.text = {**text_spec, "finetuned": None}
        meta.text_delta = delta_digest(text_delta)
    with atomic_path(path) as tmp:
        torch.save({"meta": json.dumps(meta.to_dict()), **blob}, tmp)
    return path


def update_extra(path: str | Path, **items) -> Path:
    """Set ``extra[key] = value`` for each item in the metadata of an existing checkpoint
    (atomically; tensors untouched), e.g. the inference settings ``sat benchmark real`` chose on
    the validation patients. Any format version: ``extra`` is in all of them."""
    path = Path(path)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(blob["meta"])
    meta["extra"] = {**(meta.get("extra") or {}), **items}
    with atomic_path(path) as tmp:
        torch.save({**blob, "meta": json.dumps(meta)}, tmp)
    return path


def force_offline() -> None:
    """Turn the Hugging Face hub off for this process (and for modules already imported)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        hub.HF_HUB_OFFLINE = True


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """Load a checkpoint safely and rebuild the network.

    A checkpoint is data, whoever wrote it: tensors and JSON only (``weights_only``), metadata
    validated, a carried text-encoder delta verified against its digest and kept in memory
    (:func:`sat.text.bundle.register_delta`; nothing is written to disk), only local text
    backends, and the Hugging Face hub switched off for the process (:func:`force_offline`).

    Returns:
        ``(net in eval mode, its CheckpointMeta)``.

    Raises:
        InputError: missing, corrupt, foreign or malformed file.
    """
    force_offline()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    where = f"checkpoint {path}"
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
        state = blob["state_dict"]
    except Exception as exc:
        raise InputError(f"checkpoint {path} is corrupt or not a sat checkpoint "
                         f"({type(exc).__name__})") from None
    meta = CheckpointMeta.from_dict(meta, where)  # migrates older formats, validates every field
    if not isinstance(state, dict) or not isinstance(state.get("concept_embeddings"), torch.Tensor):
        raise InputError(f"{where} does not load: its state_dict lacks the concept_embeddings tensor")
    if meta.text_delta is not None:  # the fine-tuned text encoder travels inside the checkpoint
        from sat.text.bundle import register_delta

        ref = register_delta(blob.get("text_delta"), meta.text_delta, meta.text_sidecar)
        meta.text = {**meta.text, "finetuned": ref}
    try:
        net = build_model(meta.model, meta.concept_ids, state["concept_embeddings"])
        net.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc) else ""
        raise InputError(f"{where} does not load: its weights do not fit its model config "
                         f"({type(exc).__name__}: {first})") from None
    return net.to(device).eval(), meta
