"""The post-processing choice of ``sat benchmark real`` (threshold and largest component per concept)."""
from __future__ import annotations

import numpy as np

from sat.bench.real_postprocess import PLAIN, advice, apply, choose, grid_dice, key, variants


def _row(model, concept, grid):
    return {"model": model, "concept": concept, "style": "label", "grid": grid}


def test_grid_covers_every_setting_and_apply_matches_it():
    gt = np.zeros((10, 10, 10), dtype=bool)
    gt[2:6, 2:6, 2:6] = True
    prob = np.zeros(gt.shape, dtype=np.float16)
    prob[2:6, 2:6, 2:6] = 0.45                      # the structure, under-confident
    prob[8, 8, 8] = 0.9                             # a far false-positive island
    g = grid_dice(prob, gt)
    assert set(g) == {key(s) for s in variants()} and len(g) == 6
    assert g["0.5"] < g["0.4"] < g["0.4+largest"] == 1.0
    assert apply(prob, (0.4, True)).sum() == 64
    assert set(grid_dice(None, gt).values()) == {0.0}


def test_choose_prefers_plain_unless_another_setting_clearly_wins():
    plain = {key(s): 0.70 for s in variants()}
    better = {**plain, "0.3+largest": 0.75}
    tie = {**plain, "0.4": 0.7005}                  # within MIN_GAIN: stays plain
    rows = [_row("universal", "hippocampus_anterior", better), _row("universal", "hippocampus_anterior", better),
            _row("universal", "brainstem", tie), _row("specialist", "brainstem", better),
            {"model": "universal", "concept": "brainstem", "style": "synonym", "dice": 0.1}]
    chosen = choose(rows)
    assert chosen["universal"] == {"hippocampus_anterior": (0.3, True), "brainstem": PLAIN}
    assert chosen["specialist"] == {"brainstem": (0.3, True)}
    assert advice(chosen["universal"]) == {"thresholds": {"hippocampus_anterior": 0.3},
                                           "largest_component": ["hippocampus_anterior"]}
