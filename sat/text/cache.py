"""Cached text embeddings of knowledge-tree concepts, keyed by tree hash and encoder spec.

The cache folder is ``$SAT_CACHE_DIR``, else ``~/.cache/sat``. It is only written when a prompt
actually needs the text encoder. When it cannot be written (a read-only home on a cluster or in a
container), tables are kept in memory for the life of the process, after one warning. Entries
read back are verified against their content (ids and texts as the tree gives them now, shape
and a SHA-256 of the embeddings, which were finite when written); a damaged or foreign entry is recomputed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from sat.atomic import atomic_path
from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts

log = logging.getLogger(__name__)
_MEMORY: dict[str, tuple[list[str], list[str], torch.Tensor]] = {}  # file name -> table, when unwritable
_WARNED: set[str] = set()


def cache_dir() -> Path:
    """``$SAT_CACHE_DIR`` if set, else ``~/.cache/sat``."""
    return Path(os.environ.get("SAT_CACHE_DIR") or Path.home() / ".cache" / "sat")


def concept_text(concept) -> str:
    """The text whose embedding represents a concept: its canonical name."""
    return concept.name


def _digest(emb: torch.Tensor) -> str:
    return hashlib.sha256(emb.float().contiguous().numpy().tobytes()).hexdigest()


def _read_entry(path: Path, ids: list[str], texts: list[str]) -> torch.Tensor | None:
    """The cached embeddings at ``path`` if the entry matches what it should hold, else None."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
        emb = blob["emb"]
        ok = (isinstance(meta, dict) and meta.get("ids") == ids and meta.get("texts") == texts
              and isinstance(emb, torch.Tensor) and emb.ndim == 2 and emb.shape[0] == len(texts)
              and meta.get("sha256") == _digest(emb))  # finite when written (see _write_entry)
    except Exception as exc:  # noqa: BLE001 - any unreadable entry is recomputed
        log.warning("ignoring unreadable cache entry %s (%s)", path, type(exc).__name__)
        return None
    if not ok:
        log.warning("ignoring cache entry %s: its content does not match its key; recomputing", path)
        return None
    return emb


def _write_entry(path: Path, ids: list[str], texts: list[str], emb: torch.Tensor) -> bool:
    """Write atomically; False (with one warning per folder) when the folder is not writable.
    Non-finite embeddings are never written (``ValueError``), so a read checks only the digest."""
    if not bool(torch.isfinite(emb).all()):
        raise ValueError(f"refusing to cache non-finite text embeddings in {path.name}")
    try:
        with atomic_path(path, mkdir=True) as tmp:
            torch.save({"meta": json.dumps({"ids": ids, "texts": texts, "sha256": _digest(emb)}), "emb": emb}, tmp)
        return True
    except OSError as exc:
        folder = str(path.parent)
        if folder not in _WARNED:
            _WARNED.add(folder)
            log.warning("cache folder %s is not writable (%s); keeping text embeddings in memory for this "
                        "run. Set SAT_CACHE_DIR to a writable folder to keep them.", folder,
                        exc.strerror or type(exc).__name__)
        return False


def term_table(tree, spec: TextEncoderSpec, encoder=None, kind: str = "terms"
               ) -> tuple[list[str], list[str], torch.Tensor]:
    """Embeddings of every concept's terms (``kind="terms"``: name + synonyms) or only of the
    canonical names (``kind="names"``), cached on disk (or in memory when the disk is read-only).

    Returns:
        ``(concept ids, texts, embeddings (N, dim))`` with one row per text.
    """
    name = f"{kind}-{tree.hash}-{spec.key()}.pt"
    if name in _MEMORY:
        return _MEMORY[name]
    ids, texts = [], []
    for c in tree.concepts.values():
        for t in ([concept_text(c)] if kind == "names" else dict.fromkeys(c.terms)):
            ids.append(c.id)
            texts.append(t)
    path = cache_dir() / name
    if path.is_file():
        emb = _read_entry(path, ids, texts)
        if emb is not None:
            return ids, texts, emb
    emb = encode_texts(encoder or build_text_encoder(spec), texts)
    if not _write_entry(path, ids, texts, emb):
        _MEMORY[name] = (ids, texts, emb)
    return ids, texts, emb
