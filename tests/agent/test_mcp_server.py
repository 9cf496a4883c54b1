"""`sat mcp` as a real subprocess, driven by the `mcp` package's stdio client.

The model is random-weight, so the checks are on protocol, geometry and bookkeeping: tools are
listed with the pydantic schemas, segment/ground_report/measure/compare return files inside the
allowed root, every bad call returns a clean tool error (isError) and the server keeps serving.
Stdout purity is checked by recording any line the client could not parse as JSON-RPC.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import nibabel as nib
import numpy as np
import pytest

from sat.agent.schemas import input_schema
from sat.agent.tools import TOOLS

REPO = Path(__file__).resolve().parents[2]
REPORT = "There is a 3 cm cyst in the left kidney. The liver is enlarged."


async def _session_run(root: Path, checkpoint: Path, errlog, body):
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    env = {k: os.environ[k] for k in ("SAT_CACHE_DIR", "PATH", "HOME") if k in os.environ}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    params = StdioServerParameters(command=sys.executable, cwd=str(REPO), env=env, args=[
        "-m", "sat.cli", "mcp", "--checkpoint", str(checkpoint), "--allow-root", str(root), "--device", "cpu",
        "--timeout", "120"])
    garbage: list[Exception] = []

    async def on_message(msg):
        if isinstance(msg, Exception):
            garbage.append(msg)

    with anyio.fail_after(300):
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=240, message_handler=on_message) as s:
                await s.initialize()
                await body(s)
    return garbage


def _err_text(res) -> str:
    assert res.is_error, res.content
    return res.content[0].text


def test_mcp_server_end_to_end(agent_root, tiny_checkpoint, term_tables, tmp_path):
    outside = tmp_path / "outside.nii.gz"
    outside.write_bytes((agent_root / "ct.nii.gz").read_bytes())
    (agent_root / "escape.nii.gz").symlink_to(outside)
    seen: dict = {}

    async def body(s):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        seen["tools"] = tools
        seg = await s.call_tool("segment", {"image_path": "ct.nii.gz", "prompts": ["liver", "left kidney", "qwzx"]})
        seen["segment"] = seg
        seen["ground"] = await s.call_tool("ground_report", {"image_path": str(agent_root / "ct.nii.gz"),
                                                             "report_text": REPORT})
        masks = [st["mask_path"] for st in seg.structured_content["structures"]]
        x, y, z = seg.structured_content["structures"][0]["stats"]["centroid_world_mm"] or (0.0, 0.0, 0.0)
        seen["refine"] = await s.call_tool("refine", {"image_path": "ct.nii.gz", "prompt": "liver",
                                                      "points": [{"x": x, "y": y, "z": z, "positive": True}]})
        seen["refine_box"] = await s.call_tool("refine", {"image_path": "ct.nii.gz",
                                                          "box": [x - 20, y - 20, z, x + 20, y + 20, z]})
        seen["refine_bad"] = await s.call_tool("refine", {"image_path": "ct.nii.gz", "prompt": "liver",
                                                          "points": [{"x": 1e5, "y": y, "z": z}]})
        seen["measure"] = await s.call_tool("measure", {"mask_path": masks[0], "image_path": "ct.nii.gz"})
        seen["compare"] = await s.call_tool("compare", {"mask_a": masks[0], "mask_b": masks[0]})
        seen["errors"] = [
            await s.call_tool("segment", {"image_path": str(outside), "prompts": ["liver"]}),
            await s.call_tool("segment", {"image_path": "../outside.nii.gz", "prompts": ["liver"]}),
            await s.call_tool("measure", {"mask_path": "escape.nii.gz"}),
            await s.call_tool("segment", {"image_path": "ct.nii.gz", "prompts": ["qwzx blorp"]}),
            await s.call_tool("segment", {"image_path": "ct.nii.gz", "prompts": []}),
            await s.call_tool("resolve_prompt", {"text": "liver", "cmd": "ls"}),
        ]
        seen["after"] = await s.call_tool("resolve_prompt", {"text": "right kidney"})  # still serving

    with open(tmp_path / "server.err", "w") as errlog:
        garbage = anyio.run(_session_run, agent_root, tiny_checkpoint, errlog, body)
    log = (tmp_path / "server.err").read_text()
    assert garbage == [], f"non-protocol output on stdout: {garbage}\n{log[-2000:]}"

    tools = seen["tools"]
    assert set(tools) == set(TOOLS)
    for name, t in tools.items():
        assert t.input_schema == input_schema(TOOLS[name].input_model) and t.description and t.output_schema

    seg = seen["segment"]
    assert not seg.is_error, seg.content
    data = seg.structured_content
    assert json.loads(seg.content[0].text) == data and any(c.type == "image" for c in seg.content)
    out_dir = Path(data["output_dir"])
    assert agent_root.resolve() in out_dir.parents and Path(data["preview_path"]).is_file()
    assert [st["concept"] for st in data["structures"]] == ["liver", "kidney_left"]
    assert [r["prompt"] for r in data["refused"]] == ["qwzx"] and data["refused"][0]["suggestions"]
    ref = nib.load(agent_root / "ct.nii.gz")
    for st in data["structures"]:
        img = nib.load(st["mask_path"])
        mask = np.asarray(img.dataobj) > 0
        assert mask.shape == ref.shape and np.allclose(img.affine, ref.affine, atol=1e-4)
        assert st["stats"]["voxel_count"] == int(mask.sum())
        if mask.any():
            assert st["stats"]["bbox_voxel"]["max"] == np.argwhere(mask).max(0).tolist()
            assert 0.0 <= st["stats"]["mean_confidence"] <= 1.0

    ground = seen["ground"]
    assert not ground.is_error, ground.content
    g = ground.structured_content
    assert [f["mention"]["text"] for f in g["findings"]] == ["3 cm cyst in the left kidney", "liver"]
    for f in g["findings"]:
        m = f["mention"]
        assert REPORT[m["start"]:m["end"]] == m["text"] and Path(f["mask_path"]).is_file()
        assert all(Path(k["png_path"]).is_file() for k in f["key_slices"])
    assert g["findings"][0]["mention"]["laterality"] == "left" and g["findings"][0]["mention"]["sizes_mm"] == [30.0]

    for key in ("refine", "refine_box"):
        r = seen[key]
        assert not r.is_error, r.content
        st = r.structured_content["structures"]
        assert len(st) == 1 and Path(st[0]["mask_path"]).is_file() and st[0]["stats"]["voxel_count"] > 0
    assert seen["refine"].structured_content["structures"][0]["concept"] == "liver"
    assert seen["refine_bad"].is_error and "outside the image" in _err_text(seen["refine_bad"])

    meas, comp = seen["measure"].structured_content, seen["compare"].structured_content
    assert meas["stats"]["voxel_count"] == data["structures"][0]["stats"]["voxel_count"]
    assert meas["stats"]["intensity_mean"] == pytest.approx(data["structures"][0]["stats"]["intensity_mean"])
    assert comp["same_grid"] and comp["volume_change_ml"] == 0.0
    assert comp["dice"] == 1.0 and comp["centroid_distance_mm"] in (0.0, None)

    msgs = [_err_text(r) for r in seen["errors"]]
    assert "outside the allowed roots" in msgs[0]
    assert "traversal" in msgs[1]
    assert "symlink" in msgs[2]
    assert "no prompt could be segmented" in msgs[3] and "suggestions" in msgs[3]
    assert "prompts" in msgs[4] and "cmd" in msgs[5]
    after = seen["after"]
    assert not after.is_error and after.structured_content["concept"] == "kidney_right"
    assert "Traceback" not in log


def test_mcp_cli_errors_are_one_line_on_stderr(tmp_path, capsys):
    from sat.cli import main

    assert main(["mcp", "--checkpoint", str(tmp_path / "missing.ckpt"), "--allow-root", str(tmp_path)]) == 2
    assert main(["mcp", "--checkpoint", str(tmp_path / "missing.ckpt"), "--allow-root", str(tmp_path / "no")]) == 2
    assert main(["mcp", "--help"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout is reserved for the protocol, even for --help
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("sat mcp: error")]
    assert len(errors) == 2 and "missing.ckpt" in errors[0] and "allowed root" in errors[1]
    assert "--allow-root" in captured.err
