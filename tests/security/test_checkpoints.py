"""Checkpoints from strangers are data (issue 20 rows 6-8, 12) and caches degrade gracefully
(issue 19 item 2): crafted checkpoints built from the tiny test checkpoint."""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch

from sat.errors import InputError
from sat.model.checkpoint import load_checkpoint
from sat.text.bundle import delta_digest
from sat.text.encoder import TextEncoderSpec
from sat.text.sidecar import calibrated_threshold

_DELTA_KEY = "model.encoder.layer.5.output.dense.bias"


def _craft(src, dst, *, meta_edit=None, delta=None, meta=None):
    """A copy of checkpoint ``src`` at ``dst`` with edited metadata and an optional text delta."""
    blob = torch.load(src, map_location="cpu", weights_only=True)
    m = json.loads(blob["meta"]) if meta is None else meta
    if meta_edit:
        meta_edit(m)
    blob["meta"] = json.dumps(m)
    if delta is not None:
        blob["text_delta"] = delta
    torch.save(blob, dst)
    return dst


def _delta(seed: int) -> dict[str, torch.Tensor]:
    return {_DELTA_KEY: torch.randn(384, generator=torch.Generator().manual_seed(seed))}


def _with_delta(digest, threshold):
    def edit(m):
        m["text_delta"], m["text_sidecar"] = digest, {"threshold": threshold}
    return edit


def _files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_row06_text_delta_path_cannot_write_anywhere(tiny_checkpoint, tmp_path, monkeypatch):
    cache = tmp_path / "a" / "b" / "cache"
    monkeypatch.setenv("SAT_CACHE_DIR", str(cache))
    delta = _delta(0)
    for i, claim in enumerate(["../../../evil", str(tmp_path / "abs" / "evil"), delta_digest(delta) + "/x"]):
        ckpt = _craft(tiny_checkpoint, tmp_path / f"m{i}.ckpt", meta_edit=_with_delta(claim, 0.5), delta=delta)
        with pytest.raises(InputError, match="16-hex-digit digest"):
            load_checkpoint(ckpt)
    assert _files(tmp_path) == sorted(["m0.ckpt", "m1.ckpt", "m2.ckpt"])  # no folder, no file anywhere


