"""Concept masks as one small-integer code map plus a lookup table (overlaps allowed).

A voxel's code stands for the set of concept channels it belongs to: ``lut[k, c]`` is True when
code ``c`` lies inside channel ``k``, so ``lut[:, codes]`` gives the (K, X, Y, Z) masks.
Non-overlapping structures get one code each; a voxel in two structures (liver and liver
tumour, an organ and its group) gets a code of its own for that pair. A case with 117 channels
thus needs about 120 codes and one byte per voxel instead of 117 bits, and a crop expands only
the channels it is asked for, for the crop's voxels only.

Convention: code 0 is the empty set (background) after :func:`masks_to_codes` and
:func:`compact_codes`; :class:`CodedLabels` finds or appends an empty code for padding.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage


def code_dtype(n_codes: int) -> np.dtype:
    """The smallest unsigned dtype holding codes ``0 .. n_codes - 1``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if n_codes - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"too many label codes: {n_codes}")


def _with_empty_first(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique (n, K) bool channel sets -> (lut (K, n_codes) with code 0 empty, code of each row)."""
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)  # rows sort with the empty set first
    empty_first = len(uniq) > 0 and not uniq[0].any()
    lut = uniq if empty_first else np.concatenate([np.zeros((1, rows.shape[1]), bool), uniq])
    return np.ascontiguousarray(lut.T), inv.ravel() + (0 if empty_first else 1)


def masks_to_codes(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compress boolean masks (overlaps allowed) into a code map and lookup table, exactly.

    Args:
        masks: (K, X, Y, Z) bool, any K.

    Returns:
        ``(codes (X, Y, Z) unsigned, lut (K, n_codes) bool)`` with ``lut[:, codes] == masks``
        and code 0 the empty set.
    """
    k = masks.shape[0]
    shape = masks.shape[1:]
    packed = np.packbits(masks.reshape(k, -1), axis=0)  # (ceil(K/8), N): one bit per channel
    fg = np.flatnonzero(packed.any(0))  # labelled voxels; the rest keep code 0
    keys = np.ascontiguousarray(packed[:, fg].T)  # (n_fg, ceil(K/8))
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    lut = np.concatenate([np.zeros((k, 1), bool),
                          np.unpackbits(uniq, axis=1, count=k).T.astype(bool)], axis=1)
    codes = np.zeros(int(np.prod(shape)), dtype=code_dtype(lut.shape[1]))
    codes[fg] = inv.ravel() + 1
    return codes.reshape(shape), lut


def compact_codes(codes: np.ndarray, lut: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop unused codes, merge codes with the same channel set, and make code 0 the empty set.

    Args:
        codes: (X, Y, Z) unsigned code map. lut: (K, n_codes) bool.

    Returns:
        ``(codes, lut)`` describing exactly the same masks, with the fewest codes.
    """
    lut = np.asarray(lut, dtype=bool)
    counts = np.bincount(codes.ravel(), minlength=lut.shape[1])
    if len(counts) > lut.shape[1]:
        raise ValueError(f"code map holds code {len(counts) - 1} but the table has {lut.shape[1]} codes")
    used = np.flatnonzero(counts)
    new_lut, new_code = _with_empty_first(lut[:, used].T)
    remap = np.zeros(lut.shape[1], dtype=code_dtype(new_lut.shape[1]))
    remap[used] = new_code
    return remap[codes], new_lut


def code_stats(codes: np.ndarray, lut: np.ndarray) -> tuple[list[int], list[list[int] | None]]:
    """Voxel count and bounding box of every channel, from the code map in one pass.

    Returns:
        ``voxels`` (K ints) and ``bbox`` (K entries ``[x0, y0, z0, x1, y1, z1]``, stop
        exclusive, or ``None`` for an empty channel).
    """
    counts = np.bincount(codes.ravel(), minlength=lut.shape[1]).astype(np.int64)
    voxels = (lut.astype(np.int64) @ counts).tolist()
    boxes = [None, *ndimage.find_objects(codes.astype(np.int32, copy=False), max_label=lut.shape[1] - 1)]
    if lut[:, 0].any() and counts[0]:  # a table whose code 0 is not the empty set
        boxes[0] = ndimage.find_objects((codes == 0).astype(np.int32))[0]
    out: list[list[int] | None] = []
    for row in lut:
        parts = [boxes[c] for c in np.flatnonzero(row) if boxes[c] is not None]
        out.append([min(p[a].start for p in parts) for a in range(3)]
                   + [max(p[a].stop for p in parts) for a in range(3)] if parts else None)
    return [int(v) for v in voxels], out


@dataclass
class CodedLabels:
    """Concept masks of one case as a code map and lookup table.

    Attributes:
        codes: (X, Y, Z) unsigned code map. lut: (K, n_codes) bool, row k = ``concepts[k]``.
        concepts: channel concept ids. bbox: per channel ``[x0, y0, z0, x1, y1, z1]`` or
            ``None`` when the channel is empty (``meta["bbox"]``; computed when not given).
        soft: optional occupancy band ``(index (M, 2) [channel, flat voxel], value (M,) uint8)``
            (:func:`sat.volume.label_resample.occupancy_edges`), sorted by channel then voxel.
        parts: channel -> the channels it is the union of (groups added by :meth:`with_groups`).
    """

    codes: np.ndarray
    lut: np.ndarray
    concepts: list[str]
    bbox: list[list[int] | None] = field(default_factory=list)
    soft: tuple[np.ndarray, np.ndarray] | None = None
    parts: dict[int, list[int]] = field(default_factory=dict)
    empty_code: int = field(init=False, default=0)  # a code in no channel (used for padding)

    def __post_init__(self) -> None:
        if self.lut.ndim != 2 or self.lut.shape[0] != len(self.concepts):
            raise ValueError(f"lut shape {self.lut.shape} does not match {len(self.concepts)} concepts")
        if not self.bbox:
            self.bbox = code_stats(self.codes, self.lut)[1]
        empty = np.flatnonzero(~self.lut.any(0))
        if empty.size == 0:  # padding needs a code that means "no concept"
            self.lut = np.concatenate([self.lut, np.zeros((len(self.concepts), 1), bool)], axis=1)
            empty = np.array([self.lut.shape[1] - 1])
        self.empty_code = int(empty[0])

    @property
    def present(self) -> list[bool]:
        """Whether each channel has any voxel."""
        return [b is not None for b in self.bbox]

    def masks(self, rows: list[int] | None = None) -> np.ndarray:
        """(len(rows), X, Y, Z) bool masks of the given channels (all by default)."""
        lut = self.lut if rows is None else self.lut[rows]
        return np.take(lut, self.codes, axis=1)

    def select(self, concepts: list[str]) -> CodedLabels:
        """The same case restricted to (and ordered as) ``concepts``, which must all be channels."""
        if list(concepts) == self.concepts:
            return self
        idx = {c: i for i, c in enumerate(self.concepts)}
        missing = [c for c in concepts if c not in idx]
        if missing:
            raise ValueError(f"concepts {missing} have no mask channel; channels: {self.concepts}")
        rows = [idx[c] for c in concepts]
        soft = None
        if self.soft is not None:  # the band of the kept channels, renumbered in their new order
            index, value = self.soft
            new = np.full(len(self.concepts), -1)
            new[rows] = np.arange(len(rows))
            ch = new[index[:, 0].astype(np.int64)]
            keep = np.flatnonzero(ch >= 0)
            keep = keep[np.lexsort((index[keep, 1], ch[keep]))]
            soft = (np.stack([ch[keep], index[keep, 1]], 1).astype(np.uint32), value[keep])
        where = {r: i for i, r in enumerate(rows)}
        parts = {where[g]: [where[k] for k in kids] for g, kids in self.parts.items()
                 if g in where and all(k in where for k in kids)}
        return CodedLabels(self.codes, self.lut[rows], list(concepts), [self.bbox[r] for r in rows], soft, parts)

    def with_groups(self, groups: dict[str, list[str]]) -> CodedLabels:
        """Append the union channel of every group whose children are all channels here.

        Args:
            groups: group id -> child concept ids (e.g. ``kidneys: [kidney_left, kidney_right]``).
        """
        idx = {c: i for i, c in enumerate(self.concepts)}
        ids, rows, boxes, union_of = [], [], [], dict(self.parts)
        for gid, children in groups.items():
            if gid in idx or not children or not all(c in idx for c in children):
                continue
            kids = [idx[c] for c in children]
            union_of[len(self.concepts) + len(ids)] = kids
            ids.append(gid)
            rows.append(self.lut[kids].any(0))
            parts = [self.bbox[k] for k in kids if self.bbox[k] is not None]
            boxes.append([min(p[a] for p in parts) for a in range(3)]
                         + [max(p[a] for p in parts) for a in range(3, 6)] if parts else None)
        if not ids:
            return self
        return CodedLabels(self.codes, np.concatenate([self.lut, np.stack(rows)]), self.concepts + ids,
                           self.bbox + boxes, self.soft, union_of)

    def soft_masks(self, rows: list[int], box: tuple[slice, slice, slice]) -> np.ndarray:
        """(len(rows), *box shape) float32 occupancy of channels ``rows`` inside ``box``: the code
        map's 0 / 1 with the occupancy band written over it; a group channel (:attr:`parts`) is the
        sum of its parts' occupancies, capped at 1 (its parts do not overlap in code maps that
        partition a structure; where they do, the cap keeps it a fraction)."""
        shape = tuple(s.stop - s.start for s in box)
        out = np.take(self.lut[rows], self.codes[box], axis=1).astype(np.float32)
        if self.soft is None:
            return out
        index, value = self.soft
        ch = index[:, 0]
        origin = np.array([s.start for s in box])
        for q, k in enumerate(rows):
            if k in self.parts:
                out[q] = np.minimum(1.0, self.soft_masks(self.parts[k], box).sum(0))
                continue
            lo, hi = np.searchsorted(ch, k, "left"), np.searchsorted(ch, k, "right")
            if lo == hi:
                continue
            xyz = np.stack(np.unravel_index(index[lo:hi, 1].astype(np.int64), self.codes.shape), 1) - origin
            inside = np.all((xyz >= 0) & (xyz < shape), 1)
            out[q][tuple(xyz[inside].T)] = value[lo:hi][inside] / np.float32(255.0)
        return out
