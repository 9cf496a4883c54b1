"""Cached text embeddings of knowledge-tree concepts, keyed by tree hash and encoder spec."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts


def cache_dir() -> Path:
    """``$SAT_CACHE_DIR`` if set, else ``~/.cache/sat``."""
    return Path(os.environ.get("SAT_CACHE_DIR") or Path.home() / ".cache" / "sat")


def concept_text(concept) -> str:
    """The text whose embedding represents a concept: its canonical name."""
    return concept.name


def term_table(tree, spec: TextEncoderSpec, encoder=None, kind: str = "terms"
               ) -> tuple[list[str], list[str], torch.Tensor]:
    """Embeddings of every concept's terms (``kind="terms"``: name + synonyms) or only of the
    canonical names (``kind="names"``), cached on disk.

    Returns:
        ``(concept ids, texts, embeddings (N, dim))`` with one row per text.
    """
    path = cache_dir() / f"{kind}-{tree.hash}-{spec.key()}.pt"
    if path.is_file():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(blob["meta"])
        return meta["ids"], meta["texts"], blob["emb"]
    ids, texts = [], []
    for c in tree.concepts.values():
        for t in ([concept_text(c)] if kind == "names" else dict.fromkeys(c.terms)):
            ids.append(c.id)
            texts.append(t)
    emb = encode_texts(encoder or build_text_encoder(spec), texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"meta": json.dumps({"ids": ids, "texts": texts}), "emb": emb}, tmp)
    os.replace(tmp, path)
    return ids, texts, emb
