"""Crafted hostile inputs (issue 20) and helpers: a bounded-memory subprocess, DICOM writers, MCP."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
_PRELUDE = """
import resource, sys
def _vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
_limit = _vm_bytes() + {headroom} * 2**20
resource.setrlimit(resource.RLIMIT_AS, (_limit, _limit))
"""


def run_bounded(code: str, *, imports: str = "", headroom_mb: int = 600, timeout_s: float = 60.0,
                env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python whose address space may grow by only ``headroom_mb`` after
    ``imports`` ran (so a reader that tries to allocate gigabytes fails instead of the machine),
    within ``timeout_s`` (``subprocess.TimeoutExpired`` otherwise)."""
    script = textwrap.dedent(imports) + _PRELUDE.format(headroom=headroom_mb) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout_s,
                          cwd=str(REPO), env={**os.environ, **(env or {})})


def write_nifti(path: Path, data: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> Path:
    img = nib.Nifti1Image(data, np.diag([*spacing, 1.0]))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    nib.save(img, str(path))
    return path


def write_dicom_series(folder: Path, n: int = 12, spacing_z: float = 3.0) -> Path:
    """``n`` CT slices (8 x 8 pixels) at ``spacing_z`` mm, one file per slice."""
    import SimpleITK as sitk

    folder.mkdir(parents=True)
    uid = "1.2.826.0.1.3680043.2.1125.7.777"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    rng = np.random.default_rng(0)
    for k in range(n):
        sl = sitk.GetImageFromArray(rng.integers(-100, 100, (8, 8)).astype(np.int16))
        sl.SetSpacing((1.0, 1.0))
        for tag, value in {"0008|0060": "CT", "0020|000e": uid + ".1", "0020|000d": uid + ".2",
                           "0008|0016": "1.2.840.10008.5.1.4.1.1.2", "0020|0037": "1\\0\\0\\0\\1\\0",
                           "0020|0032": f"0\\0\\{k * spacing_z:.4f}", "0020|0013": str(k + 1),
                           "0008|0018": f"{uid}.3.{k + 1}"}.items():
            sl.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(sl)
    return folder


@pytest.fixture()
def root(tmp_path) -> Path:
    """An allowed root (and, beside it, ``tmp_path / 'outside'`` for things the agent must not read)."""
    r = tmp_path / "root"
    r.mkdir()
    (tmp_path / "outside").mkdir()
    return r


def mhd_pointing_at(folder: Path, target: str, dims=(4, 4, 4), name: str = "evil.mhd") -> Path:
    """A MetaImage header whose ``ElementDataFile`` names ``target``."""
    path = folder / name
    path.write_text(f"ObjectType = Image\nNDims = 3\nDimSize = {' '.join(map(str, dims))}\n"
                    f"ElementSpacing = 1 1 1\nElementType = MET_UCHAR\nElementDataFile = {target}\n")
    return path


def nhdr_pointing_at(folder: Path, target: str, name: str = "evil.nhdr") -> Path:
    path = folder / name
    path.write_text(f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nspacings: 1 1 1\n"
                    f"encoding: raw\ndata file: {target}\n\n")
    return path


@pytest.fixture(scope="session")
def segmenter(tiny_checkpoint):
    from sat.infer.segmenter import Segmenter

    return Segmenter.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def h():
    """The helpers of this conftest (crafting files, bounded subprocesses), for the tests to call."""
    return sys.modules[__name__]
