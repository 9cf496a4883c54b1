"""Interactive refinement on cached image features: text plus clicks and boxes.

Clicks and boxes come in world millimetres (RAS+, the frame of :attr:`Volume.affine`), or as voxel
indices of the input image with ``space="voxel"``; they are mapped to the model grid here, so they
survive the resampling. The image's backbone features are the ones :meth:`Segmenter.segment`
cached (the same :class:`Volume` object), so a click costs only the head over the windows and the
restore to the input grid. Points are the whole click history: each call answers "text + all these
clicks". Clicks are taken one at a time: the answer after click k is the answer after click k-1,
changed only where the network's answer to clicks 1..k differs from it in regions connected to
click k, and only in the click's direction (a positive click adds foreground, a negative one
removes it; :mod:`sat.infer.click_locality`), so a later click never undoes an earlier correction
elsewhere and a "this is the structure" click never erases the structure; a click the answer still
contradicts at its own position is honoured there and at the like voxels around it, and within four
voxels of a click the cut moves 0.2 towards the click's label. The restore then reads the mask at a
cut the clicks' signs moved, a little down per positive click and up per negative one
(:mod:`sat.infer.click_cut`), and applies the structure's component rule to the restored mask as
``segment`` does, keeping every component that holds a positive click. With a box, the
answer stays inside the box grown by a tenth (:func:`confine_to_box`) unless a positive click lies
outside it.
The answers to the history's prefixes are cached with the features (the answer depends on the
click history alone, not on which calls came before).

Bad input never raises anything but :class:`InputError` (one line): a point outside the image, a box
outside it or flat along two or more axes, negative clicks alone with neither text nor box. A click
inside the image but outside the model grid (the background the preprocessing cropped away) is
dropped with a warning, and negative clicks on an empty mask are ignored with a warning.
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

import numpy as np
import torch

from sat.errors import InputError
from sat.infer.answer_memo import answer_key, remember
from sat.infer.click_cut import click_cut
from sat.infer.click_locality import accept_near_clicks, click_points, click_voxels, extend_click, honour_click
from sat.infer.postprocess import fraction_of
from sat.model.prompts import BOX_2D, BOX_3D, NEGATIVE, NO_BOX, POSITIVE, Prompts

log = logging.getLogger(__name__)
# A box is read as the structure's extent give or take this share of it (training jitters boxes by
# a tenth): the answer never leaves the box grown by it (:func:`confine_to_box`).
BOX_MARGIN = 0.1
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_POINT = re.compile(rf"\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*(?:,\s*([+-]|pos|neg)\s*)?")


def parse_point(text: str) -> tuple[tuple[float, float, float], bool]:
    """``"x,y,z[,+|-]"`` -> ((x, y, z), positive); ``+`` by default. InputError on anything else."""
    m = _POINT.fullmatch(str(text))
    if not m:
        raise InputError(f"bad point {text!r}: expected x,y,z or x,y,z,+ or x,y,z,- (numbers, mm)")
    return (float(m[1]), float(m[2]), float(m[3])), m[4] not in ("-", "neg")


def parse_box(text: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``"x0,y0,z0,x1,y1,z1"`` -> two corners. InputError on anything else."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 6 or not all(re.fullmatch(_NUM, p) for p in parts):
        raise InputError(f"bad box {text!r}: expected x0,y0,z0,x1,y1,z1 (two opposite corners, mm)")
    v = [float(p) for p in parts]
    return tuple(v[:3]), tuple(v[3:])


def _world(points: np.ndarray, volume, space: str) -> np.ndarray:
    """(N, 3) points in ``space`` -> world mm."""
    if space == "world":
        return points
    if space == "voxel":
        return (volume.affine @ np.c_[points, np.ones(len(points))].T).T[:, :3]
    raise InputError(f"unknown point space {space!r}; expected 'world' or 'voxel'")


def _to_voxels(world: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(N, 3) world mm -> (N, 3) float voxel positions of the grid with ``affine``."""
    return (np.linalg.inv(affine) @ np.c_[world, np.ones(len(world))].T).T[:, :3]


def _inside(vox: np.ndarray, shape) -> np.ndarray:
    return np.all((vox >= -0.5) & (vox <= np.asarray(shape) - 0.5), axis=1)


