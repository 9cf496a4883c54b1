"""Dispatcher guard rails with a stand-in segmenter: timeouts, crashes and bad input stay tool errors."""
from __future__ import annotations

import threading

import nibabel as nib
import numpy as np
import pytest

from sat.agent.safety import SafetyPolicy
from sat.agent.tools import Dispatcher, ToolFailure
from sat.knowledge.tree import load_tree


class StuckSegmenter:
    """Knows the tree; segmenting blocks until released; resolving crashes."""

    def __init__(self):
        self.tree = load_tree()
        self.trained = {"liver", "kidney_left", "kidney_right"}
        self.release = threading.Event()

    def segment(self, *args, **kwargs):
        self.release.wait(10)
        raise AssertionError("should have timed out first")

    def plan(self, prompts):
        raise RuntimeError("boom")


@pytest.fixture()
def setup(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), tmp_path / "img.nii.gz")
    seg = StuckSegmenter()
    d = Dispatcher(seg, SafetyPolicy(allowed_roots=[tmp_path], timeout_s=0.5))
    yield d, seg, tmp_path
    seg.release.set()
    d.close()


def test_timeout_and_crash_are_tool_errors_and_serving_continues(setup):
    d, seg, _ = setup
    with pytest.raises(ToolFailure, match="no result within 0.5 s"):
        d.call("segment", {"image_path": "img.nii.gz", "prompts": ["liver"]})
    with pytest.raises(ToolFailure, match="busy with an earlier call"):
        d.call("resolve_prompt", {"text": "liver"})  # the timed-out call still holds the model
    listed = d.call("list_concepts", {"query": None, "region": "abdomen"}).data  # needs no model lock
    assert {c["id"] for c in listed["concepts"]} == {"liver", "kidney_left", "kidney_right"}
    grouped = d.call("list_concepts", {"query": "kidneys"}).data["concepts"]
    assert grouped[0]["id"] == "kidneys" and not grouped[0]["trained"]
    assert sorted(grouped[0]["via"]) == ["kidney_left", "kidney_right"]
    seg.release.set()  # the stuck call ends (its result is dropped) and frees the model
    with d.model():
        pass
    with pytest.raises(ToolFailure, match="resolve_prompt failed: RuntimeError: boom"):
        d.call("resolve_prompt", {"text": "liver"})  # a crash is contained and reported briefly


def test_bad_input_is_reported_in_one_line(setup):
    d, _, root = setup
    (root / "notes.txt").write_text("not an image")
    (root / "two_d.nii.gz").write_bytes(b"")
    cases = [
        ("measure", {"mask_path": "notes.txt"}, "unsupported file type"),
        ("measure", {"mask_path": "missing.nii.gz"}, "does not exist"),
        ("measure", {"mask_path": "img.nii.gz", "image_path": "/etc/hostname"}, "outside the allowed roots"),
        ("compare", {"mask_a": "img.nii.gz"}, "mask_b"),
        ("segment", {"image_path": "img.nii.gz", "prompts": ["liver"], "modality": "XR"}, "modality"),
        ("ground_report", {"image_path": "img.nii.gz", "report_text": ""}, "report_text"),
    ]
    for tool, args, expected in cases:
        with pytest.raises(ToolFailure, match=expected) as info:
            d.call(tool, args)
        assert "\n" not in str(info.value)
    empty = d.call("measure", {"mask_path": "img.nii.gz", "image_path": None}).data
    assert empty["stats"]["voxel_count"] == 0 and empty["stats"]["bbox_voxel"] is None
