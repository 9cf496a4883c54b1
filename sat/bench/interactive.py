"""``sat benchmark interactive``: a simulated user corrects masks click by click.

Two protocols per annotated structure, both on the image's own grid and through the public API
(:meth:`Segmenter.segment` then :meth:`Segmenter.refine`, so the backbone runs once per image):

- ``text``: the structure's name, then up to ``clicks`` corrections;
- ``box``: no text, the reference's bounding box (two opposite corners in mm), then corrections.

Each click goes where an interactive challenge's robot user puts it: at the voxel farthest from the
border (in mm) inside the largest connected error region, positive where the reference has the
structure and negative where it does not. Dice and NSD are recorded after every step; the area
under the Dice-per-click curve is normalised to [0, 1] (a perfect curve is 1).
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sat.bench.phantom_cases import NSD_TOLERANCE_VOXELS, HeldOutCase
from sat.errors import InputError
from sat.eval.metrics import dice, nsd

PROTOCOLS = ("text", "box")


def next_click(pred: np.ndarray, gt: np.ndarray, spacing) -> tuple[tuple[int, int, int], bool] | None:
    """The robot user's click: ``((i, j, k), positive)`` at the centre of the largest error, or None.

    The centre is the voxel farthest (mm) from the error's border; among equally far voxels, the
    one nearest their mean."""
    from scipy import ndimage

    err = pred.astype(bool) ^ gt.astype(bool)
    if not err.any():
        return None
    lab, _ = ndimage.label(err)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    big = int(sizes.argmax())
    sl = ndimage.find_objects((lab == big).astype(np.uint8))[0]
    comp = np.pad(lab[sl] == big, 1)  # a border of background: the image edge counts as the error's edge
    dist = ndimage.distance_transform_edt(comp, sampling=[float(s) for s in spacing])[1:-1, 1:-1, 1:-1]
    best = np.argwhere(dist >= dist.max() - 1e-6)  # ties (slabs, tubes): the one nearest their middle
    local = best[np.argmin(((best - best.mean(0)) ** 2).sum(1))]
    ijk = tuple(int(a + s.start) for a, s in zip(local, sl))
    return ijk, bool(gt[ijk])


def world(volume, ijk) -> tuple[float, float, float]:
    return tuple(float(v) for v in (volume.affine @ np.r_[np.asarray(ijk, dtype=float), 1.0])[:3])


def reference_box(volume, gt: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Two opposite corners (mm) of the reference mask's voxel bounding box."""
    idx = np.argwhere(gt)
    return world(volume, idx.min(0)), world(volume, idx.max(0))


@dataclass
class Curve:
    """One structure under one protocol: scores after 0..n clicks and each click's latency."""

    dataset: str
    case_id: str
    concept: str
    protocol: str
    dice: list[float] = field(default_factory=list)
    nsd: list[float] = field(default_factory=list)
    click_s: list[float] = field(default_factory=list)

    @property
    def auc(self) -> float:
        d = np.asarray(self.dice, dtype=float)
        return float(np.trapezoid(d) / max(len(d) - 1, 1)) if len(d) > 1 else float(d[0])


def _score(curve: Curve, mask: np.ndarray, gt: np.ndarray, tol: float, spacing) -> None:
    curve.dice.append(float(dice(mask, gt)))
    curve.nsd.append(float(nsd(mask, gt, spacing, tol)))