def grid_prompts(points, box, volume, model_affine: np.ndarray, grid_shape, *, has_text: bool,
                 n_queries: int = 1, space: str = "world") -> Prompts:
    """Clicks ``[((x, y, z), positive), ...]`` and ``box`` (two corners or None) -> model-grid :class:`Prompts`.

    Raises:
        InputError: a point or the box outside the image, a box flat along two or more axes, or
            nothing to segment (no text, no positive click, no box).
    """
    pts = np.array([p for p, _ in points], dtype=float).reshape(-1, 3)
    signs = [bool(s) for _, s in points]
    world = _world(pts, volume, space)
    where = "voxel" if space == "voxel" else "mm"
    for p, ok in zip(pts, _inside(_to_voxels(world, volume.affine), volume.shape)):
        if not ok:
            raise InputError(f"point ({', '.join(f'{x:g}' for x in p)}) {where} lies outside the image "
                             f"(shape {volume.shape}); points are {'voxel indices' if space == 'voxel' else 'world RAS mm'}")
    vox = _to_voxels(world, model_affine)
    keep = _inside(vox, grid_shape)
    for p, ok in zip(pts, keep):
        if not ok:
            log.warning("click at (%s) %s ignored: it lies in background the model never sees (outside the "
                        "body crop)", ", ".join(f"{x:g}" for x in p), where)
    vox, signs = vox[keep], [s for s, k in zip(signs, keep) if k]
    prompts = Prompts.empty(1, n_queries, k=len(signs))
    for k, (v, s) in enumerate(zip(vox, signs)):
        prompts.points[0, :, k] = torch.tensor(v, dtype=torch.float32)
        prompts.labels[0, :, k] = POSITIVE if s else NEGATIVE
    if box is not None:
        corners = _world(np.array(box, dtype=float).reshape(2, 3), volume, space)
        img = _to_voxels(corners, volume.affine)
        lo_i, hi_i = img.min(0), img.max(0)
        if np.any(hi_i < -0.5) or np.any(lo_i > np.asarray(volume.shape) - 0.5):
            raise InputError(f"box {np.round(corners, 1).tolist()} mm lies outside the image (shape {volume.shape})")
        g = _to_voxels(corners, model_affine)
        lo, hi = g.min(0), g.max(0)
        flat = [int(a) for a in np.nonzero(hi - lo < 0.5)[0]]
        if len(flat) >= 2:
            raise InputError(f"box {np.round(corners, 1).tolist()} has (almost) zero extent along "
                             f"{len(flat)} axes; give two opposite corners of a 3D box, or of a 2D box on one slice")
        lo, hi = np.clip(lo, 0, np.asarray(grid_shape) - 1), np.clip(hi, 0, np.asarray(grid_shape) - 1)
        if flat:
            mid = round(float((lo[flat[0]] + hi[flat[0]]) / 2))
            lo[flat[0]] = hi[flat[0]] = mid
        prompts.boxes[0, :] = torch.tensor(np.stack([lo, hi]), dtype=torch.float32)
        prompts.box_kind[0, :] = BOX_2D if flat else BOX_3D
    prompts.has_text[:] = has_text
    if not has_text and box is None and not any(signs):
        raise InputError("without a text prompt, give a positive click or a box (negative clicks alone "
                         "leave nothing to segment)")
    return prompts


def ensure_prompt_encoder(net) -> bool:
    """Give a checkpoint trained without clicks the untrained prompt rule; True when one was added."""
    head = net.head
    if not hasattr(head, "add_prompt_encoder"):
        raise InputError(f"this checkpoint's head ({type(head).__name__}) cannot take clicks or boxes; "
                         "refinement needs the query_decoder head")
    if head.prompt is not None:
        return False
    head.add_prompt_encoder().eval()
    return True


