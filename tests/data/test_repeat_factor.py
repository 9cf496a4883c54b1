"""Repeat-factor sampling: frequencies from the shard manifest, LVIS factors, more crops and
crop centres for cases and concepts that few cases hold."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sat.data.label_codes import CodedLabels
from sat.data.repeat_factor import case_crops, concept_frequencies, repeat_factors
from sat.data.sampling import SamplingConfig, sample_crop


def _manifest(folder: Path, cases: dict[str, tuple[str, list[str]]]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    entries = {k: {"case_id": k, "shard": shard, "present": present} for k, (shard, present) in cases.items()}
    (folder / "manifest.json").write_text(json.dumps({"cases": entries}))
    return sorted({str(folder / shard) for shard, _ in cases.values()})


def test_frequencies_count_only_the_given_shards(tmp_path):
    urls = _manifest(tmp_path / "kbp", {
        "a": ("kbp-train-0.tar", ["cord", "esophagus"]), "b": ("kbp-train-0.tar", ["cord"]),
        "c": ("kbp-train-1.tar", ["cord", "larynx"]), "d": ("kbp-train-1.tar", ["cord"]),
        "v": ("kbp-val-0.tar", ["esophagus"])})
    train = [u for u in urls if "train" in u]
    assert concept_frequencies(train) == {"cord": 1.0, "esophagus": 0.25, "larynx": 0.25}
    assert concept_frequencies(["https://host/kbp-train-0.tar"]) == {}  # remote: uniform, with a warning
    assert concept_frequencies([str(tmp_path / "none" / "x.tar")]) == {}  # no manifest: uniform


def test_factors_follow_the_lvis_rule():
    f = repeat_factors({"cord": 1.0, "esophagus": 0.25, "larynx": 0.5}, threshold=1.0)
    assert f == pytest.approx({"cord": 1.0, "esophagus": 2.0, "larynx": 2 ** 0.5})
    assert repeat_factors({"esophagus": 0.25}, threshold=1.0, power=1.0) == {"esophagus": 4.0}
    assert repeat_factors({"esophagus": 0.25}, threshold=0.0) == {}
    with pytest.raises(ValueError, match="-1"):
        repeat_factors({}, threshold=-1)


def test_case_crops_are_exact_on_average():
    rng = np.random.default_rng(0)
    factors = {"esophagus": 1.7}
    counts = [case_crops(["cord", "esophagus"], factors, 2, rng) for _ in range(4000)]
    assert set(counts) == {3, 4} and np.mean(counts) == pytest.approx(3.4, abs=0.05)
    assert case_crops(["cord"], factors, 2, rng) == 2  # only common concepts: unchanged


def test_crop_centres_favour_heavier_concepts():
    codes = np.zeros((64, 8, 8), np.uint8)
    codes[2:6] = 1   # concept "a" at the low end of axis 0
    codes[58:62] = 2  # concept "b" at the high end
    lut = np.array([[False, True, False], [False, False, True]])
    labels = CodedLabels(codes, lut, ["a", "b"])
    image = np.zeros((1, *codes.shape), np.float32)
    cfg = SamplingConfig(patch_size=(8, 8, 8), foreground_prob=1.0, max_queries=2)
    rng = np.random.default_rng(0)

    def share_b(weights):
        hits = [("b" in sample_crop(image, labels, cfg, rng, center_weights=weights)["concepts"][:1])
                for _ in range(400)]
        return float(np.mean(hits))

    assert 0.4 < share_b(None) < 0.6
    assert share_b({"b": 4.0}) > 0.7  # 4 / 5 of the centres
