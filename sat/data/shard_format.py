"""The on-disk format of one shard sample, version ``sat-sample/2``.

WebDataset members of a sample ``<key>``:

* ``image.npy``: (C, X, Y, Z) float16 preprocessed image.
* ``codes.npy``: (X, Y, Z) uint8 (uint16 past 256 codes) label code map.
* ``lut.npy``: (K, n_codes) bool, ``lut[k, c]``: code ``c`` lies inside concept channel ``k``
  (``meta["concepts"][k]``); overlapping structures get codes of their own (see
  :mod:`sat.data.label_codes`). Code 0 is the background.
* ``json``: metadata with ``format``, ``shape``, and per channel ``voxels``, ``present``,
  ``bbox`` computed at encode time, so readers never scan mask channels.
* ``soft_index.npy`` and ``soft_value.npy`` (optional): (M, 2) uint32 ``[channel, flat voxel]``
  and (M,) uint8, each channel's trilinear occupancy x 255 wherever it differs from the code map
  (:func:`sat.volume.label_resample.occupancy_edges`): the partial-volume band along every
  boundary, read by training with ``sampling.soft_targets``.

Version 1 (no ``format`` field; ``masks.npy`` holding K bit-packed channels) still decodes.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from sat.data.label_codes import CodedLabels, code_stats, compact_codes, masks_to_codes

FORMAT = "sat-sample/2"
_LEGACY = "sat-sample/1"


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_load(data: bytes) -> np.ndarray:
    """A read-only array viewing ``data`` (no copy)."""
    buf = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(buf)
    if major not in (1, 2):
        return np.load(io.BytesIO(data), allow_pickle=False)
    read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(buf)
    if dtype.hasobject:
        raise ValueError("object arrays are not allowed in shard samples")
    arr = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape)), offset=buf.tell())
    return arr.reshape(shape, order="F" if fortran else "C")


def bbox_of(mask: np.ndarray) -> list[int] | None:
    """[x0, y0, z0, x1, y1, z1] (stop exclusive) of a boolean (X, Y, Z) mask, ``None`` if empty."""
    if not mask.any():
        return None
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax))) for ax in range(3)]
    return [int(i[0]) for i in idx] + [int(i[-1]) + 1 for i in idx]


def encode_sample(key: str, image: np.ndarray, codes: np.ndarray, lut: np.ndarray, meta: dict,
                  soft: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Build a WebDataset sample dict.

    Args:
        key: unique sample key (no dots).
        image: (C, X, Y, Z) float image.
        codes: (X, Y, Z) unsigned code map; lut: (K, n_codes) bool, row k = ``meta["concepts"][k]``.
            From boolean masks use :func:`sat.data.label_codes.masks_to_codes`.
        meta: metadata; ``format``, ``shape``, ``voxels``, ``present``, ``bbox`` and
            ``image_min`` are added here.
        soft: optional ``(index (M, 2), value (M,))`` occupancy band of the channels (on the
            channels and grid of ``codes``; compacting codes does not move voxels or channels).
    """
    if "." in key:
        raise ValueError(f"sample key must not contain dots, got {key!r}")
    if codes.shape != image.shape[1:]:
        raise ValueError(f"code map shape {codes.shape} differs from the image grid {image.shape[1:]}")
    if "concepts" in meta and len(meta["concepts"]) != lut.shape[0]:
        raise ValueError(f"{len(meta['concepts'])} concepts but lut has {lut.shape[0]} rows")
    codes, lut = compact_codes(codes, lut)
    voxels, bbox = code_stats(codes, lut)
    img16 = image.astype(np.float16)
    info = dict(meta)
    info.update(format=FORMAT, shape=list(image.shape[1:]), voxels=voxels,
                present=[v > 0 for v in voxels], bbox=bbox, image_min=float(img16.min()))
    sample = {"__key__": key, "image.npy": _npy_bytes(img16), "codes.npy": _npy_bytes(codes),
              "lut.npy": _npy_bytes(lut), "json": json.dumps(info).encode()}
    if soft is not None:
        index, value = soft
        if index.ndim != 2 or index.shape[1] != 2 or len(index) != len(value):
            raise ValueError(f"soft band: index {index.shape} and value {value.shape} do not match")
        sample["soft_index.npy"] = _npy_bytes(np.ascontiguousarray(index, np.uint32))
        sample["soft_value.npy"] = _npy_bytes(np.ascontiguousarray(value, np.uint8))
    return sample


@dataclass
class ShardCase:
    """One decoded sample, lazily: nothing is expanded to masks or float32.

    Attributes:
        key: sample key. image: (C, X, Y, Z) float16, read-only, as stored.
        labels: the concept masks as a code map (channels = ``meta["concepts"]``). meta: metadata.
    """

    key: str
    image: np.ndarray
    labels: CodedLabels
    meta: dict


def _version(meta: dict, sample: dict) -> str:
    fmt = meta.get("format", _LEGACY if "masks.npy" in sample else None)
    if fmt not in (FORMAT, _LEGACY):
        raise ValueError(f"sample {sample.get('__key__')!r}: shard sample format {fmt!r} is not readable "
                         f"by this version of sat (reads {FORMAT} and {_LEGACY}); rebuild the shards "
                         f"with `sat shards build`")
    return fmt


def decode_case(sample: dict) -> ShardCase:
    """Decode a raw WebDataset sample without expanding masks (the training path).

    Raises:
        ValueError: the sample's format version is unknown (the message names it).
    """
    meta = json.loads(sample["json"])
    key = sample.get("__key__", meta.get("case_id"))
    shape = tuple(meta["shape"])
    image = _npy_load(sample["image.npy"])
    if _version(meta, sample) == FORMAT:
        codes, lut = _npy_load(sample["codes.npy"]), _npy_load(sample["lut.npy"])
    else:  # version 1: K bit-packed channels
        packed = _npy_load(sample["masks.npy"])
        masks = np.unpackbits(packed, axis=1, count=int(np.prod(shape))).reshape(packed.shape[0], *shape)
        codes, lut = masks_to_codes(masks.view(bool))
    if codes.shape != shape:
        raise ValueError(f"sample {key!r}: code map shape {codes.shape} vs metadata shape {list(shape)}")
    if lut.shape[0] != len(meta["concepts"]):
        raise ValueError(f"sample {key!r}: {lut.shape[0]} label channels vs {len(meta['concepts'])} concepts")
    soft = None
    if "soft_index.npy" in sample:
        soft = (_npy_load(sample["soft_index.npy"]), _npy_load(sample["soft_value.npy"]))
    labels = CodedLabels(codes, lut.astype(bool, copy=False), list(meta["concepts"]), meta.get("bbox") or [],
                         soft=soft)
    return ShardCase(key, image, labels, meta)


def decode_sample(sample: dict) -> dict:
    """Fully decode a raw sample (validation, verification).

    Returns:
        dict with ``key``, ``image`` (C, X, Y, Z) float32, ``masks`` (K, X, Y, Z) bool, ``codes``
        (X, Y, Z), ``lut`` (K, n_codes) bool and ``meta``.
    """
    case = decode_case(sample)
    return {"key": case.key, "image": case.image.astype(np.float32), "masks": case.labels.masks(),
            "codes": case.labels.codes, "lut": case.labels.lut, "meta": case.meta}
