"""`sat benchmark interactive`: the robot user's clicks, the curves, the report, the command."""
from __future__ import annotations

import numpy as np
import pytest

from sat.bench.interactive import Curve, next_click, reference_box
from sat.bench.interactive_report import low_start_gain, render, summary_rows


def test_robot_clicks_the_middle_of_the_largest_error():
    gt = np.zeros((20, 20, 20), bool)
    gt[2:12, 2:12, 2:12] = True
    pred = gt.copy()
    pred[2:12, 2:12, 2:5] = False  # a missed slab (300 voxels)
    pred[15:18, 15:18, 15:18] = True  # a small false positive (27 voxels)
    ijk, positive = next_click(pred, gt, (1.0, 1.0, 1.0))
    assert positive and 2 <= ijk[2] <= 4 and 5 <= ijk[0] <= 8 and 5 <= ijk[1] <= 8
    pred[2:12, 2:12, 2:5] = True
    assert next_click(pred, gt, (1.0, 1.0, 1.0)) == ((16, 16, 16), False)
    assert next_click(gt, gt, (1.0, 1.0, 1.0)) is None


def test_reference_box_corners_in_mm():
    from sat.io.volume import Volume

    gt = np.zeros((10, 10, 10), bool)
    gt[2:5, 3:7, 4] = True
    vol = Volume(np.zeros((10, 10, 10), np.float32), np.diag([2.0, 2.0, 3.0, 1.0]))
    assert reference_box(vol, gt) == ((4.0, 6.0, 12.0), (8.0, 12.0, 12.0))


def test_summary_auc_and_report():
    a = Curve("d", "c1", "liver", "text", dice=[0.5, 0.6, 0.7, 0.8, 0.8, 0.9], nsd=[0.4] * 6)
    b = Curve("d", "c2", "liver", "text", dice=[0.9, 0.85, 0.9, 0.9, 0.9, 0.9], nsd=[0.8] * 6, click_s=[0.1, 0.2])
    assert a.auc == pytest.approx((0.25 + 0.6 + 0.7 + 0.8 + 0.8 + 0.45) / 5)
    row = summary_rows([a, b])[0]
    assert row["n"] == 2 and row["dice"][0] == pytest.approx(0.7) and row["dice"][5] == pytest.approx(0.9)
    assert row["worse_steps"] == 0  # mean 0.7, 0.725, 0.8, 0.85, 0.85, 0.9
    assert low_start_gain([a, b]) == {"n": 1, "mean_gain": pytest.approx(0.4), "gained_0.10": 1}
    md = render([a, b], command="sat benchmark interactive", checkpoint="x.ckpt", trained_clicks=True)
    assert "| d | text | 2 | 0.700 |" in md and "median 0.150 s" in md and "| d | liver | text | 2 |" in md
    # latency per dataset and protocol: b's first click 0.1 s, its later one 0.2 s; a has no timings
    assert "| d | text | 2 | 0.100 | 0.200 | 0.190 | 0.200 |" in md


def test_command_on_phantoms_with_the_tiny_checkpoint(tmp_path, tiny_checkpoint, tiny_phantoms, capsys):
    from sat.cli import main

    out = tmp_path / "interactive.md"
    rc = main(["benchmark", "interactive", "--checkpoint", str(tiny_checkpoint), "--data", "phantom",
               "--phantoms", str(tiny_phantoms), "--max-cases", "1", "--clicks", "2", "--out", str(out)])
    assert rc == 0 and out.is_file()
    text = out.read_text(encoding="utf-8")
    assert "| box |" in text and "Click latency" in text and "Clicks are taken one at a time" in text
    assert "names the known structure whose answer fits it" in text
    rc = main(["benchmark", "interactive", "--checkpoint", str(tiny_checkpoint), "--data", "phantom",
               "--phantoms", str(tiny_phantoms), "--max-cases", "1", "--clicks", "1", "--out", str(out),
               "--global-clicks", "--generic-boxes"])
    text = out.read_text(encoding="utf-8")
    assert rc == 0 and "whole clicked answer is taken" in text and "text-less box answer (`--generic-boxes`)" in text
    assert main(["benchmark", "interactive", "--checkpoint", str(tmp_path / "none.ckpt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
