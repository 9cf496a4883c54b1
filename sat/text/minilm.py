"""MiniLM-L6 (a 6-layer BERT encoder) in plain torch, with the ``tokenizers`` package alone.

The resolver's embedding stage used to import ``transformers`` and build its BERT model on the first
prompt that is not an exact term: about 4.3 s on a loaded ``Segmenter``. This module computes the
same network (embeddings, post-norm self-attention blocks, exact GELU) from the same
``model.safetensors`` and ``tokenizer.json``; it imports in milliseconds. Module names mirror
``transformers``' ``BertModel`` (``embeddings.word_embeddings``, ``encoder.layer.N.attention.self.query``,
``pooler.dense``, ...), so state dicts, knowledge-pretrained deltas and
:func:`sat.text.pretrain.transformer_blocks` work unchanged. Dropout sits where BERT has it, so
training behaves the same.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BertShape:
    """The fields of a BERT ``config.json`` this encoder uses."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    @classmethod
    def from_json(cls, path: str | Path) -> BertShape:
        """Read ``config.json``; ``ValueError`` for a model this encoder does not compute."""
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only BERT with exact GELU and absolute positions is supported, got "
                             f"hidden_act={cfg.get('hidden_act')!r}, "
                             f"position_embedding_type={cfg.get('position_embedding_type')!r}")
        return cls(**{k: cfg[k] for k in cls.__dataclass_fields__ if k in cfg})


class _Embeddings(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        # uninitialised: the weights always come from a file (random init of 12 M values costs time)
        self.word_embeddings = nn.Embedding(s.vocab_size, s.hidden_size, padding_idx=0,
                                            _weight=torch.empty(s.vocab_size, s.hidden_size))
        self.position_embeddings = nn.Embedding(s.max_position_embeddings, s.hidden_size)
        self.token_type_embeddings = nn.Embedding(s.type_vocab_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.dropout = nn.Dropout(s.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        h = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(pos)
        return self.dropout(self.LayerNorm(h))


class _SelfAttention(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.heads = s.num_attention_heads
        self.query = nn.Linear(s.hidden_size, s.hidden_size)
        self.key = nn.Linear(s.hidden_size, s.hidden_size)
        self.value = nn.Linear(s.hidden_size, s.hidden_size)
        self.p_drop = s.attention_probs_dropout_prob

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """h: (n, T, d); keep: (n, 1, 1, T) False on padding keys -> (n, T, d)."""
        n, t, d = h.shape
        q, k, v = (proj(h).view(n, t, self.heads, d // self.heads).transpose(1, 2)
                   for proj in (self.query, self.key, self.value))  # (n, heads, T, d_h)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        probs = F.dropout(scores.softmax(-1), self.p_drop, self.training)
        return (probs @ v).transpose(1, 2).reshape(n, t, d)


class _Output(nn.Module):
    """dense -> dropout -> residual -> LayerNorm (BERT's post-norm)."""

    def __init__(self, d_in: int, s: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.dropout = nn.Dropout(s.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.self = _SelfAttention(s)
        self.output = _Output(s.hidden_size, s)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(h, keep), h)


class _Intermediate(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.intermediate_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(h))


class _Layer(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.attention = _Attention(s)
        self.intermediate = _Intermediate(s)
        self.output = _Output(s.intermediate_size, s)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        a = self.attention(h, keep)
        return self.output(self.intermediate(a), a)


class _Encoder(nn.Module):
    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(s) for _ in range(s.num_hidden_layers))


class _Pooler(nn.Module):
    """Kept for state-dict parity with ``BertModel``; sentence embeddings do not use it."""

    def __init__(self, s: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.hidden_size)


class BertEncoder(nn.Module):
    """BERT without task heads; ``forward`` returns an object with ``last_hidden_state``."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.shape = shape
        self.embeddings = _Embeddings(shape)
        self.encoder = _Encoder(shape)
        self.pooler = _Pooler(shape)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> SimpleNamespace:
        """input_ids, attention_mask (1 = token, 0 = padding), token_type_ids: (n, T) ->
        ``last_hidden_state`` (n, T, hidden)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        h = self.embeddings(input_ids, token_type_ids)
        keep = attention_mask[:, None, None, :].bool()  # (n, 1, 1, T)
        for layer in self.encoder.layer:
            h = layer(h, keep)
        return SimpleNamespace(last_hidden_state=h)

    @classmethod
    def from_folder(cls, folder: str | Path) -> BertEncoder:
        """Build from ``config.json`` and load ``model.safetensors`` of a model folder."""
        from safetensors.torch import load_file

        folder = Path(folder)
        weights = folder / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"no model.safetensors in {folder}")
        net = cls(BertShape.from_json(folder / "config.json"))
        state = {k.removeprefix("bert."): v for k, v in load_file(str(weights)).items()
                 if not k.endswith(("position_ids", "token_type_ids"))}  # buffers, not weights
        missing, unexpected = net.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:
            raise ValueError(f"{weights} does not fit a BERT encoder: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
        return net


class WordPieceTokenizer:
    """``tokenizer.json`` through the ``tokenizers`` package, with the call shape the encoders use.

    ``tokenizer(texts, truncation=True, max_length=n)`` -> dict of unpadded lists
    (``input_ids``, ``token_type_ids``, ``attention_mask``).
    """

    padding_side = "right"

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        pad = self._tok.token_to_id("[PAD]")
        self.pad_token_id = 0 if pad is None else pad
        self.pad_token_type_id = 0

    def __call__(self, texts: list[str], truncation: bool = True, max_length: int = 512, padding: bool = False,
                 return_tensors: str | None = None) -> dict:
        """Token fields of ``texts``: lists, unpadded by default; ``padding=True`` pads to the
        longest; ``return_tensors="pt"`` gives (n, T) tensors (padding needed)."""
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
        if truncation:
            self._tok.enable_truncation(max_length)
        else:
            self._tok.no_truncation()
        enc = self._tok.encode_batch(list(texts))
        out = {"input_ids": [e.ids for e in enc], "token_type_ids": [e.type_ids for e in enc],
               "attention_mask": [e.attention_mask for e in enc]}
        if padding:
            width = max((len(x) for x in out["input_ids"]), default=0)
            fill = {"input_ids": self.pad_token_id, "token_type_ids": self.pad_token_type_id, "attention_mask": 0}
            out = {k: [x + [fill[k]] * (width - len(x)) for x in v] for k, v in out.items()}
        if return_tensors == "pt":
            if not padding and len({len(x) for x in out["input_ids"]}) > 1:
                raise ValueError("return_tensors='pt' needs padding=True for texts of different lengths")
            out = {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
        return out