def simulate(seg, case: HeldOutCase, k: int, protocol: str, prompt: str | None, n_clicks: int,
             local: bool = True, name_boxes: bool = True) -> Curve | None:
    """Run one protocol on structure ``k`` of ``case``; None when the text protocol's prompt is refused.
    ``local``: :meth:`Segmenter.refine`'s click locality (False: the whole clicked answer);
    ``name_boxes``: its box naming (False: the text-less box answer)."""
    gt = case.masks[k].astype(bool)
    vol, spacing = case.volume, case.volume.spacing
    tol = NSD_TOLERANCE_VOXELS * float(min(spacing))
    curve = Curve(case.dataset, case.case_id, case.concepts[k], protocol)
    box = None
    if protocol == "text":
        res = seg.segment(vol, [prompt], modality=case.modality)
        if not res.structures:
            return None
        text = prompt
    else:
        box, text = reference_box(vol, gt), None
        res = seg.refine(vol, None, box=box, modality=case.modality, name_boxes=name_boxes)
    mask = res.structures[0].mask
    _score(curve, mask, gt, tol, spacing)
    points: list[tuple] = []
    for _ in range(n_clicks):
        click = next_click(mask, gt, spacing)
        if click is None:  # nothing left to correct: the curve stays where it is
            curve.dice.append(curve.dice[-1])
            curve.nsd.append(curve.nsd[-1])
            continue
        points.append((*world(vol, click[0]), click[1]))
        t = time.perf_counter()
        mask = seg.refine(vol, text, points, box, modality=case.modality, local=local,
                          name_boxes=name_boxes).structures[0].mask
        curve.click_s.append(time.perf_counter() - t)
        _score(curve, mask, gt, tol, spacing)
    return curve


def run_cases(seg, cases: Iterable[HeldOutCase], n_clicks: int = 5, protocols=PROTOCOLS,
              log=print, local: bool = True, name_boxes: bool = True) -> list[Curve]:
    """Both protocols on every annotated, non-empty structure of every case."""
    curves = []
    for case in cases:
        for k, cid in enumerate(case.concepts):
            if not case.masks[k].any():
                continue
            name = seg.tree.get(cid).name
            for protocol in protocols:
                if protocol == "text" and cid not in seg.trained:
                    continue
                try:
                    c = simulate(seg, case, k, protocol, name, n_clicks, local, name_boxes)
                except InputError as exc:  # e.g. a structure lying in cropped background
                    log(f"{case.case_id} {cid} {protocol}: skipped ({exc})")
                    continue
                if c is not None:
                    curves.append(c)
                    log(f"{case.dataset} {case.case_id} {cid:28} {protocol:4} dice "
                        + " ".join(f"{d:.3f}" for d in c.dice))
        seg.clear_cache()
    return curves


def case_sources(data: str, phantoms: Path | None, max_cases: int, seed: int = 7) -> Iterator[HeldOutCase]:
    """Held-out cases: ``real`` (the validation patients of the real profile's datasets, each
    skipped when ../shared is absent), ``phantom`` (the test split of phantoms in ``phantoms``,
    generated there with ``seed`` when missing) or ``both``."""
    from sat.bench.config import load_profile, resolve_path

    if data not in ("real", "phantom", "both"):
        raise InputError(f"unknown --data {data!r}; expected real, phantom or both")
    if data in ("phantom", "both"):
        from sat.bench.phantom_cases import held_out_cases

        folder = Path(phantoms) if phantoms else resolve_path("outputs/benchmark/interactive_phantoms")
        if not (folder / "phantoms.json").is_file():
            from sat.data.phantoms.generate import generate_phantoms

            generate_phantoms(folder, max(3, 3 * max_cases * 4), seed)  # the test split is about a quarter
        yield from itertools.islice(held_out_cases(folder), 3 * max_cases if max_cases > 0 else None)
    if data in ("real", "both"):
        from sat.bench.real_cases import validation_cases

        for ds in load_profile("real", "full").datasets.values():
            root = resolve_path(ds.root)
            if root.is_dir():
                yield from validation_cases(ds.recipe, root, max_cases)


def run_benchmark(checkpoint: Path, *, data: str = "real", phantoms: Path | None = None, max_cases: int = 3,
                  clicks: int = 5, threads: int | str = "auto", log=print, local: bool = True,
                  name_boxes: bool = True) -> tuple[list[Curve], bool]:
    """Load ``checkpoint``, run both protocols; returns the curves and whether clicks were trained."""
    from sat.infer.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(checkpoint, device="cpu", threads=threads)
    seg.warn_domain = False
    trained = getattr(seg.net.head, "prompt", None) is not None
    return run_cases(seg, case_sources(data, phantoms, max_cases), clicks, log=log, local=local,
                     name_boxes=name_boxes), trained
