"""Simulated interaction for training: clicks in the prediction's error regions, boxes from the reference.

Clicks go where a user would put them: inside a region the model got wrong, towards its middle.
"Middle" is approximated on the device by repeated 3x3x3 erosion of the error mask (a min-pool):
the deepest non-empty erosion level holds the voxels farthest from the error's border. Training
picks a random level between the border and the deepest one (so clicks are not all perfectly
central), then a random voxel of that level; a missed voxel becomes a positive click, a false
positive a negative one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sat.model.prompts import BOX_2D, BOX_3D, NEGATIVE, NO_BOX, PAD, POSITIVE


def erosion_levels(mask: torch.Tensor, depth: int) -> torch.Tensor:
    """(R, D, H, W) bool -> (depth + 1, R, D*H*W) bool: the mask eroded 0..depth times (3x3x3)."""
    level = mask.float()[:, None]
    out = [level]
    for _ in range(depth):
        level = -F.max_pool3d(-level, 3, stride=1, padding=1)
        out.append(level)
    return torch.stack([lv[:, 0].flatten(1) > 0.5 for lv in out])


def error_clicks(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, *, depth: int = 4,
                 central: bool = False, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per query in its error region.

    Args:
        pred, target: (B, Q, D, H, W) bool. valid: (B, Q) bool (padding and unlabelled queries off).
        depth: erosions tried. central: always the deepest level (else a random level up to it).

    Returns:
        points (B, Q, 3) float voxel positions and labels (B, Q) long: :data:`POSITIVE` for a missed
        voxel, :data:`NEGATIVE` for a false positive, :data:`PAD` where there is no error.
    """
    b, q, *shape = pred.shape
    err = (pred != target) & valid[..., None, None, None]
    levels = erosion_levels(err.reshape(b * q, *shape), depth)  # (L, R, N)
    nonempty = levels.any(-1)  # (L, R)
    deepest = (nonempty.long() * torch.arange(1, depth + 2, device=pred.device)[:, None]).amax(0) - 1  # (R,)
    has = deepest >= 0
    if central:
        chosen = deepest.clamp_min(0)
    else:
        u = torch.rand(deepest.shape, generator=generator, device="cpu").to(pred.device)
        chosen = (u * (deepest + 1).clamp_min(1)).floor().long().clamp_max(deepest.clamp_min(0))
    weights = levels[chosen, torch.arange(b * q, device=pred.device)].float()  # (R, N)
    weights[~has, 0] = 1.0
    flat = torch.multinomial(weights.cpu(), 1, generator=generator)[:, 0].to(pred.device)  # (R,)
    coords = torch.stack(torch.unravel_index(flat, tuple(shape)), dim=-1).float()  # (R, 3)
    hit = target.reshape(b * q, -1).gather(1, flat[:, None])[:, 0]
    labels = torch.where(hit, torch.full_like(flat, POSITIVE), torch.full_like(flat, NEGATIVE))
    labels = torch.where(has, labels, torch.full_like(flat, PAD))
    return coords.view(b, q, 3), labels.view(b, q)


def _extent(mask: torch.Tensor) -> torch.Tensor:
    """(D, H, W) bool, non-empty -> (2, 3) float inclusive bounding-box corners."""
    corners = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = mask.any(dim=other).nonzero()[:, 0]
        corners.append((idx.min(), idx.max()))
    return torch.tensor([[c[0] for c in corners], [c[1] for c in corners]], dtype=torch.float32)


def reference_box(mask: torch.Tensor, *, jitter: float = 0.1, two_d: bool = False,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """A user's box around a non-empty (D, H, W) mask: ``(corners (2, 3), kind)``.

    3D: the bounding box, each face moved by a Gaussian of ``jitter`` times the extent.
    2D (``two_d``): a random axis and a slice through the structure's middle half, boxed in that
    slice and jittered in-plane; the box is flat along the chosen axis.
    """
    m = mask.bool().cpu()
    if not m.any():
        raise ValueError("reference_box needs a non-empty mask")
    box = _extent(m)
    kind = BOX_3D
    if two_d:
        axis = int(torch.randint(3, (1,), generator=generator))
        lo, hi = int(box[0, axis]), int(box[1, axis])
        quarter = (hi - lo) // 4
        s = int(torch.randint(lo + quarter, hi - quarter + 1, (1,), generator=generator))
        plane = m.select(axis, s)
        if not plane.any():  # a structure with a hole at that slice: use its widest slice
            s = int(m.sum(dim=tuple(a for a in range(3) if a != axis)).argmax())
            plane = m.select(axis, s)
        box = _extent(plane.unsqueeze(axis))
        box[:, axis] = float(s)
        kind = BOX_2D
    ext = (box[1] - box[0] + 1)
    noise = torch.randn(2, 3, generator=generator) * jitter * ext
    if kind == BOX_2D:
        noise[:, axis] = 0.0
    box = box + noise
    lo, hi = torch.minimum(box[0], box[1]), torch.maximum(box[0], box[1])
    return torch.stack([lo, hi]), kind


def reference_boxes(target: torch.Tensor, use: torch.Tensor, *, jitter: float, p2d: float,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes for the queries ``use`` (B, Q) bool whose (B, Q, D, H, W) target is non-empty.

    Returns boxes (B, Q, 2, 3) and box_kind (B, Q) (:data:`NO_BOX` elsewhere)."""
    b, q = use.shape
    boxes = torch.zeros(b, q, 2, 3)
    kind = torch.full((b, q), NO_BOX, dtype=torch.long)
    for i, j in use.nonzero().tolist():
        if target[i, j].any():
            two_d = bool(torch.rand(1, generator=generator) < p2d)
            boxes[i, j], kind[i, j] = reference_box(target[i, j], jitter=jitter, two_d=two_d, generator=generator)
    return boxes.to(target.device), kind.to(target.device)
