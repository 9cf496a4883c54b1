"""A checkpoint's metadata: :class:`CheckpointMeta`, its JSON form and the one migration path.

The metadata is one JSON string inside the checkpoint. Its ``format`` is ``sat-checkpoint/<N>``;
:func:`migrate` brings any older version up to :data:`VERSION` (the only place that knows old
layouts), then :meth:`CheckpointMeta.from_dict` validates every field. Versions:

1. model, text, tree_hash, preprocess, trained_concepts, concept_ids, extra (+ text delta fields).
2. adds ``vocabulary``: the trained concepts as the tree defined them at training
   (:mod:`sat.knowledge.vocabulary`); a version-1 file migrates with ``vocabulary = None`` (it
   resolves prompts with the current tree, and says so when the tree has changed since).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from sat.errors import InputError
from sat.knowledge.tree import Concept
from sat.knowledge.vocabulary import concept_from_record, concept_record
from sat.model.config import ModelConfig
from sat.volume.preprocess import PreprocessSpec

PREFIX = "sat-checkpoint/"
VERSION = 2
_TEXT_BACKENDS = ("minilm", "hf", "open_clip")
_LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")  # an open_clip architecture name, never hf-hub:...


@dataclass
class CheckpointMeta:
    """Everything but the tensors.

    Attributes:
        model: the network's configuration. text: the text-encoder spec (local backends only).
        tree_hash: hash of the knowledge tree at training. preprocess: geometry and intensity rules.
        trained_concepts: concepts with training labels (sorted). concept_ids: rows of the
            concept-embedding table, in order.
        vocabulary: the trained concepts' records at training (with mirrors and the groups above
            them); ``None`` for checkpoints written before version 2.
        extra: free-form figures of the run (patch size, steps, flip probability, concept stats).
        text_sidecar / text_delta: the carried fine-tuned text encoder's sidecar and digest.
        version: the format version read (always :data:`VERSION` after :func:`migrate`).
    """

    model: ModelConfig
    text: dict
    tree_hash: str
    preprocess: PreprocessSpec
    trained_concepts: list[str]
    concept_ids: list[str]
    vocabulary: tuple[Concept, ...] | None = None
    extra: dict = field(default_factory=dict)
    text_sidecar: dict | None = None
    text_delta: str | None = None
    version: int = VERSION

    @property
    def format(self) -> str:
        return f"{PREFIX}{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready mapping written into a checkpoint."""
        out = {"format": self.format, "model": self.model.to_dict(), "text": dict(self.text),
               "tree_hash": self.tree_hash, "preprocess": self.preprocess.to_dict(),
               "trained_concepts": list(self.trained_concepts), "concept_ids": list(self.concept_ids),
               "vocabulary": None if self.vocabulary is None else [concept_record(c) for c in self.vocabulary],
               "extra": dict(self.extra)}
        if self.text_delta is not None:
            out.update(text_delta=self.text_delta, text_sidecar=self.text_sidecar)
        return out

    @classmethod
    def from_dict(cls, raw, where: str) -> CheckpointMeta:
        """Migrate and validate a mapping read from a checkpoint.

        Raises:
            InputError: one line naming ``where`` and the bad field (a list instead of a mapping,
                a missing or mistyped field, a newer format, a remote text model).
        """
        meta = migrate(raw, where)
        for key, kind in (("model", dict), ("text", dict), ("preprocess", dict), ("trained_concepts", list),
                          ("concept_ids", list), ("extra", dict), ("tree_hash", str)):
            if not isinstance(meta.get(key), kind):
                got = "missing" if key not in meta else type(meta[key]).__name__
                raise InputError(f"{where}: metadata field {key!r} must be a {kind.__name__} ({got})")
        if not all(isinstance(c, str) for c in meta["trained_concepts"] + meta["concept_ids"]):
            raise InputError(f"{where}: trained_concepts and concept_ids must be lists of strings")
        try:
            preprocess = PreprocessSpec.from_dict(meta["preprocess"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{where}: invalid preprocess spec ({type(exc).__name__}: {exc})") from None
        try:
            model = ModelConfig.from_dict(meta["model"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # e.g. written by a newer version
            raise InputError(f"{where} has a model config this version cannot build: {exc}") from None
        vocabulary = meta.get("vocabulary")
        if vocabulary is not None:
            if not isinstance(vocabulary, list):
                raise InputError(f"{where}: metadata field 'vocabulary' must be a list or null")
            try:
                vocabulary = tuple(concept_from_record(r, where) for r in vocabulary)
            except (TypeError, ValueError) as exc:
                raise InputError(str(exc)) from None
        sidecar, delta = meta.get("text_sidecar"), meta.get("text_delta")
        if sidecar is not None and not isinstance(sidecar, dict) or delta is not None and not isinstance(delta, str):
            raise InputError(f"{where}: text_sidecar must be a mapping and text_delta a digest string")
        return cls(model=model, text=check_text_spec(meta["text"], where), tree_hash=meta["tree_hash"],
                   preprocess=preprocess, trained_concepts=list(meta["trained_concepts"]),
                   concept_ids=list(meta["concept_ids"]), vocabulary=vocabulary, extra=dict(meta["extra"]),
                   text_sidecar=sidecar, text_delta=delta)


def format_version(raw: dict, where: str) -> int:
    """The ``N`` of ``sat-checkpoint/N``; InputError for another file kind."""
    fmt = raw.get("format")
    number = fmt[len(PREFIX):] if isinstance(fmt, str) and fmt.startswith(PREFIX) else ""
    if not number.isdigit():
        raise InputError(f"{where} has format {fmt!r}, expected {PREFIX}<version>")
    return int(number)


def migrate(raw, where: str) -> dict:
    """``raw`` (a metadata mapping of any version) brought up to :data:`VERSION`, fields unchecked.

    Raises:
        InputError: not a mapping, not a sat checkpoint, or written by a newer version of sat.
    """
    if not isinstance(raw, dict):
        raise InputError(f"{where}: metadata must be a JSON object, got {type(raw).__name__}")
    version = format_version(raw, where)
    if version > VERSION:
        raise InputError(f"{where} has format {PREFIX}{version}, newer than this version of sat reads "
                         f"({PREFIX}{VERSION}); upgrade sat")
    meta = dict(raw)
    if version < 2:  # 1 -> 2: no vocabulary snapshot was written
        meta["vocabulary"] = None
        meta.setdefault("extra", {})
    meta["format"] = f"{PREFIX}{VERSION}"
    return meta


def check_text_spec(text, where: str) -> dict:
    """A checkpoint's text-encoder spec, restricted to local backends that never reach a network.

    Raises:
        InputError: not a mapping, unknown fields or backend, or a remote model name or URL.
    """
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
