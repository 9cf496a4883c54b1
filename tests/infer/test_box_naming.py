"""A box without text names the known structure whose answer fits it (sat.infer.box_naming)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sat.infer import box_naming as bn
from sat.knowledge.tree import Concept, KnowledgeTree
from sat.model.prompts import BOX_2D, BOX_3D, Prompts


def _box(shape, lo, hi) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(a, b + 1) for a, b in zip(lo, hi))] = True
    return m


def test_fit_is_one_for_a_mask_that_spans_the_box_and_stays_inside():
    lo, hi = np.array([10, 10, 10]), np.array([19, 19, 19])
    assert bn.box_fit(_box((40, 40, 40), lo, hi), lo, hi) == pytest.approx(1.0)
    half = _box((40, 40, 40), lo, [14, 19, 19])  # fills half of the box
    assert bn.box_fit(half, lo, hi) == pytest.approx(0.5)
    tube = _box((40, 40, 40), [0, 14, 14], [39, 15, 15])  # crosses the box along x only
    assert bn.box_fit(tube, lo, hi) < 0.05
    assert bn.box_fit(np.zeros((40, 40, 40), bool), lo, hi) == 0.0


def test_a_2d_box_is_fitted_on_its_slice():
    lo, hi = np.array([10, 10, 15]), np.array([19, 19, 15])
    slab = _box((40, 40, 40), [10, 10, 5], [19, 19, 30])  # fills the rectangle on every slice
    assert bn.box_fit(slab, lo, hi, flat=2) == pytest.approx(1.0)
    assert bn.grown(lo, hi, (40, 40, 40), 2)[2] == slice(0, 40)  # nothing bounded across the slice


def _c(cid: str, kind: str, **kw) -> Concept:
    return Concept(id=cid, name=cid.replace("_", " "), definition="-", region="head_neck", kind=kind, **kw)


TREE = KnowledgeTree([
    _c("gland", "group"),
    _c("gland_left", "gland", is_a=("gland",), laterality="left", mirror="gland_right"),
    _c("gland_right", "gland", is_a=("gland",), laterality="right", mirror="gland_left"),
    _c("bone", "bone"),
])


def test_candidates_are_distinct_unions_named_by_their_most_specific_concept():
    cands = bn.candidates(TREE, {"gland_left", "gland_right", "bone"})
    assert cands[("gland_left",)] == "gland_left" and cands[("bone",)] == "bone"
    assert cands[("gland_left", "gland_right")] == "gland"


class _Seg:
    """What name_box reads of a Segmenter."""

    tree = TREE
    trained = {"gland_left", "gland_right", "bone"}
    thresholds = {}
    device = "cpu"
    concept_stats = {"gland_left": {"CT": {}}, "gland_right": {"CT": {}}, "bone": {"MR": {}}}

    class net:
        concept_ids = ["bone", "gland_left", "gland_right"]


def _prompts(lo, hi, kind=BOX_3D) -> Prompts:
    p = Prompts.empty(1, 1)
    p.boxes[0, 0] = torch.tensor([lo, hi], dtype=torch.float32)
    p.box_kind[0, 0] = kind
    return p


def test_name_box_picks_the_fitting_structure_of_the_image_modality(monkeypatch):
    shape = (40, 40, 40)
    answers = {"gland_left": _box(shape, [5, 5, 5], [14, 14, 14]), "gland_right": _box(shape, [25, 5, 5], [34, 14, 14]),
               "bone": _box(shape, [0, 0, 0], [39, 39, 39])}

    class Cache:
        pass

    cache = Cache()
    cache.shape = shape

    def decode_region(net, cache, concepts, region, *, device):
        probs = torch.stack([torch.from_numpy(answers[c]).float() * 0.9 for c in concepts])
        return probs, torch.ones(shape, dtype=torch.bool)

    monkeypatch.setattr("sat.model.sliding_window.decode_region", decode_region)
    named = bn.name_box(_Seg, cache, _prompts([5, 5, 5], [14, 14, 14]), "CT")
    assert (named.concept, named.members, named.fit) == ("gland_left", ("gland_left",), 1.0)
    both = bn.name_box(_Seg, cache, _prompts([5, 5, 5], [34, 14, 14]), "CT")
    assert both.concept == "gland" and both.members == ("gland_left", "gland_right")
    assert bn.name_box(_Seg, cache, _prompts([16, 20, 20], [22, 30, 30]), "CT") is None  # fits nothing known
    # the bone (trained on MR only) fits a box around everything, but on CT it does not compete
    assert bn.name_box(_Seg, cache, _prompts([0, 0, 0], [39, 39, 39]), "CT") is None
    assert bn.name_box(_Seg, cache, _prompts([0, 0, 0], [39, 39, 39]), "MR").concept == "bone"
    flat = bn.name_box(_Seg, cache, _prompts([25, 5, 9], [34, 14, 9], BOX_2D), "CT")
    assert flat.concept == "gland_right"


def test_refine_answers_a_named_box_as_its_name_and_the_box(tiny_checkpoint, fast_resolver, phantom_ct, monkeypatch):
    from sat.infer.segmenter import Segmenter
    from sat.io.volume import load_volume

    seg = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", resolver=fast_resolver)
    vol = load_volume(str(phantom_ct))
    c = np.array(vol.shape) // 2
    box = tuple(tuple((vol.affine @ np.r_[v, 1.0])[:3]) for v in (c - 6, c + 6))
    monkeypatch.setattr("sat.infer.box_naming.name_box",
                        lambda seg, cache, prompts, modality: bn.NamedBox("liver", ("liver",), 0.9))
    named = seg.refine(vol, None, box=box, modality="CT").structures[0]
    assert (named.concept, named.prompt, named.used_concepts) == ("liver", "boxed structure", ["liver"])
    assert named.stats["box_names"] == {"concept": "liver", "fit": 0.9}
    assert np.array_equal(named.mask, seg.refine(vol, "liver", box=box, modality="CT").structures[0].mask)
    generic = seg.refine(vol, None, box=box, modality="CT", name_boxes=False).structures[0]
    assert generic.concept == "interactive" and "box_names" not in generic.stats