def _click(p) -> tuple[tuple[float, float, float], bool]:
    """A click as ``"x,y,z[,+|-]"``, ``(x, y, z)``, ``(x, y, z, positive)`` (bool or "+"/"-") or
    ``((x, y, z), positive)`` (:func:`parse_point`'s result)."""
    if isinstance(p, str):
        return parse_point(p)
    if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], (tuple, list)):  # parse_point's own form
        p = (*p[0], p[1])
    try:
        vals = list(p)
        xyz = tuple(float(v) for v in vals[:3])
    except (TypeError, ValueError):
        raise InputError(f"bad point {p!r}: expected (x, y, z) or (x, y, z, positive)") from None
    if len(vals) not in (3, 4) or not np.all(np.isfinite(xyz)):
        raise InputError(f"bad point {p!r}: expected 3 finite coordinates and an optional sign")
    sign = vals[3] if len(vals) == 4 else True
    return xyz, sign not in ("-", "neg", False, 0)


def _cut(seg, concepts: list[str], has_text: bool) -> tuple[float, float]:
    """The foreground threshold and component fraction ``segment`` gives this text (the checkpoint's
    per-concept choices; a group's lowest threshold and no component rule), or 0.5 and none
    without text."""
    if not has_text:
        return 0.5, 0.0
    cut = min(seg.thresholds.get(c, 0.5) for c in concepts)
    if len(concepts) != 1:  # a group is the max of its members: segment cuts components per member
        return cut, 0.0
    return cut, fraction_of(seg.components, concepts[0])


def _no_clicks(seg, cache, concepts: list[str], prompts: Prompts | None, has_text: bool, volume,
               modality: str) -> torch.Tensor:
    """(x, y, z) probabilities of the text and / or box, as ``segment`` answers the text before its
    post-processing: with its mirrored pass (text alone, when the Segmenter mirrors)."""
    from sat.model.sliding_window import decode_prompts

    if has_text and prompts is None and seg.mirrors:
        views, _ = seg._prepare(volume, modality, True)  # the cached image and its mirror
        probs = seg._decode(views, concepts).amax(0)
    else:
        probs = decode_prompts(seg.net, cache, concepts, device=seg.device, prompts=prompts).amax(0)
    return probs  # the component rule comes after the restore, on the input grid (see refine)


def _before_clicks(seg, cache, concepts: list[str], box, volume, pre, space: str, has_text: bool,
                   modality: str) -> torch.Tensor:
    """(x, y, z) probabilities of the text and box alone (zeros when neither), cached per volume."""
    if not has_text and box is None:
        return torch.zeros(cache.shape, dtype=torch.float16)
    key = answer_key(concepts, box, has_text, space)
    if key not in seg._cache.get("before_clicks", {}):
        prompts = None if box is None else grid_prompts([], box, volume, pre["affine"], cache.shape,
                                                         has_text=has_text, n_queries=len(concepts), space=space)
        answer = _no_clicks(seg, cache, concepts, prompts, has_text, volume, modality)
        # stored after the answer: its mirrored pass may have replaced the cache (image + mirror)
        remember(seg._cache.setdefault("before_clicks", {}), key, answer)
    return seg._cache["before_clicks"][key]


def confine_to_box(probs: torch.Tensor, prompts: Prompts | None,
                   margin: float = BOX_MARGIN) -> torch.Tensor:
    """(X, Y, Z) model-grid probabilities with everything outside the box, grown by ``margin`` of
    its extent and one voxel on each side, set to 0 (a 2D box: in its plane only).

    A box says where the structure is; without this, a positive click on a small lesion in its box
    flooded the organ around it (a liver tumour's box answer went from 0.81 to 0.21 Dice, 1,189
    voxels outside the box, and to 0.01 after three clicks). A positive click outside the grown box
    outranks the box: then nothing is cut.
    """
    if prompts is None or not bool((prompts.box_kind[0, 0] != NO_BOX).item()):
        return probs
    lo, hi = prompts.boxes[0, 0, 0].cpu().numpy(), prompts.boxes[0, 0, 1].cpu().numpy()
    grow = margin * (hi - lo) + 1.0
    lo, hi = lo - grow, hi + grow
    if int(prompts.box_kind[0, 0]) == BOX_2D:  # the slice axis is not bounded by a box on one slice
        flat = int(np.argmin(hi - lo))
        lo[flat], hi[flat] = -np.inf, np.inf
    points, sign = click_points(prompts)
    positive = np.rint(points[sign])
    if len(positive) and not np.all((positive >= lo) & (positive <= hi)):
        return probs
    grid = [torch.arange(n, device=probs.device, dtype=torch.float32) for n in probs.shape]
    inside = [(g >= float(a)) & (g <= float(b)) for g, a, b in zip(grid, lo, hi)]
    return probs * (inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :])


