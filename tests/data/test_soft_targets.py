"""Partial-volume (soft) targets: the occupancy band shards hold, and crops that read it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sat.data.datamodule import collate
from sat.data.label_codes import CodedLabels, masks_to_codes
from sat.data.manifest import LABELS
from sat.data.sampling import SamplingConfig, sample_crop
from sat.data.recipes import load_recipe
from sat.data.shard_build import BuildOptions, build_shards
from sat.data.shard_format import decode_case, encode_sample
from sat.data.shard_verify import iter_tar_samples
from sat.volume.geometry import ras_grid
from sat.volume.label_resample import match_volumes, occupancy_edges, resample_codes


def _ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape).transpose(1, 2, 3, 0)
    return ((grid - np.asarray(centre)) ** 2).sum(-1) <= radius ** 2


def _to_grid(masks: np.ndarray, spacing) -> tuple:
    """(K, X, Y, Z) masks on a 1 mm grid -> (source codes, lut, target codes, target lut, band)."""
    codes, lut = masks_to_codes(masks)
    dst, shape = ras_grid(np.eye(4), masks.shape[1:], spacing)
    out = match_volumes(resample_codes(codes, np.eye(4), dst, shape), codes, np.eye(4), dst)
    return codes, lut, out, lut, occupancy_edges(codes, lut, np.eye(4), out, lut, dst)


def _soft(out, out_lut, band, k) -> np.ndarray:
    """Channel ``k`` of the code map with its band written over it, as float occupancy."""
    labels = CodedLabels(out, out_lut, [f"c{i}" for i in range(len(out_lut))], soft=band)
    return labels.soft_masks([k], tuple(slice(0, n) for n in out.shape))[0]


def test_the_band_lies_on_the_boundary_and_keeps_the_volume():
    ball = _ball((40, 40, 40), (19.3, 20.1, 18.7), 9.5)
    _, _, out, lut, (index, value) = _to_grid(ball[None], (2.0, 2.0, 2.0))
    assert len(index) > 0 and set(index[:, 0]) == {0}
    assert np.all(np.diff(index[:, 1].astype(np.int64)) > 0)  # sorted by voxel within a channel
    soft = _soft(out, lut, (index, value), 0)
    assert np.isclose(soft.sum() * 8, ball.sum(), rtol=0.02)  # occupancy x voxel volume = source volume
    inner = _ball(out.shape, np.array((19.3, 20.1, 18.7)) / 2 - 0.25, 3.0)  # well inside: no band
    assert np.all(soft[inner] == 1.0)


def test_the_own_grid_has_no_band():
    ball = _ball((20, 20, 20), (10, 9, 11), 5)
    *_, (index, value) = _to_grid(ball[None], (1.0, 1.0, 1.0))
    assert index.shape == (0, 2) and value.shape == (0,)


def test_samples_carry_the_band_and_old_samples_have_none():
    masks = np.stack([_ball((24, 24, 24), (12, 12, 12), 6), _ball((24, 24, 24), (5, 6, 7), 3)])
    codes, lut = masks_to_codes(masks)
    image = np.zeros((1, 24, 24, 24), np.float32)
    meta = {"case_id": "c", "dataset": "syn", "modality": "CT", "spacing": [2.0] * 3, "concepts": ["a", "b"]}
    band = (np.array([[0, 5], [1, 9]], np.uint32), np.array([128, 40], np.uint8))
    case = decode_case(encode_sample("k", image, codes, lut, meta, soft=band))
    assert np.array_equal(case.labels.soft[0], band[0]) and np.array_equal(case.labels.soft[1], band[1])
    assert decode_case(encode_sample("k", image, codes, lut, meta)).labels.soft is None
    with pytest.raises(ValueError, match="soft band"):
        encode_sample("k", image, codes, lut, meta, soft=(band[0][:, :1], band[1]))


def test_select_renumbers_the_band_and_groups_sum_their_parts():
    shape = (30, 30, 30)
    masks = np.stack([_ball(shape, (10, 15, 15), 6), _ball(shape, (21, 15, 15), 5)])  # two touching parts
    codes, lut, out, out_lut, band = _to_grid(masks, (2.0, 2.0, 2.0))
    labels = CodedLabels(out, out_lut, ["left_part", "right_part"], soft=band)
    full = tuple(slice(0, n) for n in out.shape)
    swapped = labels.select(["right_part", "left_part"])
    assert np.array_equal(swapped.soft_masks([0], full), labels.soft_masks([1], full))
    assert np.array_equal(labels.select(["right_part"]).soft_masks([0], full), labels.soft_masks([1], full))
    grouped = labels.with_groups({"whole": ["left_part", "right_part"]})
    whole = grouped.soft_masks([2], full)[0]
    parts = labels.soft_masks([0, 1], full)
    assert np.allclose(whole, np.minimum(1.0, parts.sum(0)))
    assert whole.max() == 1.0 and 0 < whole[(whole > 0) & (whole < 1)].size


def test_soft_crops_read_the_band_and_bool_crops_stay_bool():
    shape = (30, 30, 30)
    ball = _ball(shape, (14.6, 15.2, 15.5), 7.3)
    _, _, out, lut, band = _to_grid(ball[None], (2.0, 2.0, 2.0))
    labels = CodedLabels(out, lut, ["ball"], soft=band)
    image = np.zeros((1, *out.shape), np.float32)
    rng = np.random.default_rng(0)
    crop = sample_crop(image, labels, SamplingConfig(patch_size=(20, 20, 20), foreground_prob=1.0,
                                                      soft_targets=True), rng)  # larger than the grid: padded
    soft = crop["target"][crop["concepts"].index("ball")]
    assert crop["target"].dtype == np.float32 and soft.shape == (20, 20, 20)
    assert np.isclose(soft.sum(), _soft(out, lut, band, 0).sum())  # the whole ball, band included
    hard = sample_crop(image, labels, SamplingConfig(patch_size=(8, 8, 8)), rng)
    assert hard["target"].dtype == bool


def test_soft_crops_from_shards_without_the_band_are_refused():
    ball = _ball((16, 16, 16), (8, 8, 8), 4)
    codes, lut = masks_to_codes(ball[None])
    labels = CodedLabels(codes, lut, ["ball"])
    with pytest.raises(ValueError, match="rebuild them"):
        sample_crop(np.zeros((1, 16, 16, 16), np.float32), labels,
                    SamplingConfig(patch_size=(8, 8, 8), soft_targets=True), np.random.default_rng(0))


def test_collate_stacks_soft_and_bool_crops_as_float():
    soft = {"image": np.zeros((1, 4, 4, 4), np.float32), "target": np.full((1, 4, 4, 4), 0.25, np.float32),
            "concepts": ["a"], "modality": "CT", "dataset": "d"}
    hard = {**soft, "target": np.ones((2, 4, 4, 4), bool), "concepts": ["a", "b"]}
    batch = collate([soft, hard])
    assert batch["target"].dtype.is_floating_point and batch["target"].shape == (2, 2, 4, 4, 4)
    assert float(batch["target"][0, 0, 0, 0, 0]) == 0.25 and float(batch["target"][1, 1].min()) == 1.0


def test_built_shards_hold_the_band_and_older_parts_are_rebuilt(tiny_phantoms, tmp_path):
    recipe, src = load_recipe("phantom_msd"), tiny_phantoms / "phantom_msd"
    part = build_shards(recipe, src, tmp_path, BuildOptions(split=None), progress=False)
    assert part["labels"] == LABELS
    samples = [s for tar in sorted(tmp_path.glob("*.tar")) for s in iter_tar_samples(tar)]
    assert samples and all("soft_index.npy" in s for s in samples)
    assert any(decode_case(s).labels.soft[0].size for s in samples)  # phantoms at another spacing: a band
    from sat.data.datamodule import ShardDataModule

    dm = ShardDataModule({"msd": str(tmp_path / "phantom_msd-all-*.tar")}, batch_size=2, num_workers=0,
                         sampling=SamplingConfig(patch_size=(16, 16, 16), soft_targets=True),
                         steps_per_epoch=2, shuffle_buffer=1, crops_per_case=1)
    batch = next(iter(dm.train_dataloader()))
    assert batch["target"].dtype.is_floating_point and 0 <= float(batch["target"].min()) <= float(
        batch["target"].max()) <= 1
    done = tmp_path / "phantom_msd-all-p000.done.json"
    record = json.loads(done.read_text())
    record.pop("labels")  # a part built before the band existed
    done.write_text(json.dumps(record))
    assert not build_shards(recipe, src, tmp_path, BuildOptions(split=None), progress=False).get("skipped")
