"""Self-contained inference checkpoints.

A checkpoint holds everything inference needs and nothing executable: the model config, the text
encoder spec, the knowledge-tree hash, the concept-embedding table (inside the state dict), the
preprocessing spec and the list of trained concepts, plus, for a knowledge-pretrained text encoder,
the tensors it changed (:mod:`sat.text.bundle`), so prompts resolve the same on any machine. It is
a dict of tensors and one JSON string, loaded with ``torch.load(weights_only=True)``, and written
atomically (temp file + rename). Loading treats the file as untrusted data (:func:`load_checkpoint`).
"""
from __future__ import annotations

import json
import os
import re
import sys
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


def update_extra(path: str | Path, **items) -> Path:
    """Set ``meta["extra"][key] = value`` for each item of an existing checkpoint (atomically),
    e.g. the inference settings ``sat benchmark real`` chose on the validation patients."""
    path = Path(path)
    blob = torch.load(path, map_location="cpu", weights_only=True)
    meta = json.loads(blob["meta"])
    meta["extra"] = {**(meta.get("extra") or {}), **items}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({**blob, "meta": json.dumps(meta)}, tmp)
    os.replace(tmp, path)
    return path


_TEXT_BACKENDS = ("minilm", "hf", "open_clip")
_LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")  # an open_clip architecture name, never hf-hub:...
_META_TYPES = {"model": dict, "text": dict, "preprocess": dict, "trained_concepts": list, "concept_ids": list}


def force_offline() -> None:
    """Turn the Hugging Face hub off for this process (and for modules already imported)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:
        hub.HF_HUB_OFFLINE = True


def check_text_spec(text, where: str) -> dict:
    """A checkpoint's text-encoder spec, restricted to local backends that never reach a network.

    Raises:
        InputError: not a mapping, unknown fields or backend, or a remote model name or URL.
    """
    from dataclasses import fields

    from sat.text.bundle import is_memory_ref
    from sat.text.encoder import TextEncoderSpec

    if not isinstance(text, dict):
        raise InputError(f"{where}: text spec must be a JSON object, got {type(text).__name__}")
    known = {f.name for f in fields(TextEncoderSpec)}
    unknown = sorted(set(text) - known)
    if unknown:
        raise InputError(f"{where}: unknown text spec field(s) {unknown}; known: {sorted(known)}")
    backend = text.get("backend", "minilm")
    if backend not in _TEXT_BACKENDS:
        raise InputError(f"{where}: text backend {backend!r} is not one of {_TEXT_BACKENDS}")
    for key in ("path", "model_name", "finetuned"):
        value = text.get(key)
        if value is not None and (not isinstance(value, str) or "://" in value or "\x00" in value):
            raise InputError(f"{where}: text spec {key} {str(value)[:80]!r} is not a local path or name")
    name = text.get("model_name")
    if backend == "open_clip" and name is not None and not _LOCAL_NAME.fullmatch(name):
        raise InputError(f"{where}: open_clip model name {name[:80]!r} is not a local architecture name "
                         "(hub names such as 'hf-hub:...' would reach the network)")
    if is_memory_ref(text.get("finetuned")):
        raise InputError(f"{where}: text spec finetuned {text['finetuned']!r} is reserved for a checkpoint's own delta")
    try:
        TextEncoderSpec(**text)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: invalid text spec ({exc})") from None
    return dict(text)


def _check_meta(meta, where: str) -> dict:
    """Refuse malformed metadata with one line (a list, missing or mistyped fields, bad preprocess)."""
    from sat.data.preprocess import PreprocessSpec

    if not isinstance(meta, dict):
        raise InputError(f"{where}: metadata must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise InputError(f"{where} has format {meta.get('format')!r}, expected {FORMAT!r}")
    for key, kind in _META_TYPES.items():
        if not isinstance(meta.get(key), kind):
            got = "missing" if key not in meta else type(meta[key]).__name__
            raise InputError(f"{where}: metadata field {key!r} must be a {kind.__name__} ({got})")
    if not all(isinstance(c, str) for c in meta["trained_concepts"] + meta["concept_ids"]):
        raise InputError(f"{where}: trained_concepts and concept_ids must be lists of strings")
    if not isinstance(meta.setdefault("extra", {}), dict):
        raise InputError(f"{where}: metadata field 'extra' must be a dict")
    try:
        PreprocessSpec.from_dict(meta["preprocess"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{where}: invalid preprocess spec ({type(exc).__name__}: {exc})") from None
    meta["text"] = check_text_spec(meta["text"], where)
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu"):
    """Load a checkpoint safely and rebuild the network.

    A checkpoint is data, whoever wrote it: tensors and JSON only (``weights_only``), metadata
    validated, a carried text-encoder delta verified against its digest and kept in memory
    (:func:`sat.text.bundle.register_delta`; nothing is written to disk), only local text
    backends, and the Hugging Face hub switched off for the process (:func:`force_offline`).

    Returns:
        ``(net in eval mode, meta dict)``.

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
    meta = _check_meta(meta, where)
    if not isinstance(state, dict) or not isinstance(state.get("concept_embeddings"), torch.Tensor):
        raise InputError(f"{where} does not load: its state_dict lacks the concept_embeddings tensor")
    try:
        cfg = ModelConfig.from_dict(meta["model"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # e.g. written by a newer version
        raise InputError(f"checkpoint {path} has a model config this version cannot build: {exc}") from None
    if meta.get("text_delta") is not None:  # the fine-tuned text encoder travels inside the checkpoint
        from sat.text.bundle import register_delta

        ref = register_delta(blob.get("text_delta"), meta["text_delta"], meta.get("text_sidecar"))
        meta["text"] = {**meta["text"], "finetuned": ref}
    try:
        net = build_model(cfg, meta["concept_ids"], state["concept_embeddings"])
        net.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc) else ""
        raise InputError(f"{where} does not load: its weights do not fit its model config "
                         f"({type(exc).__name__}: {first})") from None
    return net.to(device).eval(), meta
