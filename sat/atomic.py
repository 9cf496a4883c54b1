"""Atomic file writes: the one way ``sat`` replaces a file so that a reader never sees half of it.

A writer fills a temporary file beside the target; only when it finishes is the file flushed to
disk and renamed over the target (``os.replace``, atomic on one file system). A crash or an error
leaves the old file intact and removes the temporary one.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, *, mkdir: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block ends.

    Example::

        with atomic_path(out / "model.ckpt") as tmp:
            torch.save(blob, tmp)

    Args:
        path: the file to write.
        mkdir: create the parent folder first.

    Yields:
        The temporary file (hidden, named after ``path`` and the process id).
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # the writer may have closed it: flush its data to disk
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str, *, mkdir: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    path = Path(path)
    with atomic_path(path, mkdir=mkdir) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
