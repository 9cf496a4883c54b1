"""``sat benchmark grid``: reference labels through a training grid and back, scored against themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sat.bench.grid_ceiling import render, round_trip, run_ceiling
from sat.bench.phantom_cases import HeldOutCase
from sat.cli import main
from sat.io.volume import Volume

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "real" / "openkbp"


def _volume(shape=(40, 40, 40), affine=None) -> Volume:
    return Volume(np.zeros(shape, np.float32), np.eye(4) if affine is None else affine)


def _ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    return ((grid - np.asarray(centre)) ** 2).sum(-1) <= radius ** 2


def _tube(shape, radius) -> np.ndarray:
    """A tube along the third axis through the middle of the first two."""
    grid = np.indices(shape[:2]).transpose(1, 2, 0)
    disc = ((grid - (np.asarray(shape[:2]) - 1) / 2) ** 2).sum(-1) <= radius ** 2
    return np.repeat(disc[:, :, None], shape[2], axis=2)


def test_the_own_grid_returns_every_label_unchanged():
    vol = _volume()
    ball = _ball(vol.shape, (20, 18, 21), 7)
    assert round_trip(ball, vol, (1.0, 1.0, 1.0)) == {"shard": 1.0, "occupancy": 1.0}


def test_a_flipped_storage_order_is_still_an_exact_round_trip():
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])  # stored right-to-left and anterior-to-posterior
    lps[:3, 3] = [39.0, 39.0, 0.0]
    vol = _volume(affine=lps)
    ball = _ball(vol.shape, (12, 25, 20), 6)
    assert round_trip(ball, vol, (1.0, 1.0, 1.0)) == {"shard": 1.0, "occupancy": 1.0}


def test_a_coarse_grid_costs_a_thin_tube_more_than_a_ball():
    vol = _volume((48, 48, 48))
    tube = round_trip(_tube(vol.shape, 2.5), vol, (4.0, 4.0, 3.0))
    ball = round_trip(_ball(vol.shape, (24, 24, 24), 14), vol, (4.0, 4.0, 3.0))
    for rule in ("shard", "occupancy"):
        assert tube[rule] < ball[rule] < 1.0
    assert ball["occupancy"] > 0.9


def test_rows_collect_every_case_and_render_one_line_per_structure_and_grid():
    vol = _volume()
    cases = [HeldOutCase("toy", f"c{i}", "CT", vol, ["liver", "spleen"],
                         np.stack([_ball(vol.shape, (20, 20, 20), 6 + i), np.zeros(vol.shape, bool)]))
             for i in range(2)]
    rows = run_ceiling(cases, [(1.0, 1.0, 1.0), (2.0, 2.0, 2.0)], log=lambda m: None)
    assert sorted((r.concept, r.spacing) for r in rows) == [("liver", (1.0, 1.0, 1.0)), ("liver", (2.0, 2.0, 2.0))]
    assert all(len(r.dice["shard"]) == 2 for r in rows)  # the empty spleen is not scored
    text = render(rows, "sat benchmark grid")
    assert "| toy | liver | 1 x 1 x 1 | 2 | 1.000 | 1.000 | 1.000 | 1.000 |" in text
    assert "| toy | liver | 2 x 2 x 2 | 2 |" in text


def test_a_bad_spacing_is_one_line_and_exit_code_2(capsys):
    assert main(["benchmark", "grid", "--spacing", "4,4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--spacing" in err[0]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/real/openkbp is absent")
def test_the_openkbp_grid_on_one_real_patient(tmp_path):
    out = tmp_path / "grid.md"
    assert main(["benchmark", "grid", "--max-cases", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| openkbp | spinal_cord | 4 x 4 x 3 | 1 |" in text
