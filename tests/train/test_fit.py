"""Real fits from shards: exact resume of a training checkpoint, and a 2-process CPU DDP run."""
from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sat.train.cli import cli

REPO = Path(__file__).resolve().parents[2]


def _checkpoint_every(n: int, dirpath: Path) -> str:
    return "--trainer.callbacks=" + json.dumps([{
        "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
        "init_args": {"dirpath": str(dirpath), "every_n_train_steps": n, "save_last": True, "save_top_k": -1}}])


def test_stop_and_resume_continues_exactly(tmp_path, tiny_fit_args):
    ckpt_dir = tmp_path / "ckpt"
    common = ["--data.steps_per_epoch=2", "--trainer.limit_val_batches=0", "--model.optim.warmup_steps=2",
              "--model.optim.total_steps=6", "--model.optim.ema_decay=0.9", _checkpoint_every(3, ckpt_dir)]
    first = cli(tiny_fit_args(tmp_path / "a", max_steps=3) + common)
    loss_first = float(first.trainer.callback_metrics["train/loss"])
    assert first.trainer.global_step == 3 and (ckpt_dir / "last.ckpt").is_file()

    # training checkpoints hold only tensors and plain containers
    state = torch.load(ckpt_dir / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 3 and int(state["state_dict"]["ema.updates"]) == 3
    assert state["trained_concepts"]

    second = cli(tiny_fit_args(tmp_path / "b", max_steps=6) + common + [f"--ckpt_path={ckpt_dir / 'last.ckpt'}"])
    t, module = second.trainer, second.model
    assert t.global_step == 6
    opt = t.optimizers[0]
    assert all(int(opt.state[p]["step"]) == 6 for g in opt.param_groups for p in g["params"] if p in opt.state)
    assert t.lr_scheduler_configs[0].scheduler.last_epoch == 6
    # the restored schedule continues: lr at step 6 of warmup 2 / total 6 is the cosine floor
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * module.optim_cfg.lr)
    assert int(module.ema.updates) == 6
    # the resumed run trained on from the checkpoint's weights (the last batch's loss is a
    # different random batch from the first run's, so it is checked for sanity, not compared)
    assert math.isfinite(float(t.callback_metrics["train/loss"])) and math.isfinite(loss_first)
    moved = [name for name, p in module.state_dict().items()
             if p.is_floating_point() and not torch.equal(p, state["state_dict"][name])]
    assert moved, "no weight changed after resuming"
    assert set(state["trained_concepts"]) <= module.trained_concepts


def test_run_capped_by_time_only_follows_the_time_schedule(tmp_path, tiny_fit_args):
    """``max_steps: -1`` with ``max_time`` (what ``sat benchmark real`` runs): no step total
    exists, so the cosine follows the share of the time used (it crashed on ``inf`` steps)."""
    run = cli(tiny_fit_args(tmp_path, max_steps=-1, max_time="00:00:00:04")
              + ["--data.steps_per_epoch=2", "--trainer.limit_val_batches=0", "--model.optim.schedule=time",
                 "--model.optim.warmup_steps=1"])
    t = run.trainer
    assert t.global_step >= 1
    lr, peak = t.optimizers[0].param_groups[0]["lr"], run.model.optim_cfg.lr
    assert 0.0 <= lr < peak  # decayed by time, not stuck at the peak


def test_two_process_cpu_ddp_fit_from_shards(tmp_path, tiny_fit_args):
    """Two gloo ranks, odd shard counts, an odd number of validation cases: must finish, gather
    metrics from both ranks, and export one checkpoint with the union of trained concepts."""
    root, export = tmp_path / "run", tmp_path / "model.ckpt"
    args = tiny_fit_args(root, trainer="ddp_cpu.yaml", max_steps=4, val_check_interval=4) + [
        "--data.steps_per_epoch=4", "--model.optim.warmup_steps=2", f"--export={export}",
        "--trainer.callbacks=" + json.dumps([{"class_path": "sat.train.callbacks.ValidationOverlays",
                                              "init_args": {"every_n_batches": 1, "max_per_epoch": 1}}])]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    # its own session, so that a hang kills rank 1 (started by Lightning) as well
    proc = subprocess.Popen([sys.executable, "-m", "sat.cli", *args], cwd=tmp_path, env=env,
                            encoding="utf-8", errors="replace",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        raise AssertionError(f"DDP fit hung; last output:\n{err[-3000:]}") from None
    assert proc.returncode == 0, err[-3000:]

    from sat.model.checkpoint import load_checkpoint

    net, meta = load_checkpoint(export)
    annotated = {"body", "liver", "liver_tumor", "spleen", "pancreas", "gallbladder", "stomach", "kidney_left",
                 "kidney_right", "kidney_cyst", "lung_left", "lung_right", "heart", "aorta", "inferior_vena_cava",
                 "vertebral_column", "urinary_bladder", "kidneys", "lungs"}  # phantom_msd + phantom_totalseg
    assert 4 <= len(meta.trained_concepts) and set(meta.trained_concepts) <= annotated
    assert meta.extra["ema"] is True  # phantom_nano averages weights; the average is what ships
    rows = list(csv.DictReader(open(next(root.glob("**/metrics.csv")))))
    val = {k for r in rows for k, v in r.items() if k.startswith("val/") and v}
    # 3 cases over 2 ranks: each rank validates a subset, the gathered table covers all sources
    assert {f"val/dice_dataset/{n}" for n in ("phantom_msd", "phantom_nnunet", "phantom_totalseg")} <= val
    assert {"val/dice", "val/dice_region/abdomen"} <= val
    assert any(k == "perf/data_wait_frac" and v for r in rows for k, v in r.items())
    assert len(list(root.glob("**/overlays/*.png"))) == 1
