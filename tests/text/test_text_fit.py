"""`text_fit(TextFitConfig) -> Path`: the typed knowledge-pretraining call of the demo and benchmarks."""
from __future__ import annotations

import json

import pytest
import torch

from sat.text.text_fit import TextFitConfig, text_fit


def test_cli_args_carry_every_typed_value(tmp_path):
    args = TextFitConfig(export=tmp_path / "e.safetensors", root=tmp_path, max_steps=5, max_minutes=2,
                         seed=3, threads=1, calibrate=False, progress_bar=False,
                         overrides={"model.lr": 0.01}).cli_args()
    assert args[:2] == ["fit", "--config"] and args[2].endswith("knowledge.yaml")
    for a in ("--trainer.max_steps=5", "--trainer.max_time=00:00:02:00", "--seed_everything=3", "--threads=1",
              "--calibrate=false", "--trainer.enable_progress_bar=false", "--model.lr=0.01",
              f"--export={tmp_path / 'e.safetensors'}", f"--trainer.default_root_dir={tmp_path}"):
        assert a in args, a
    # defaults leave the config's values alone
    plain = TextFitConfig(export="e.safetensors").cli_args()
    assert not any(a.startswith(("--trainer.", "--seed", "--threads")) for a in plain)


@pytest.mark.parametrize("kw,match", [({"max_steps": 0}, "max_steps must be >= 1"),
                                      ({"max_minutes": -1}, "max_minutes must be positive")])
def test_bad_budgets_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        TextFitConfig(export="e.safetensors", **kw)


def test_text_fit_writes_the_encoder_and_its_sidecar(tmp_path):
    threads = torch.get_num_threads()  # the config sets one thread; give the session its own back
    try:
        out = text_fit(TextFitConfig(export=tmp_path / "enc.safetensors", root=tmp_path, max_steps=2,
                                     calibrate=False, progress_bar=False,
                                     overrides={"trainer.max_time": None, "data.groups_per_batch": 3,
                                                "data.texts_per_group": 2, "data.max_concepts": 12,
                                                "model.train_layers": 2}))
    finally:
        torch.set_num_threads(threads)
    assert out == tmp_path / "enc.safetensors" and out.is_file()
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == 2
    assert list((tmp_path / "csv").glob("version_*"))  # the CSV log went to the run folder