def test_row07_claimed_digest_and_threshold_cannot_poison_another_checkpoint(tiny_checkpoint, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("SAT_CACHE_DIR", str(tmp_path / "cache"))
    genuine, digest = _delta(1), delta_digest(_delta(1))
    a = _craft(tiny_checkpoint, tmp_path / "genuine.ckpt", meta_edit=_with_delta(digest, 0.9), delta=genuine)
    liar = _craft(tiny_checkpoint, tmp_path / "liar.ckpt", meta_edit=_with_delta(digest, 0.0), delta=_delta(2))
    with pytest.raises(InputError, match="tensors hash to"):
        load_checkpoint(liar)  # claims the genuine model's digest with other tensors
    same = _craft(tiny_checkpoint, tmp_path / "same.ckpt", meta_edit=_with_delta(digest, 0.0), delta=genuine)
    _, meta_same = load_checkpoint(same)  # loaded first, with a threshold of 0.0 for the same tensors
    _, meta_a = load_checkpoint(a)
    assert calibrated_threshold(TextEncoderSpec(**meta_a.text)) == 0.9  # the genuine one keeps its own
    assert calibrated_threshold(TextEncoderSpec(**meta_same.text)) == 0.0
    from sat.text.bundle import load_finetuned

    assert torch.equal(load_finetuned(meta_a.text["finetuned"])[_DELTA_KEY], genuine[_DELTA_KEY])


def test_row08_checkpoint_cannot_name_a_hub_model(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    weights = tmp_path / "clip.bin"
    weights.write_bytes(b"\0" * 16)
    for name in ("hf-hub:evil/model", "hf-hub:org/x@main", "../x"):
        ckpt = _craft(tiny_checkpoint, tmp_path / "hub.ckpt", meta_edit=lambda m, n=name: m.update(
            text={"backend": "open_clip", "model_name": n, "path": str(weights)}))
        with pytest.raises(InputError, match="not a local architecture name"):
            load_checkpoint(ckpt)
    ckpt = _craft(tiny_checkpoint, tmp_path / "url.ckpt", meta_edit=lambda m: m.update(
        text={"backend": "hf", "path": "https://huggingface.co/evil/model"}))
    with pytest.raises(InputError, match="not a local path"):
        load_checkpoint(ckpt)
    load_checkpoint(tiny_checkpoint)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"  # set by the process


def test_row12_malformed_checkpoint_metadata_is_one_line(tiny_checkpoint, tmp_path):
    from sat.infer.segmenter import Segmenter

    good = json.loads(torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)["meta"])
    cases = {"a list": (dict(meta=[1, 2, 3]), "must be a JSON object"),
             "missing preprocess": (dict(meta_edit=lambda m: m.pop("preprocess")), "'preprocess'"),
             "bad preprocess": (dict(meta_edit=lambda m: m.update(preprocess={"spacing": "x"})), "preprocess"),
             "unknown text field": (dict(meta_edit=lambda m: m["text"].update(shell="rm -rf /")), "unknown text spec"),
             "text not a dict": (dict(meta_edit=lambda m: m.update(text="minilm")), "'text' must be a dict"),
             "concepts not strings": (dict(meta_edit=lambda m: m.update(trained_concepts=[1])), "lists of strings"),
             "vocabulary not a list": (dict(meta_edit=lambda m: m.update(vocabulary="liver")), "'vocabulary'"),
             "vocabulary entry": (dict(meta_edit=lambda m: m["vocabulary"][0].update(shell=1)), "unknown fields"),
             "newer format": (dict(meta_edit=lambda m: m.update(format="sat-checkpoint/9")), "upgrade sat"),
             "foreign format": (dict(meta_edit=lambda m: m.update(format="other/1")), "has format")}
    assert good["format"] == "sat-checkpoint/2" and good["vocabulary"]
    for name, (kwargs, pattern) in cases.items():
        ckpt = _craft(tiny_checkpoint, tmp_path / "bad.ckpt", **kwargs)
        with pytest.raises(InputError, match=pattern) as info:
            Segmenter.from_checkpoint(ckpt, device="cpu")
        assert "\n" not in str(info.value), name


class _FakeEncoder:
    dim = 4

    def __call__(self, texts):
        return torch.ones(len(texts), 4)


def test_issue19_item2_nothing_written_and_unwritable_cache_falls_back(tiny_checkpoint, tmp_path, monkeypatch,
                                                                       caplog):
    from sat.infer.segmenter import Segmenter
    from sat.knowledge.tree import load_tree
    from sat.text.cache import term_table

    cache = tmp_path / "cache"
    monkeypatch.setenv("SAT_CACHE_DIR", str(cache))
    delta = _delta(3)
    ckpt = _craft(tiny_checkpoint, tmp_path / "tuned.ckpt", meta_edit=_with_delta(delta_digest(delta), 0.8),
                  delta=delta)
    seg = Segmenter.from_checkpoint(ckpt, device="cpu")
    vol = np.full((16, 16, 16), 40, np.int16)
    from sat.io.volume import load_volume

    result = seg.segment(load_volume(vol, np.diag([4.0, 4.0, 4.0, 1.0])), ["liver"])  # exact: no encoder
    assert [s.prompt for s in result.structures] == ["liver"]
    assert _files(cache) == []  # loading and an exact prompt write nothing (the old code wrote 42 MB)

    blocker = tmp_path / "read_only_home"
    blocker.write_text("a file where the cache folder would go: unwritable even for root")
    monkeypatch.setenv("SAT_CACHE_DIR", str(blocker / "cache"))
    tree = load_tree()
    with caplog.at_level(logging.WARNING, logger="sat.text.cache"):
        ids, texts, emb = term_table(tree, TextEncoderSpec(finetuned=seg.meta.text["finetuned"]),
                                     _FakeEncoder(), kind="names")
        again = term_table(tree, TextEncoderSpec(finetuned=seg.meta.text["finetuned"]), _FakeEncoder(),
                           kind="names")
    assert emb.shape == (len(ids), 4) and again[2] is emb  # kept in memory
    warnings = [r for r in caplog.records if "not writable" in r.getMessage()]
    assert len(warnings) == 1 and "SAT_CACHE_DIR" in warnings[0].getMessage()


def test_cache_entries_are_verified_against_content(tmp_path, monkeypatch):
    from sat.knowledge.tree import load_tree
    from sat.text.cache import term_table

    monkeypatch.setenv("SAT_CACHE_DIR", str(tmp_path))
    tree, spec = load_tree(), TextEncoderSpec(max_length=17)
    ids, texts, emb = term_table(tree, spec, _FakeEncoder(), kind="names")
    entry = next(tmp_path.glob("names-*.pt"))
    blob = torch.load(entry, weights_only=True)
    blob["emb"] = torch.zeros_like(blob["emb"])  # poisoned in place: same key, other content
    torch.save(blob, entry)
    assert torch.equal(term_table(tree, spec, _FakeEncoder(), kind="names")[2], emb)


def test_non_finite_embeddings_are_never_cached(tmp_path, monkeypatch):
    from sat.knowledge.tree import load_tree
    from sat.text.cache import term_table

    class _NaNEncoder(_FakeEncoder):
        def __call__(self, texts):
            return torch.full((len(texts), 4), float("nan"))

    monkeypatch.setenv("SAT_CACHE_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="non-finite"):
        term_table(load_tree(), TextEncoderSpec(max_length=19), _NaNEncoder(), kind="names")
    assert list(tmp_path.glob("*.pt")) == []  # a read checks the digest only, so nothing bad is written
