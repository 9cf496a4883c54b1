"""Answers :meth:`Segmenter.refine` keeps per image: the text and / or box answer before any click,
and the answers to each click history (model grid, float16), bounded per memo.

A module of its own so that ``segment``, which leaves its answers here for a later click, imports
nothing of the click machinery (:mod:`sat.infer.refine` pulls in SciPy's ndimage).
"""
from __future__ import annotations

import numpy as np
import torch

_MEMO_SIZE = 16  # answers kept per image and memo (model grid, float16: a few MB each)


def answer_key(concepts: list[str], box, has_text: bool, space: str) -> tuple:
    """Memo key of an answer to text and / or a box (the frame of the box's numbers matters only with one)."""
    return (tuple(concepts), None if box is None else (tuple(np.asarray(box, dtype=float).ravel()), space), has_text)


def remember(memo: dict, key: tuple, answer: torch.Tensor) -> None:
    """Store ``answer`` under ``key``, dropping the oldest entry beyond :data:`_MEMO_SIZE`."""
    if key not in memo and len(memo) >= _MEMO_SIZE:
        memo.pop(next(iter(memo)))
    memo[key] = answer


def remember_text_answer(seg, concept: str, probs: torch.Tensor) -> None:
    """Keep ``segment``'s model-grid answer (x, y, z) to a one-concept prompt as refine's answer
    before any click: the first click on a segmented structure then decodes only near itself.
    ``segment`` calls this only when it answered as :func:`sat.infer.refine._no_clicks` would (the Segmenter's own
    mirrored-pass and component settings), so the answer stays a function of the click history."""
    remember(seg._cache.setdefault("before_clicks", {}), answer_key([concept], None, True, "world"), probs)
