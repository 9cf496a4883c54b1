"""Start-up cost of ``sat segment``: segmenting with a checkpoint imports no training-side package.

MONAI alone takes seconds to import on a small CPU machine, Lightning and transformers more; the
inference path must reach none of them when the concept table comes from the checkpoint and the
prompts are known terms. Checked in a fresh interpreter that runs the real CLI entry point.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

# packages the inference path must not import (scipy itself is imported by nibabel, its
# submodules are not)
FORBIDDEN = ("monai", "lightning", "pytorch_lightning", "transformers", "sentence_transformers", "open_clip",
             "webdataset", "wandb", "matplotlib", "SimpleITK", "scipy.ndimage", "scipy.spatial")

_CHILD = """
import json, sys
from sat.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
"""


@pytest.fixture(scope="module")
def tiny_ct(tmp_path_factory):
    """A 40 x 36 x 16 CT-like NIfTI at 5 mm: air around a soft-tissue ellipse with a bright core."""
    import nibabel as nib

    x, y = np.ogrid[:40, :36]
    body = ((x - 20) / 16) ** 2 + ((y - 18) / 12) ** 2 < 1  # (X, Y)
    arr = np.full((40, 36, 16), -1000, np.int16)
    arr[body] = 40
    arr[18:24, 20:26, 4:12] = 300
    path = tmp_path_factory.mktemp("ct") / "ct.nii.gz"
    nib.save(nib.Nifti1Image(arr, np.diag([5.0, 5.0, 5.0, 1.0])), path)
    return path


def test_segment_imports_no_heavy_packages(tmp_path, tiny_ct):
    from sat.bench.segment_speed import build_random_checkpoint

    ckpt = build_random_checkpoint(tmp_path / "tiny.ckpt", preset="tiny")
    out = tmp_path / "out"
    args = ["segment", "-i", str(tiny_ct), "-o", str(out), "-p", "liver", "kidneys", "--checkpoint", str(ckpt),
            "--modality", "CT", "--quiet", "--no-preview", "--threads", "1"]
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0
    assert (out / "liver.nii.gz").is_file() and (out / "kidneys.nii.gz").is_file()
    modules = set(report["modules"])
    # positive controls: the model (U-Net backbone) was really built and run
    assert {"torch", "sat.vision.unet", "sat.infer.segmenter", "sat.model.checkpoint"} <= modules
    loaded = sorted(m for m in FORBIDDEN if m in modules)
    assert not loaded, f"segmenting imported {loaded}"