def _prefix(prompts: Prompts, k: int) -> Prompts:
    """``prompts`` with its first ``k`` clicks only (the box and text flags unchanged)."""
    return replace(prompts, points=prompts.points[:, :, :k], labels=prompts.labels[:, :, :k])


def _click_by_click(seg, cache, concepts: list[str], before: torch.Tensor, prompts: Prompts, box, space: str,
                    has_text: bool, cut: float = 0.5) -> torch.Tensor:
    """(x, y, z) probabilities of the clicks taken one at a time, each kept only near itself.

    The answer after clicks 1..k is the answer after clicks 1..k-1, changed only where the network's
    answer to clicks 1..k differs from it in regions connected to click k
    (:func:`~sat.infer.click_locality.accept_near_clicks`): a later click cannot undo what an earlier
    one corrected elsewhere, and each click is honoured where it was made
    (:func:`~sat.infer.click_locality.honour_click`), and near it the foreground cut moves towards
    the click's label (:func:`~sat.infer.click_locality.extend_click`). The answer depends on the click history alone
    (answers to its prefixes are cached with the image's features, so the usual one-more-click call
    decodes once).
    The network answers click k only in the windows within a quarter window of it
    (:func:`~sat.model.sliding_window.decode_near`), so one click changes at most that region.
    """
    from sat.model.sliding_window import decode_near

    points, positive = click_points(prompts)  # float positions: where the restore reads
    voxels = click_voxels(prompts)
    memo = seg._cache.setdefault("click_history", {})
    base = answer_key(concepts, box, has_text, space)
    probs = before
    for k in range(1, prompts.n_clicks + 1):
        key = base + (voxels[:k].tobytes(), positive[:k].tobytes())
        if key not in memo:
            answer, exact = decode_near(seg.net, cache, concepts, voxels[k - 1], device=seg.device,
                                        prompts=_prefix(prompts, k))
            answer = torch.where(exact, answer.amax(0), probs)  # beyond the click's windows: unchanged
            kept = accept_near_clicks(probs, answer, voxels[k - 1:k], cut, positive=positive[k - 1:k])
            kept = honour_click(kept, points[k - 1], positive[k - 1], cut)
            remember(memo, key, extend_click(kept, points[k - 1], positive[k - 1], cut))
        probs = memo[key]
    return probs


def _named_box(seg, cache, prompts: Prompts, box, space: str, modality: str):
    """The known structure a text-less box names (:func:`sat.infer.box_naming.name_box`), cached per image."""
    from sat.infer.box_naming import name_box

    memo = seg._cache.setdefault("named_boxes", {})
    key = answer_key([], box, False, space)
    if key not in memo:
        named = name_box(seg, cache, prompts, modality)
        if named is not None:
            log.info("the box names %s (fit %.2f)", seg.tree.get(named.concept).name, named.fit)
        remember(memo, key, named)
    return memo[key]


