"""Spatial prompts of each query: clicks and boxes, in voxel coordinates of the decoded grid.

A query may come with positive and negative 3D points and one box (a 3D box, or a 2D box drawn on
one slice). Coordinates are voxel positions (float, voxel centres at integers) of the grid the head
decodes: a training crop, or one sliding window, which :meth:`Prompts.shifted` produces from the
whole model grid. Converting world millimetres to model-grid voxels is the caller's job
(:mod:`sat.infer.refine`), so prompts survive resampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

POSITIVE, NEGATIVE, PAD = 1, 0, -1
NO_BOX, BOX_3D, BOX_2D = 0, 1, 2


@dataclass
class Prompts:
    """Clicks and boxes of B x Q queries.

    Attributes:
        points: (B, Q, K, 3) float voxel positions (K may be 0).
        labels: (B, Q, K) long: :data:`POSITIVE`, :data:`NEGATIVE` or :data:`PAD`.
        boxes: (B, Q, 2, 3) float low and high corners (inclusive voxel centres).
        box_kind: (B, Q) long: :data:`NO_BOX`, :data:`BOX_3D` or :data:`BOX_2D` (flat along one axis).
        has_text: (B, Q) bool; False: the head's learned no-text query stands in for the text.
    """

    points: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    box_kind: torch.Tensor
    has_text: torch.Tensor

    def __post_init__(self) -> None:
        b, q = self.has_text.shape
        checks = {"points": (self.points, (b, q, None, 3)), "labels": (self.labels, (b, q, None)),
                  "boxes": (self.boxes, (b, q, 2, 3)), "box_kind": (self.box_kind, (b, q))}
        for name, (t, shape) in checks.items():
            if t.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, t.shape)):
                raise ValueError(f"prompts.{name} has shape {tuple(t.shape)}, expected {shape} (None: any)")
        if self.points.shape[2] != self.labels.shape[2]:
            raise ValueError(f"{self.points.shape[2]} points but {self.labels.shape[2]} labels")

    @classmethod
    def empty(cls, b: int, q: int, k: int = 0, device=None) -> Prompts:
        """No clicks (K padded slots), no box, text present."""
        return cls(points=torch.zeros(b, q, k, 3, device=device), labels=torch.full((b, q, k), PAD, device=device),
                   boxes=torch.zeros(b, q, 2, 3, device=device),
                   box_kind=torch.zeros(b, q, dtype=torch.long, device=device),
                   has_text=torch.ones(b, q, dtype=torch.bool, device=device))

    @property
    def n_clicks(self) -> int:
        return self.points.shape[2]

    def is_empty(self) -> bool:
        """True when no query has a click or a box and every query has text."""
        return bool((self.labels == PAD).all() and (self.box_kind == NO_BOX).all() and self.has_text.all())

    def shifted(self, offset) -> Prompts:
        """The same prompts in a window starting at voxel ``offset`` (3 ints) of the grid."""
        off = torch.as_tensor(offset, dtype=self.points.dtype, device=self.points.device)
        return replace(self, points=self.points - off, boxes=self.boxes - off)

    def to(self, device) -> Prompts:
        return Prompts(*(t.to(device) for t in (self.points, self.labels, self.boxes, self.box_kind, self.has_text)))

    def append_clicks(self, points: torch.Tensor, labels: torch.Tensor) -> Prompts:
        """A copy with one more click slot: points (B, Q, 3), labels (B, Q) (:data:`PAD` = none)."""
        return replace(self, points=torch.cat([self.points, points[:, :, None].to(self.points.dtype)], dim=2),
                       labels=torch.cat([self.labels, labels[:, :, None].to(self.labels.dtype)], dim=2))

    def with_click(self, b: int, q: int, point, label: int) -> Prompts:
        """A copy with one more click slot, filled for query (b, q) only."""
        pts = torch.cat([self.points, self.points.new_zeros(*self.points.shape[:2], 1, 3)], dim=2)
        lab = torch.cat([self.labels, self.labels.new_full((*self.labels.shape[:2], 1), PAD)], dim=2)
        pts[b, q, -1] = torch.as_tensor(point, dtype=pts.dtype)
        lab[b, q, -1] = int(label)
        return replace(self, points=pts, labels=lab)


def box_3d(boxes: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """(..., 2, 3) corners; a 2D box's flat axis gets a depth of half its mean in-plane extent each way."""
    lo, hi = boxes[..., 0, :], boxes[..., 1, :]
    ext = (hi - lo).clamp_min(0) + 1  # (..., 3) voxels covered
    flat = (ext <= 1.0) & (kind == BOX_2D)[..., None]  # the slice axis of a 2D box
    inplane = (ext * (~flat)).sum(-1, keepdim=True) / (~flat).sum(-1, keepdim=True).clamp_min(1)
    grow = torch.where(flat, inplane.expand_as(ext) / 2, torch.zeros_like(ext))
    return torch.stack([lo - grow, hi + grow], dim=-2)


