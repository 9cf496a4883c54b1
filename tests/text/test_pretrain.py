"""A tiny knowledge-pretraining run through the CLI yields a loadable encoder."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from sat.text.encoder import TextEncoderSpec, build_text_encoder, encode_texts
from sat.text.pretrain import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "text" / "knowledge.yaml"


def test_tiny_text_fit_exports_loadable_safetensors(tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "enc.safetensors"
    threads = torch.get_num_threads()  # the config sets one thread; give the session its own back
    try:
        rc = main(["--config", str(CONFIG), "--trainer.max_steps=2", "--trainer.max_time=null",
                   "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}",
                   "--data.groups_per_batch=3", "--data.texts_per_group=2", "--data.max_concepts=12",
                   "--model.lr=0.01", "--model.train_layers=2", "--calibrate=false", f"--export={out}"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0 and out.is_file()
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["steps"] == 2 and meta["split"]["seed"] == 0 and "tree_hash" in meta
    tuned, raw = load_file(out), build_text_encoder(TextEncoderSpec()).state_dict()
    assert set(tuned) == set(raw)
    assert torch.equal(tuned["model.encoder.layer.0.attention.self.query.weight"],
                       raw["model.encoder.layer.0.attention.self.query.weight"])  # frozen
    assert not torch.equal(tuned["model.encoder.layer.5.output.dense.weight"],
                           raw["model.encoder.layer.5.output.dense.weight"])  # trained
    enc = build_text_encoder(TextEncoderSpec(finetuned=str(out)))  # strict load
    emb = encode_texts(enc, ["left kidney", "banana"])
    assert emb.shape == (2, 384) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-4)


def test_config_files_compose():
    from sat.text.pretrain import cli

    long = CONFIG.with_name("knowledge_long.yaml")
    c = cli(["--config", str(CONFIG), "--config", str(long)], run=False)
    assert c.model.hparams["train_layers"] == 6 and c.trainer.max_steps == 1500
    assert c.config["export"].endswith("knowledge_minilm_long.safetensors") and c.config["threads"] == 1
    assert c.datamodule.split_cfg.seed == 0 and c.datamodule.n_background > 0
