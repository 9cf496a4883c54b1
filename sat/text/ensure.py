"""Pick the text encoder for a training run: raw MiniLM, a given file, or the knowledge-pretrained one.

``pretrained`` means the default ``sat text-fit`` export (``outputs/text/knowledge_minilm.safetensors``
under the working directory). When it is missing it is made first, with
``configs/text/knowledge.yaml`` capped at a wall-clock budget, so ``make demo`` on a fresh machine
trains its segmenter on knowledge-pretrained concept embeddings. Later runs reuse the file.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sat.errors import InputError


def add_text_encoder_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-encoder", default="pretrained",
                        help="'pretrained' (knowledge-pretrained MiniLM, made first if missing), 'raw', or a "
                             ".safetensors file from `sat text-fit`")
    parser.add_argument("--text-minutes", type=float, default=6.0,
                        help="wall-clock cap on making the pretrained encoder when it is missing")


def text_encoder(choice: str, minutes: float = 6.0) -> str | None:
    """The encoder file to train with (``None``: raw MiniLM).

    Raises:
        InputError: ``choice`` names a file that does not exist, or ``minutes`` is not positive.
    """
    from sat.text.pretrain import DEFAULT_EXPORT

    if choice == "raw":
        return None
    if choice != "pretrained":
        if not Path(choice).is_file():
            raise InputError(f"text encoder file not found: {choice}")
        return choice
    path = Path(DEFAULT_EXPORT)
    if path.is_file():
        return str(path)
    if minutes <= 0:
        raise InputError(f"--text-minutes must be positive, got {minutes}")
    import torch

    from sat.text.text_fit import TextFitConfig, text_fit

    return str(text_fit(TextFitConfig(export=path, root=path.parent, max_minutes=minutes,
                                      threads=torch.get_num_threads())))  # this stage runs alone