def refine(seg, target, prompt: str | None = None, points=(), box=None, *, modality: str | None = None,
           space: str = "world", probabilities: bool = False, local: bool = True, name_boxes: bool = True):
    """The body of :meth:`Segmenter.refine` (see there); returns a one-structure result."""
    from sat.infer.result import SegmentationResult, Structure
    from sat.infer.restore import restore_prompts
    from sat.io.volume import Volume, load_volume
    from sat.model.sliding_window import decode_prompts

    if isinstance(target, SegmentationResult):
        volume, modality = target.volume, modality or target.modality
    else:
        volume = target if isinstance(target, Volume) else load_volume(target)
    clicks = [_click(p) for p in (points or [])]
    if isinstance(box, str):
        box = parse_box(box)
    plans, concept = [], None
    if prompt:
        plan = seg.plan([str(prompt)])[0]
        if not plan.concepts:
            raise InputError(f"prompt {prompt!r} cannot be segmented: {plan.refused}")
        plans, concepts, concept = [plan], plan.concepts, seg.tree.get(plan.resolution.concept)
    else:
        concepts = [seg.net.concept_ids[0]]  # any row: a query without text uses the no-text query
    if not clicks and box is None and not prompt:
        raise InputError("nothing to segment: give a text prompt, clicks or a box")
    modality = seg._modality(volume, modality, plans)
    features, pre = seg._prepare(volume, modality, False)
    prompts = grid_prompts(clicks, box, volume, pre["affine"], features[0].shape, has_text=bool(prompt),
                           n_queries=len(concepts), space=space)
    if ensure_prompt_encoder(seg.net):  # after the input checks: bad input gets one line, not two
        seg._warn_once("untrained_prompts", "this checkpoint was not trained with clicks: each click adds or "
                                            "removes a blob around itself and a box cuts the mask to the box")
    named = None
    if name_boxes and box is not None and not prompt:
        named = _named_box(seg, features[0], prompts, box, space, modality)
    if named is not None:  # the box names a known structure: answered as its name and the box would be
        concepts, concept = list(named.members), seg.tree.get(named.concept)
        prompts = grid_prompts(clicks, box, volume, pre["affine"], features[0].shape, has_text=True,
                               n_queries=len(concepts), space=space)
    has_text = bool(prompt) or named is not None
    asked = prompts  # the clicks and box as given (``prompts`` becomes None for ignored clicks)
    cut, fraction = _cut(seg, concepts, has_text)
    negative_only = bool(prompt) and box is None and not bool((prompts.labels == POSITIVE).any())
    before = None  # the answer without clicks: for locality, and to see whether a negative click has a mask to cut
    if prompts.n_clicks and (local or negative_only):
        before = _before_clicks(seg, features[0], concepts, box, volume, pre, space, has_text, modality)
    if negative_only and before is not None:
        if not bool((before > cut).any()):
            log.warning("negative click(s) ignored: the mask for %r is empty, there is nothing to correct", prompt)
            prompts = None
    if local and before is not None and prompts is not None and prompts.n_clicks:
        probs = _click_by_click(seg, features[0], concepts, before, prompts, box, space, has_text, cut)
    elif prompts is None or not prompts.n_clicks:  # text and / or box only: as segment post-processes it
        probs = before if before is not None else _before_clicks(seg, features[0], concepts, box, volume, pre,
                                                                  space, has_text, modality)
    else:
        probs = decode_prompts(seg.net, features[0], concepts, device=seg.device, prompts=prompts).amax(0)
    probs = confine_to_box(probs, asked)
    clicked = prompts is not None and bool(prompts.n_clicks)
    if clicked:  # the clicks' signs move the whole mask's cut
        cut = click_cut(cut, probs, *click_points(prompts))
    side = concept.laterality if concept is not None else "none"
    # the component rule on the input grid, as segment applies it; a component that holds a
    # positive click is kept whatever its size (a click may add a piece on purpose)
    held = np.array([xyz for xyz, positive in clicks if positive], dtype=float).reshape(-1, 3)
    keep = np.rint(_to_voxels(_world(held, volume, space), volume.affine)).astype(int) if clicked else []
    # a median structure's pieces away from the body's midline go, as segment drops them
    plane = seg.midline_of(volume) if has_text and len(concepts) == 1 and concepts[0] in seg.midline_concepts else None
    r = restore_prompts(probs[None], pre["affine"], volume, [side], keep_probabilities=probabilities,
                        thresholds=[cut], fractions=[fraction], keep_voxels=[keep], midline=plane,
                        on_midline=[plane is not None])[0]
    n_pos = sum(s for _, s in clicks)
    stats = {**r.stats, "clicks": {"positive": n_pos, "negative": len(clicks) - n_pos}, "box": box is not None}
    if named is not None:
        stats["box_names"] = {"concept": named.concept, "fit": named.fit}
    s = Structure(prompt=str(prompt or ("boxed structure" if named else "clicked structure")),
                  concept=concept.id if concept else "interactive",
                  name=concept.name if concept else "clicked structure", used_concepts=concepts if has_text else [],
                  mask=r.mask, prob=r.prob, laterality=side, stats=stats)
    return SegmentationResult(volume=volume, modality=modality, structures=[s], refused=[])
