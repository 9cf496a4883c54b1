"""ground() on a phantom with the tiny random-weight model: geometry and bookkeeping, not accuracy.

Also the VLM callback registry and the stub-VLM example loop.
"""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from sat.agent.grounding import ground
from sat.agent.hooks import GroundingHooks, GroundingReply
from sat.agent.vlm_example import StubVLM, run_pipeline
from sat.io.volume import load_volume

REPORT = "There is a 3 cm cyst in the left kidney. The liver is enlarged; no gallstones."


@pytest.fixture(scope="module")
def volume(phantom_ct):
    return load_volume(phantom_ct)  # one object: the segmenter reuses its features across calls


@pytest.fixture(scope="module")
def grounded(segmenter, volume, tmp_path_factory):
    return ground(REPORT, volume, segmenter=segmenter, outdir=tmp_path_factory.mktemp("ground"))


def test_every_mention_is_grounded_with_offsets(grounded):
    assert [f.mention.text for f in grounded.findings] == ["3 cm cyst in the left kidney", "liver", "gallstones"]
    for f in grounded.findings:
        assert REPORT[f.mention.start:f.mention.end] == f.mention.text
    cyst, liver, stones = grounded.findings
    # kidney_cyst_left is not trained: grounding walks up to the trained kidney_cyst and says so
    assert cyst.mention.concept == "kidney_cyst_left" and cyst.concept == "kidney_cyst" and "kidney_cyst" in cyst.note
    assert cyst.mention.sizes_mm == [30.0] and cyst.mention.laterality == "left"
    assert liver.concept == "liver" and "enlarged" in liver.mention.modifiers and liver.note == ""
    # negated: the gallbladder is grounded, not the absent stones
    assert stones.mention.negated and stones.concept == "gallbladder" and "negated" in stones.note
    assert grounded.unmatched == []


def test_masks_boxes_key_slices_and_crops_are_consistent(grounded, volume):
    for f in grounded.findings:
        img = nib.load(f.mask_path)
        mask = np.asarray(img.dataobj) > 0
        assert mask.shape == volume.shape and np.allclose(img.affine, volume.affine)
        assert f.empty == (not mask.any()) and f.stats.voxel_count == int(mask.sum())
        if f.empty:
            assert f.key_slices == [] and f.stats.bbox_voxel is None
            continue
        idx = np.argwhere(mask)
        assert f.stats.bbox_voxel.min == idx.min(0).tolist() and f.stats.bbox_voxel.max == idx.max(0).tolist()
        assert [k.plane for k in f.key_slices] == ["axial", "coronal", "sagittal"]
        assert sorted(k.axis for k in f.key_slices) == [0, 1, 2]
        for k in f.key_slices:
            area = mask.sum(axis=tuple(a for a in range(3) if a != k.axis))
            assert area[k.index] == area.max() > 0
            assert Image.open(k.png_path).size[0] >= 160


def test_phrase_list_and_unknown_phrase(segmenter, volume, tmp_path):
    out = ground(["right kidney", "xyzzy plugh"], volume, segmenter=segmenter, outdir=tmp_path, crops=False)
    assert [f.concept for f in out.findings] == ["kidney_right"]
    assert out.findings[0].key_slices == [] and out.findings[0].mention.sentence == 0
    (u,) = out.unmatched
    assert u.mention.text == "xyzzy plugh" and u.mention.sentence == 1 and "'xyzzy plugh'" in u.reason
    # suggestions are only concepts this model can segment (none of the near misses here)
    assert all(segmenter.plan([s.name])[0].concepts for s in u.suggestions)


def test_hooks_registry_and_listeners():
    hooks = GroundingHooks()
    seen = []
    hooks.subscribe(lambda kind, payload, reply: seen.append((kind, payload, reply)))

    @hooks.register("ground")
    def fake_ground(phrases):
        return GroundingReply(phrases=phrases, findings=[])

    assert hooks.feed("thinking <ground>left kidney; liver</gro") == []  # tag not complete yet
    (reply,) = hooks.feed("und> and more")
    assert reply.phrases == ["left kidney", "liver"] and seen[0][0] == "ground"
    hooks.register("measure", lambda concept: {"concept": concept, "volume_ml": 1.0})
    assert hooks.request("measure", concept="liver")["volume_ml"] == 1.0
    with pytest.raises(KeyError, match="nothing"):
        hooks.request("nothing")


def test_stub_vlm_example_grounds_mid_generation(segmenter, volume, tmp_path):
    hooks = GroundingHooks(segmenter, volume, outdir=tmp_path)
    vlm = StubVLM("left kidney")
    answer = run_pipeline(vlm, hooks, "How large is the left kidney?")
    (reply,) = hooks.replies
    f = reply.findings[0]
    assert f.concept == "kidney_left" and vlm.images == reply.images and len(vlm.images) == 3
    assert all(p.is_file() and p.suffix == ".png" for p in vlm.images)
    assert f"Its volume is {f.stats.volume_ml:.1f} ml" in answer and "3 key-slice images" in answer
    assert "left kidney" in vlm.context[0] and reply.measurements["left kidney"]["volume_ml"] == round(
        f.stats.volume_ml, 1)
