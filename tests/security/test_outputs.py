"""Where the agent writes (issue 20 row 13), in-process: nothing outside the roots, nothing left by
a failed call. The same through the stdio server is in ``test_server.py`` (slow)."""
from __future__ import annotations

import numpy as np
import pytest

from sat.agent.safety import PathRefused, SafetyPolicy
from sat.agent.tools import Dispatcher, ToolFailure


def test_row13_output_root_swapped_for_a_link_creates_nothing_outside(root, tmp_path):
    policy = SafetyPolicy(allowed_roots=[root])
    (tmp_path / "outside" / "runs").mkdir()
    (root / "sat_agent_runs").symlink_to(tmp_path / "outside" / "runs")
    with pytest.raises(PathRefused, match="outside the allowed roots"):
        policy.call_dir("segment")
    assert list((tmp_path / "outside" / "runs").iterdir()) == []


def test_row13_failed_ground_report_leaves_no_run_folder(h, root):
    (root / "notes.txt").write_text("not an image")
    h.write_nifti(root / "flat.nii.gz", np.ones((8, 8, 1), np.int16))
    d = Dispatcher(lambda: pytest.fail("no model needed"), SafetyPolicy(allowed_roots=[root]))
    for image in ("notes.txt", "flat.nii.gz"):
        with pytest.raises(ToolFailure):
            d.call("ground_report", {"image_path": image, "report_text": "The liver is enlarged."})
    runs = root / "sat_agent_runs"
    assert not runs.exists() or list(runs.iterdir()) == []
