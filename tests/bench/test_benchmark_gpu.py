"""``sat benchmark gpu``: the quick CPU profile runs every section end to end (so the GPU command
never rots), the batch search finds the largest batch that fits, MFU peaks come from device names."""
from __future__ import annotations

import json
import math

import pytest
import torch

from sat.bench import gpu, gpu_steps


def test_quick_profile_on_cpu_writes_every_section(tmp_path, capsys):
    from sat.bench.cli import main

    md, js = tmp_path / "gpu.md", tmp_path / "gpu.json"
    threads = torch.get_num_threads()
    try:
        rc = main(["gpu", "--device", "cpu", "--profile", "quick", "--threads", "1", "--out", str(md),
                   "--json", str(js)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    res = json.loads(js.read_text())
    assert res["device"] == "cpu" and res["peak_tflops"] is None and res["bf16"] is False
    (row,) = res["variants"]  # CPU: batch 1 only, no batch search
    assert row["variant"] == "tiny" and row["batch"] == 1 and row["mfu"] is None
    assert row["flops_per_sample"] > 1e6 and row["step_s"] > 0 and row["tflops"] > 0
    prompts = [r["prompts"] for r in res["text_overhead"]]
    assert prompts == [4, 8, 16]
    assert all(r["text_step_s"] > 0 and r["plain_step_s"] > 0 and math.isfinite(r["ratio"])
               for r in res["text_overhead"])
    assert [r["prompts"] for r in res["sliding_window"]] == [2, 4]
    assert all(r["windows"] >= 1 and r["total_s"] >= r["encode_s"] > 0 for r in res["sliding_window"])
    (data,) = res["data"]
    assert data["samples_per_s"] > 0 and 0 <= data["wait_share"] <= 1 and data["pin_memory"] is False
    options = {r["option"]: r for r in res["options"]}
    assert {"default", "channels_last_3d", "checkpointing=False", "checkpointing=True"} <= set(options)
    assert not [r for r in res["options"] if "error" in r]
    (click,) = res["click"]  # the committed interactive checkpoint, one history of two clicks
    assert "error" not in click, click
    assert click["calls"] == 2 and click["segment_s"] > 0 and 0 < click["median_s"] <= click["max_s"]
    text = md.read_text(encoding="utf-8")
    out = capsys.readouterr().out
    for heading in ("Training step per variant", "Text-query head vs a plain", "Sliding-window inference",
                    "Shard streaming", "Refinement click on cached features", "GPU-path switches"):
        assert heading in text and heading in out
    assert "| `tiny` | 1 |" in text and "unknown (MFU blank)" in text


def test_largest_batch_bisects_to_the_memory_limit():
    tried = []

    def make(batch):
        tried.append(batch)

        def step():
            if batch > 5:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return step

    assert gpu_steps.largest_batch(make, limit=64) == 5
    assert tried[:4] == [1, 2, 4, 8] and 5 in tried and 6 in tried
    assert gpu_steps.largest_batch(make, limit=3) == 2  # doubling stops at the limit
    assert gpu_steps.largest_batch(lambda b: make(b + 10), limit=8) == 0  # batch 1 does not fit


def test_other_errors_are_not_taken_for_out_of_memory():
    def make(batch):
        def step():
            raise RuntimeError("shape mismatch")
        return step

    with pytest.raises(RuntimeError, match="shape mismatch"):
        gpu_steps.largest_batch(make, limit=4)


@pytest.mark.parametrize("name, peak", [("NVIDIA H200", 989.0), ("NVIDIA H100 80GB HBM3", 989.0),
                                        ("NVIDIA H100 PCIe", 756.0), ("NVIDIA A100-SXM4-80GB", 312.0),
                                        ("Some Future GPU", None)])
def test_default_peak_from_device_name(monkeypatch, name, peak):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)
    assert gpu.default_peak_tflops(torch.device("cuda")) == peak
    assert gpu.default_peak_tflops(torch.device("cpu")) is None


def test_cuda_requested_without_cuda_is_one_line_exit_2(monkeypatch, capsys):
    from sat.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["benchmark", "gpu", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA is not available" in err[0]


def test_click_section_reports_a_missing_checkpoint_as_a_row(tmp_path):
    from sat.bench.gpu_click import click_latency
    from sat.bench.gpu_report import _click

    (row,) = click_latency(tmp_path / "none.ckpt", torch.device("cpu"), shape=(8, 8, 8), spacing=(1.0, 1.0, 1.0),
                           prompt="brainstem", sequences=1, clicks=1)
    assert "checkpoint not found" in row["error"]
    table = _click([row])
    assert len(table) == 3 and "checkpoint not found" in table[2]
