"""The post-processing choice of ``sat benchmark real`` (threshold and component rule per concept),
and the reference masks its report flags as implausible."""
from __future__ import annotations

import numpy as np
import pytest

from sat.bench.real_postprocess import PLAIN, advice, apply, choose, grid_dice, key, variants
from sat.bench.real_tables import implausible_references, without
from sat.infer.postprocess import MAJOR_FRACTION, advised_fractions


def _row(model, concept, grid):
    return {"model": model, "concept": concept, "style": "label", "grid": grid}


def test_grid_covers_every_setting_and_apply_matches_it():
    gt = np.zeros((10, 10, 10), dtype=bool)
    gt[2:6, 2:6, 2:6] = True
    prob = np.zeros(gt.shape, dtype=np.float16)
    prob[2:6, 2:6, 2:6] = 0.45                      # the structure, under-confident
    prob[8, 8, 8] = 0.9                             # a far false-positive island
    g = grid_dice(prob, gt)
    assert set(g) == {key(s) for s in variants(False)} and len(g) == 9
    assert g["0.5"] < g["0.4"] < g["0.4+largest"] == g["0.4+major"] == 1.0
    assert apply(prob, (0.4, 1.0, False)).sum() == 64
    with pytest.raises(ValueError, match="0.4\\+midline"):
        apply(prob, (0.4, 0.0, True))
    assert set(grid_dice(None, gt).values()) == {0.0}


def test_choose_prefers_plain_unless_another_setting_clearly_wins():
    plain = {key(s): 0.70 for s in variants(False)}  # rows scored before the midline rule existed
    better = {**plain, "0.3+largest": 0.75}
    tube = {**plain, "0.5+largest": 0.72, "0.5+major": 0.74}
    tie = {**plain, "0.4": 0.7005}                  # within MIN_GAIN: stays plain
    rows = [_row("universal", "hippocampus_anterior", better), _row("universal", "hippocampus_anterior", better),
            _row("universal", "brainstem", tie), _row("specialist", "brainstem", better),
            _row("universal", "spinal_cord", tube),
            {"model": "universal", "concept": "brainstem", "style": "synonym", "dice": 0.1}]
    chosen = choose(rows)
    assert chosen["universal"] == {"hippocampus_anterior": (0.3, 1.0, False), "brainstem": PLAIN,
                                   "spinal_cord": (0.5, MAJOR_FRACTION, False)}
    assert chosen["specialist"] == {"brainstem": (0.3, 1.0, False)}
    assert advice(chosen["universal"]) == {"thresholds": {"hippocampus_anterior": 0.3},
                                           "largest_component": ["hippocampus_anterior"],
                                           "major_components": ["spinal_cord"], "midline_components": []}
    assert advised_fractions(advice(chosen["universal"])) == {"hippocampus_anterior": 1.0,
                                                              "spinal_cord": MAJOR_FRACTION}


def test_midline_settings_are_scored_with_a_plane_and_chosen_only_where_every_row_has_them():
    from sat.infer.midline import Midline

    gt = np.zeros((100, 10, 10), dtype=bool)
    gt[80:84, 2:8, 2:8] = True                      # a median structure at world x 80-83 mm
    prob = np.zeros(gt.shape, dtype=np.float16)
    prob[80:84, 2:8, 2:8] = 0.9
    prob[0:4, 2:8, 2:8] = 0.9                       # a piece of the same size 80 mm to the side
    plane = Midline(z0=0.0, centre=np.full(1, 82.0))  # the body's plane at x = 82 mm
    g = grid_dice(prob, gt, plane, np.eye(4))
    assert len(g) == 18 and g["0.5"] == pytest.approx(2 / 3)
    assert g["0.5+largest"] == 0.0                  # a tie: the lowest label, the wrong piece
    assert g["0.5+midline"] == g["0.5+largest+midline"] == 1.0
    assert grid_dice(prob, gt)["0.5"] == g["0.5"] and len(grid_dice(prob, gt)) == 9
    far = dict.fromkeys(g, 0.6)
    rows = [_row("universal", "spinal_cord", {**far, "0.5+midline": 0.7}) for _ in range(2)]
    chosen = choose(rows)["universal"]
    assert chosen == {"spinal_cord": (0.5, 0.0, True)}
    assert advice(chosen)["midline_components"] == ["spinal_cord"]
    rows.append(_row("universal", "spinal_cord", dict.fromkeys(variants_keys(False), 0.6)))
    assert choose(rows)["universal"] == {"spinal_cord": PLAIN}  # one row without midline scores


def variants_keys(midline):
    return [key(s) for s in variants(midline)]


def _label(case, concept, ml, dice, model="universal"):
    return {"model": model, "dataset": "openkbp", "case": case, "concept": concept, "style": "label",
            "dice": dice, "nsd": 0.9, "hd95": 5.0, "ref_ml": ml}


def test_references_far_from_their_structures_median_are_flagged_and_means_given_without_them():
    rows = []
    for model in ("universal", "specialist"):
        rows += [_label(f"pt_{i}", "spinal_cord", 25.0 + i, 0.8, model) for i in range(6)]
        rows += [_label("pt_9", "spinal_cord", 480.0, 0.06, model)]       # a cord mask 19x the median
        rows += [_label(f"pt_{i}", "larynx", 20.0, 0.7, model) for i in range(3)]  # too few to judge
        rows += [_label("pt_9", "larynx", 200.0, 0.1, model)]
    flagged = implausible_references(rows)
    assert [(f["case"], f["structure"]) for f in flagged] == [("pt_9", "spinal_cord")]
    assert flagged[0]["ratio"] == pytest.approx(480.0 / 28.0)
    table = {r["structure"]: r for r in without(rows, flagged)}
    assert set(table) == {"spinal_cord", "mean"}
    assert table["spinal_cord"]["cases"] == 6 and table["spinal_cord"]["universal_dice"] == pytest.approx(0.8)
    assert table["mean"]["universal_dice"] == pytest.approx((0.8 + (3 * 0.7 + 0.1) / 4) / 2)
    assert without(rows, []) == []
