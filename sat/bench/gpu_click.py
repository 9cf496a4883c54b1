"""The ``click`` section of ``sat benchmark gpu``: one refinement click on cached image features.

Issue 18's latency target is a click on a loaded 128³ volume (``Segmenter.refine``: the decoder near
the click, the click rules and the restore to the input grid; the backbone ran once, in
``segment``). ``sat benchmark interactive`` measures it on CPU with the real validation patients;
here the same calls run on the benchmark's device, on a synthetic head-sized CT (a soft-tissue
ellipsoid in air, the OpenKBP grid) so that no patient data is needed on the GPU machine.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch


def synthetic_ct(shape: tuple[int, int, int], spacing: tuple[float, float, float], seed: int = 0):
    """A (X, Y, Z) CT :class:`~sat.io.volume.Volume`: an ellipsoid of 40 HU (noise 20 HU) in -1000 HU air."""
    from sat.io.volume import Volume

    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    body = (grid ** 2).sum(0) < 0.8
    array = np.where(body, 40.0, -1000.0) + rng.normal(0.0, 20.0, shape)
    return Volume(array=array.astype(np.float32), affine=np.diag([*spacing, 1.0]), modality="CT")


def click_latency(checkpoint: Path, device: torch.device, *, shape: tuple[int, int, int],
                  spacing: tuple[float, float, float], prompt: str, sequences: int, clicks: int,
                  seed: int = 0) -> list[dict]:
    """Seconds per ``refine`` call: ``sequences`` click histories of ``clicks`` clicks each (a new
    click per call, alternating positive and negative, inside the body), after one ``segment``.

    Returns one row (``error`` set when the checkpoint is missing or has no trained prompt encoder)."""
    from sat.bench.interactive import world
    from sat.infer.segmenter import Segmenter

    base = {"checkpoint": str(checkpoint), "shape": list(shape), "prompt": prompt}
    if not Path(checkpoint).is_file():
        return [{**base, "error": f"checkpoint not found: {checkpoint}"}]
    seg = Segmenter.from_checkpoint(checkpoint, device=str(device))
    seg.warn_domain = False
    if getattr(seg.net.head, "prompt", None) is None:
        return [{**base, "error": "checkpoint has no trained prompt encoder"}]
    vol = synthetic_ct(shape, spacing, seed)
    t0 = time.perf_counter()
    seg.segment(vol, [prompt], modality="CT")  # the backbone's one pass; features cached
    segment_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    centre, first, later = np.asarray(shape) / 2, [], []
    for _ in range(sequences):
        points = []
        for k in range(clicks):
            ijk = np.rint(centre + rng.uniform(-0.25, 0.25, 3) * np.asarray(shape)).astype(int)
            points.append((*world(vol, ijk), k % 2 == 0))
            t = time.perf_counter()
            seg.refine(vol, prompt, list(points), modality="CT")
            (later if k else first).append(time.perf_counter() - t)
    every = np.asarray(first + later)
    return [{**base, "device": str(device), "segment_s": segment_s, "calls": int(every.size),
             "first_click_median_s": float(np.median(first)), "later_click_median_s": float(np.median(later)),
             "median_s": float(np.median(every)), "p90_s": float(np.quantile(every, 0.9)), "max_s": float(every.max())}]
