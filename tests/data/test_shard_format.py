"""Shard sample format v2 (code map + lookup table): exact round trips, legacy v1 samples, and
crops that expand only the queried channels."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from sat.data.label_codes import CodedLabels, code_stats, compact_codes, masks_to_codes
from sat.data.sampling import SamplingConfig, add_group_concepts, sample_crop
from sat.data.shard_format import FORMAT, bbox_of, decode_case, decode_sample, encode_sample


def _random_masks(rng, k: int, shape=(20, 17, 13), blobs: int = 3) -> np.ndarray:
    """(K, X, Y, Z) random overlapping boxes plus salt noise; some channels left empty."""
    masks = np.zeros((k, *shape), bool)
    for c in range(k):
        if c % 5 == 4:
            continue  # an absent concept
        for _ in range(blobs):
            a = rng.integers(0, np.array(shape) - 1)
            b = a + rng.integers(1, np.array(shape) // 2 + 2)
            masks[c, a[0]:b[0], a[1]:b[1], a[2]:b[2]] = True
        masks[c] |= rng.random(shape) < 0.01
    return masks


def _meta(k: int) -> dict:
    return {"case_id": "c", "dataset": "syn", "modality": "CT", "spacing": [2.0] * 3,
            "concepts": [f"concept_{i}" for i in range(k)], "annotated": [f"concept_{i}" for i in range(k)]}


@pytest.mark.parametrize("k", [3, 12, 117])
def test_random_overlapping_masks_round_trip_bit_exactly(k):
    rng = np.random.default_rng(k)
    masks = _random_masks(rng, k, blobs=6 if k == 12 else 3)
    image = rng.normal(size=(2, *masks.shape[1:])).astype(np.float32)
    codes, lut = masks_to_codes(masks)
    assert np.array_equal(np.take(lut, codes, axis=1), masks) and not lut[:, 0].any()
    assert codes.dtype == (np.uint8 if lut.shape[1] <= 256 else np.uint16)
    raw = encode_sample("syn__c", image, codes, lut, _meta(k))
    s = decode_sample(raw)
    assert np.array_equal(s["masks"], masks)
    assert np.array_equal(s["image"], image.astype(np.float16).astype(np.float32))
    meta = s["meta"]
    assert meta["format"] == FORMAT and meta["shape"] == list(masks.shape[1:])
    assert meta["voxels"] == [int(m.sum()) for m in masks]
    assert meta["present"] == [bool(m.any()) for m in masks]
    assert meta["bbox"] == [bbox_of(m) for m in masks]
    case = decode_case(raw)  # the lazy path keeps the stored code map and half-precision image
    assert case.image.dtype == np.float16 and case.labels.codes.shape == masks.shape[1:]
    assert case.labels.present == meta["present"]


def test_dense_overlaps_need_uint16_codes():
    rng = np.random.default_rng(1)
    masks = rng.random((10, 16, 16, 16)) < 0.5  # ~1000 distinct channel sets
    codes, lut = masks_to_codes(masks)
    assert lut.shape[1] > 256 and codes.dtype == np.uint16
    assert np.array_equal(decode_sample(encode_sample("k", np.zeros((1, 16, 16, 16)), codes, lut, _meta(10)))["masks"],
                          masks)


def test_compact_codes_merges_equal_sets_and_drops_unused():
    codes = np.array([[[0, 3, 4, 5]]], dtype=np.uint8)  # code 1, 2 unused; 3 and 5 mean the same
    lut = np.array([[False, True, False, True, False, True],
                    [True, False, False, False, True, False]])  # code 0 is NOT empty here
    new_codes, new_lut = compact_codes(codes, lut)
    assert np.array_equal(np.take(new_lut, new_codes, axis=1), np.take(lut, codes, axis=1))
    assert new_lut.shape[1] == 3 and not new_lut[:, 0].any()  # empty set first, then {1}, {0}
    voxels, boxes = code_stats(codes, lut)
    assert voxels == [2, 2] and boxes == [[0, 0, 1, 1, 1, 4], [0, 0, 0, 1, 1, 3]]


def _legacy_sample(masks: np.ndarray, image: np.ndarray, meta: dict) -> dict:
    """A sample as the first format wrote it: K bit-packed channels, no ``format`` field."""
    def npy(a):
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()

    info = dict(meta, shape=list(masks.shape[1:]), voxels=[int(m.sum()) for m in masks],
                present=[bool(m.any()) for m in masks], bbox=[bbox_of(m) for m in masks])
    return {"__key__": "old", "image.npy": npy(image.astype(np.float16)),
            "masks.npy": npy(np.packbits(masks.reshape(len(masks), -1), axis=1)), "json": json.dumps(info).encode()}


def test_legacy_samples_decode_and_unknown_versions_fail_clearly():
    rng = np.random.default_rng(3)
    masks = _random_masks(rng, 7)
    old = _legacy_sample(masks, np.ones((1, *masks.shape[1:])), _meta(7))
    assert np.array_equal(decode_sample(old)["masks"], masks)
    assert decode_case(old).labels.present == [bool(m.any()) for m in masks]
    new = encode_sample("new", np.ones((1, *masks.shape[1:])), *masks_to_codes(masks), _meta(7))
    new["json"] = json.dumps(dict(json.loads(new["json"]), format="sat-sample/9")).encode()
    with pytest.raises(ValueError, match="sat-sample/9"):
        decode_case(new)


def _crop_oracle(masks, image, ex, patch):
    """The crop start (read from the position-coded image) and the expected target."""
    start = np.unravel_index(int(ex["image"][0, 0, 0, 0]), image.shape[1:])
    sl = tuple(slice(s, s + p) for s, p in zip(start, patch))
    full = np.zeros((len(masks), *patch), bool)
    crop = masks[(slice(None), *sl)]
    full[(slice(None), *[slice(0, n) for n in crop.shape[1:]])] = crop
    return full


def test_crops_equal_full_masks_cropped_and_queries_follow_presence():
    rng = np.random.default_rng(5)
    masks = _random_masks(rng, 9, shape=(30, 26, 12))
    concepts = [f"c{i}" for i in range(9)]
    image = np.arange(masks[0].size, dtype=np.float32).reshape(1, *masks.shape[1:])  # voxel -> its index
    labels = CodedLabels(*masks_to_codes(masks), concepts)
    patch = (16, 16, 16)  # Z is padded (12 < 16)
    cfg = SamplingConfig(patch_size=patch, max_queries=32, foreground_prob=0.7)
    for _ in range(20):
        ex = sample_crop(image, labels, cfg, rng, pad_value=-7.0)
        assert ex["image"].shape == (1, *patch) and ex["image"].dtype == np.float32
        assert np.all(ex["image"][..., 12:] == -7.0)
        full = _crop_oracle(masks, image, ex, patch)
        rows = [concepts.index(c) for c in ex["concepts"]]
        assert np.array_equal(ex["target"], full[rows])
        inside = {concepts[k] for k in range(9) if full[k].any()}
        positives = {c for c, t in zip(ex["concepts"], ex["target"]) if t.any()}
        assert positives == inside  # every present concept is queried (no cap hit)
        assert len(ex["concepts"]) - len(positives) >= min(1, 9 - len(inside))


def test_groups_are_unions_and_flips_swap_mirrors():
    rng = np.random.default_rng(7)
    masks = _random_masks(rng, 3, shape=(12, 12, 12))
    labels = CodedLabels(*masks_to_codes(masks), ["kidney_left", "kidney_right", "liver"])
    grouped = add_group_concepts(labels, {"kidneys": ["kidney_left", "kidney_right"], "lungs": ["lung_left"]})
    assert grouped.concepts == ["kidney_left", "kidney_right", "liver", "kidneys"]
    assert np.array_equal(grouped.masks([3])[0], masks[0] | masks[1])
    assert grouped.bbox[3] == bbox_of(masks[0] | masks[1])
    cfg = SamplingConfig(patch_size=(12, 12, 12), max_queries=8, lr_flip_prob=1.0)
    mirrors = {"kidney_left": "kidney_right", "kidney_right": "kidney_left"}
    ex = sample_crop(np.zeros((1, 12, 12, 12), np.float32), grouped, cfg, rng, mirrors)
    by_id = dict(zip(ex["concepts"], ex["target"]))
    assert np.array_equal(by_id["kidney_right"], masks[0][::-1]) and np.array_equal(by_id["liver"], masks[2][::-1])


def test_a_table_without_an_empty_code_gets_one_for_padding():
    codes = np.ones((4, 4, 4), np.uint8)
    labels = CodedLabels(codes, np.array([[False, True]]), ["liver"])  # code 0: unused, empty set
    assert labels.empty_code == 0
    full = CodedLabels(np.zeros((4, 4, 4), np.uint8), np.array([[True]]), ["body"])
    assert full.empty_code == 1 and full.lut.shape == (1, 2) and full.bbox == [[0, 0, 0, 4, 4, 4]]
    ex = sample_crop(np.zeros((1, 4, 4, 4), np.float32), full, SamplingConfig(patch_size=(6, 6, 6)),
                     np.random.default_rng(0))
    assert ex["target"].shape == (1, 6, 6, 6) and ex["target"].sum() == 64
