"""The on-disk format of one shard sample (WebDataset keys ``image.npy``, ``masks.npy``, ``json``).

* ``image.npy``: (C, X, Y, Z) float16 preprocessed image.
* ``masks.npy``: (K, ceil(X*Y*Z/8)) uint8, one bit-packed boolean mask per concept channel, so
  overlapping structures (liver and liver tumour) coexist.
* ``json``: metadata (see :func:`encode_sample`).
"""
from __future__ import annotations

import io
import json

import numpy as np


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_load(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def bbox_of(mask: np.ndarray) -> list[int] | None:
    """[x0, y0, z0, x1, y1, z1] (stop exclusive) of a boolean (X, Y, Z) mask, ``None`` if empty."""
    if not mask.any():
        return None
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    return [int(i[0]) for i in idx] + [int(i[-1]) + 1 for i in idx]


def encode_sample(key: str, image: np.ndarray, masks: np.ndarray, meta: dict) -> dict:
    """Build a WebDataset sample dict.

    Args:
        key: unique sample key (no dots).
        image: (C, X, Y, Z) float image. masks: (K, X, Y, Z) bool, channel k = ``meta["concepts"][k]``.
        meta: metadata; ``shape``, ``present``, ``bbox`` and ``voxels`` are added here.
    """
    if "." in key:
        raise ValueError(f"sample key must not contain dots, got {key!r}")
    shape = list(image.shape[1:])
    packed = np.packbits(masks.reshape(masks.shape[0], -1), axis=1)
    info = dict(meta)
    info.update(shape=shape,
                voxels=[int(m.sum()) for m in masks],
                present=[bool(m.any()) for m in masks],
                bbox=[bbox_of(m) for m in masks])
    return {"__key__": key, "image.npy": _npy_bytes(image.astype(np.float16)),
            "masks.npy": _npy_bytes(packed), "json": json.dumps(info).encode()}


def decode_sample(sample: dict) -> dict:
    """Inverse of :func:`encode_sample`: returns ``image`` (C,X,Y,Z) float32, ``masks`` (K,X,Y,Z)
    bool and ``meta`` (dict)."""
    meta = json.loads(sample["json"])
    shape = meta["shape"]
    image = _npy_load(sample["image.npy"]).astype(np.float32)
    packed = _npy_load(sample["masks.npy"])
    n = int(np.prod(shape))
    masks = np.unpackbits(packed, axis=1, count=n).reshape(packed.shape[0], *shape).astype(bool)
    return {"key": sample.get("__key__", meta.get("case_id")), "image": image, "masks": masks,
            "meta": meta}