def box_gate(boxes: torch.Tensor, kind: torch.Tensor, shape, softness: float = 0.25) -> torch.Tensor:
    """(B, Q, 2, 3) boxes -> (B, Q, D, H, W) soft inside-indicator (0 for queries without a box)."""
    corners = box_3d(boxes, kind)
    gate = None
    for axis, n in enumerate(shape):
        x = torch.arange(n, device=boxes.device, dtype=boxes.dtype)
        lo = corners[..., 0, axis, None] - 0.5
        hi = corners[..., 1, axis, None] + 0.5
        g = torch.sigmoid((x - lo) / softness) * torch.sigmoid((hi - x) / softness)  # (B, Q, n)
        view = [*g.shape[:2]] + [1, 1, 1]
        view[2 + axis] = n
        g = g.view(view)
        gate = g if gate is None else gate * g
    return gate * (kind != NO_BOX).to(gate.dtype)[..., None, None, None]


def point_gates(points: torch.Tensor, sigma: torch.Tensor, shape) -> torch.Tensor:
    """Gaussian weight of every voxel around each click.

    Args:
        points: (B, Q, K, 3) voxel positions. sigma: (B, Q, K) radii in voxels. shape: (D, H, W).

    Returns:
        (B, Q, K, D, H, W): ``exp(-|x - p|^2 / (2 sigma^2))``, separable over the three axes.
    """
    gate = None
    for axis, n in enumerate(shape):
        x = torch.arange(n, device=points.device, dtype=points.dtype)
        g = torch.exp(-0.5 * ((x - points[..., axis, None]) / sigma[..., None]) ** 2)  # (B, Q, K, n)
        view = [*g.shape[:3], 1, 1, 1]
        view[3 + axis] = n
        g = g.view(view)
        gate = g if gate is None else gate * g
    return gate


def grid_fraction(points: torch.Tensor, patch, grid) -> torch.Tensor:
    """Voxel positions in a window of ``patch`` voxels -> the [0, 1] frame of its token grid.

    Token ``i`` of an ``n``-cell axis sits at ``i / (n - 1)`` in :func:`sincos_3d`; its cell's centre
    is voxel ``(i + 0.5) * patch / n - 0.5``. Points map to the same frame, so a click's position
    encoding matches the visual tokens around it.
    """
    out = []
    for axis, (p, n) in enumerate(zip(patch, grid)):
        cell = (points[..., axis] + 0.5) * n / p - 0.5
        out.append(cell / max(n - 1, 1))
    return torch.stack(out, dim=-1)


def sincos_points(frac: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., 3) positions in [0, 1] -> (..., dim): the encoding :func:`sincos_3d` gives a grid."""
    per_axis = (dim // 6) * 2
    freqs = torch.exp(torch.arange(per_axis // 2, device=frac.device)
                      * (-math.log(1000.0) / max(per_axis // 2, 1)))
    parts = []
    for axis in range(3):
        ang = frac[..., axis, None].float() * freqs * 2 * math.pi * 8
        parts += [ang.sin(), ang.cos()]
    enc = torch.cat(parts, dim=-1)
    return torch.nn.functional.pad(enc, (0, dim - enc.shape[-1]))
