"""Summary tables of ``sat benchmark real``: the paired bootstrap interval of the difference."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sat.bench.real_report import _ci_cells
from sat.bench.real_tables import paired_interval, per_structure


def _rows(dice: dict[tuple[str, str], tuple[float, float]], dataset: str = "d") -> list[dict]:
    """{(case, concept): (universal, specialist)} -> label rows of both families."""
    out = []
    for (case, concept), pair in dice.items():
        for model, d in zip(("universal", "specialist"), pair):
            out.append({"model": model, "dataset": dataset, "case": case, "concept": concept, "style": "label",
                        "dice": d, "nsd": d, "hd95": 1.0})
    return out


def test_constant_difference_has_a_point_interval():
    lo, hi = paired_interval({f"c{i}": {"a": -0.02} for i in range(10)})
    assert lo == pytest.approx(-0.02) and hi == pytest.approx(-0.02)


def test_interval_matches_a_direct_bootstrap_of_one_structure():
    rng = np.random.default_rng(1)
    d = rng.normal(-0.01, 0.03, size=32)
    lo, hi = paired_interval({f"c{i}": {"a": float(x)} for i, x in enumerate(d)}, seed=3)
    direct = d[np.random.default_rng(3).integers(0, 32, size=(10_000, 32))].mean(1)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(direct, [2.5, 97.5])), abs=1e-12)
    assert lo < d.mean() < hi
    se = d.std(ddof=1) / math.sqrt(32)  # close to the normal interval
    assert lo == pytest.approx(d.mean() - 1.96 * se, abs=0.3 * se)


def test_too_few_cases_give_nan():
    assert all(math.isnan(x) for x in paired_interval({"c0": {"a": 0.1}}))


def test_per_structure_rows_carry_intervals_and_the_mean_row_uses_partial_labels():
    dice = {(f"c{i}", "a"): (0.80 + 0.01 * (i % 3), 0.80) for i in range(6)}
    dice |= {(f"c{i}", "b"): (0.50, 0.60) for i in range(3)}  # b contoured in half the cases
    table = per_structure(_rows(dice))
    a, b, m = table
    assert (a["structure"], b["structure"], m["structure"]) == ("a", "b", "mean")
    assert a["difference"] == pytest.approx(0.01) and a["difference_ci"][0] >= 0 and a["difference_ci"][1] <= 0.02
    assert b["difference_ci"] == pytest.approx((-0.1, -0.1))
    # the mean row is the mean of the structures' means: (0.01 - 0.1) / 2, the interval around it
    assert m["difference"] == pytest.approx(-0.045)
    assert m["difference_ci"][0] <= -0.045 <= m["difference_ci"][1]


def test_interval_cell_is_one_readable_string():
    rows = _ci_cells([{"difference_ci": (-0.0199, -0.0037)}, {"difference_ci": (math.nan, math.nan)}, {"x": 1}])
    assert [r.get("difference_ci") for r in rows] == ["[-0.020, -0.004]", "-", None]
