"""The hostile inputs against ``sat mcp`` itself, driven by the real ``mcp`` stdio client.

Rows 3 (a FIFO must not lock the model; the server exits on stdin EOF) run by default; rows 1,
2, 4 and 13 through the server are slow (each starts a server); their fast in-process twins are in
``test_readers.py``.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import anyio
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


async def _session(root: Path, checkpoint: Path, errlog, body, *args: str):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    env = {k: os.environ[k] for k in ("SAT_CACHE_DIR", "PATH", "HOME") if k in os.environ}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    params = StdioServerParameters(command=sys.executable, cwd=str(REPO), env=env, args=[
        "-m", "sat.cli", "mcp", "--checkpoint", str(checkpoint), "--allow-root", str(root), "--device", "cpu",
        *args])
    with anyio.fail_after(600):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=300) as s:
                await s.initialize()
                await body(s)


def _run(tmp_path, root, checkpoint, body, *args) -> str:
    with open(tmp_path / "server.err", "w") as errlog:
        anyio.run(_session, root, checkpoint, errlog, body, *args)
    time.sleep(0.5)
    return (tmp_path / "server.err").read_text()


def _err(res) -> str:
    assert res.is_error, res.content
    return res.content[0].text


@pytest.fixture()
def ct_root(tmp_path, tiny_phantoms) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(sorted((tiny_phantoms / "phantom_totalseg").glob("*/ct.nii.gz"))[0], root / "ct.nii.gz")
    return root


def test_row03_fifo_over_mcp_keeps_the_model_free_and_eof_exits(tmp_path, ct_root, tiny_checkpoint):
    os.mkfifo(ct_root / "x.nii.gz")
    seen = {}

    async def body(s):
        start = time.monotonic()
        seen["fifo"] = await s.call_tool("segment", {"image_path": "x.nii.gz", "prompts": ["liver"]})
        seen["fifo_s"] = time.monotonic() - start
        seen["segment"] = await s.call_tool("segment", {"image_path": "ct.nii.gz", "prompts": ["liver"]})
        seen["resolve"] = await s.call_tool("resolve_prompt", {"text": "liver"})

    log = _run(tmp_path, ct_root, tiny_checkpoint, body, "--timeout", "60")
    assert "FIFO" in _err(seen["fifo"]) and seen["fifo_s"] < 10
    assert not seen["segment"].is_error, seen["segment"].content  # the model is not held by the FIFO call
    assert not seen["resolve"].is_error
    assert "stdin closed; model worker stopped" in log, log[-2000:]  # exited by itself on EOF
    assert "Traceback" not in log


@pytest.mark.slow
def test_rows_01_02_13_over_mcp(h, tmp_path, ct_root, tiny_checkpoint):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.raw").write_bytes(bytes(range(1, 65)))
    h.mhd_pointing_at(ct_root, str(outside / "secret.raw"))
    h.write_nifti(ct_root / "mask.nii.gz", np.ones((4, 4, 4), np.uint8))
    series = h.write_dicom_series(outside / "series", n=6)
    (ct_root / "linked").mkdir()
    for f in sorted(series.iterdir()):
        (ct_root / "linked" / f.name).symlink_to(f)
    (ct_root / "notes.txt").write_text("not an image")
    seen = {}

    async def body(s):
        seen["mhd"] = await s.call_tool("measure", {"mask_path": "mask.nii.gz", "image_path": "evil.mhd"})
        seen["dicom"] = await s.call_tool("segment", {"image_path": "linked", "prompts": ["liver"]})
        seen["ground"] = await s.call_tool("ground_report", {"image_path": "notes.txt",
                                                             "report_text": "The liver is enlarged."})
        runs = ct_root / "sat_agent_runs"
        shutil.rmtree(runs, ignore_errors=True)
        (outside / "runs").mkdir()
        runs.symlink_to(outside / "runs")  # the output root swapped for a link that leaves the root
        seen["swapped"] = await s.call_tool("segment", {"image_path": "ct.nii.gz", "prompts": ["liver"]})
        runs.unlink()
        seen["after"] = await s.call_tool("segment", {"image_path": "ct.nii.gz", "prompts": ["liver"]})

    log = _run(tmp_path, ct_root, tiny_checkpoint, body, "--timeout", "120")
    assert "outside the allowed roots" in _err(seen["mhd"])  # row 1: the outside bytes are never measured
    assert "outside the allowed roots" in _err(seen["dicom"])  # row 2
    assert _err(seen["ground"]) and "resolves outside" in _err(seen["swapped"])
    assert list((outside / "runs").iterdir()) == []  # row 13: nothing created outside
    runs = [p.name for p in (ct_root / "sat_agent_runs").iterdir()]
    assert len(runs) == 1 and "_segment_" in runs[0]  # the failed ground_report left no folder
    assert not seen["after"].is_error and "Traceback" not in log


@pytest.mark.slow
def test_row04_timed_out_work_is_killed_and_writes_nothing(h, tmp_path, ct_root, tiny_checkpoint):
    # 40 mm voxels over 2 m: allowed, but a 250^3 model grid that the tiny model cannot finish in 2 s
    h.write_nifti(ct_root / "wide.nii.gz", np.zeros((50, 50, 50), np.int16), spacing=(40.0, 40.0, 40.0))
    seen = {}

    async def body(s):
        seen["slow"] = await s.call_tool("segment", {"image_path": "wide.nii.gz", "prompts": ["liver"]})
        await anyio.sleep(3)
        seen["runs_after"] = sorted(p.name for p in (ct_root / "sat_agent_runs").glob("*"))
        seen["next"] = await s.call_tool("resolve_prompt", {"text": "liver"})

    log = _run(tmp_path, ct_root, tiny_checkpoint, body, "--timeout", "2")
    assert "no result within 2 s" in _err(seen["slow"]) and "nothing was written" in _err(seen["slow"])
    assert [n for n in seen["runs_after"] if not n.startswith(".")] == []
    assert not seen["next"].is_error, seen["next"].content  # a fresh worker answers
    assert "killed the model worker" in log
