"""Segmenter.refine: clicks and boxes in world mm on cached features, and its bad-input rules."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from sat.errors import InputError
from sat.infer.refine import parse_box, parse_point


@pytest.fixture()
def seg(tiny_checkpoint, fast_resolver):
    """A Segmenter of its own: refine adds a prompt encoder to the session model's net otherwise."""
    from sat.infer.segmenter import Segmenter

    return Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", resolver=fast_resolver)


def _world(volume, ijk) -> tuple[float, float, float]:
    return tuple((volume.affine @ np.r_[ijk, 1.0])[:3])


def test_parse_point_and_box():
    assert parse_point("10,-2.5,3e1") == ((10.0, -2.5, 30.0), True)
    assert parse_point(" 1, 2, 3, - ") == ((1.0, 2.0, 3.0), False)
    assert parse_box("0,0,0,10,20,5") == ((0.0, 0.0, 0.0), (10.0, 20.0, 5.0))
    for bad in ("1,2", "a,b,c", "1,2,3,x", ""):
        with pytest.raises(InputError, match="bad point"):
            parse_point(bad)
    with pytest.raises(InputError, match="bad box"):
        parse_box("1,2,3")


def test_click_refines_on_cached_features_and_points_only_works(seg, phantom_ct, monkeypatch):
    res = seg.segment(str(phantom_ct), ["liver"], modality="CT")
    vol = res.volume
    calls = []
    import sat.infer.segmenter as mod

    real = mod.encode_image
    monkeypatch.setattr(mod, "encode_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    centre = tuple(n // 2 for n in vol.shape)
    before = res.structures[0].mask
    out = seg.refine(res, "liver", points=[(*_world(vol, centre), True)])
    assert calls == []  # the backbone did not run again
    s = out.structures[0]
    assert s.mask.shape == vol.shape and s.mask[centre] and s.concept == "liver"
    assert s.stats["clicks"] == {"positive": 1, "negative": 0}
    far = tuple(max(c - 8, 0) for c in centre)
    assert s.mask[far] == before[far]  # a click changes the mask near itself (and the cut by 0.03) only
    # a negative click at the same place removes it again
    neg = seg.refine(res, "liver", points=[f"{','.join(map(str, _world(vol, centre)))},-"])
    assert not neg.structures[0].mask[centre]
    # points only: no text, one positive click
    only = seg.refine(res, None, points=[_world(vol, centre)]).structures[0]
    assert only.mask[centre] and not only.mask[0, 0, 0] and not only.mask[-1, -1, -1]
    assert only.used_concepts == [] and only.mask.sum() < np.prod(vol.shape) / 2


def test_2d_box_only_gives_a_mask_inside_the_box(seg, phantom_ct):
    from sat.io.volume import load_volume

    vol = load_volume(str(phantom_ct))
    c = np.array(vol.shape) // 2
    lo, hi = c - 4, c + 4
    lo[2] = hi[2] = c[2]  # drawn on one axial slice
    out = seg.refine(vol, None, box=(_world(vol, lo), _world(vol, hi)), modality="CT", name_boxes=False).structures[0]
    idx = np.argwhere(out.mask)
    assert len(idx) and out.mask[tuple(c)]
    assert (idx[:, :2] >= lo[:2] - 1).all() and (idx[:, :2] <= hi[:2] + 1).all()


def test_bad_clicks_and_boxes_are_one_line_errors_or_warnings(seg, phantom_ct, caplog):
    res = seg.segment(str(phantom_ct), ["liver"], modality="CT")
    vol = res.volume
    with pytest.raises(InputError, match="outside the image"):
        seg.refine(res, "liver", points=[(1e4, 0, 0)])
    with pytest.raises(InputError, match="outside the image"):
        seg.refine(res, "liver", points=[(-1, 0, 0)], space="voxel")
    p = _world(vol, np.array(vol.shape) // 2)
    with pytest.raises(InputError, match="zero extent"):
        seg.refine(res, "liver", box=(p, (p[0] + 10, p[1], p[2])))
    with pytest.raises(InputError, match="negative clicks alone"):
        seg.refine(res, None, points=[(*p, False)])
    with pytest.raises(InputError, match="nothing to segment"):
        seg.refine(res, None)
    with pytest.raises(InputError, match="bad point"):
        seg.refine(res, "liver", points=[(1, 2)])
    # a negative click on an empty mask is ignored with a warning
    with torch.no_grad():
        seg.net.head.bias.fill_(-50.0)
    res = seg.segment(vol, ["liver"], modality="CT")  # the changed model's answer replaces the kept one
    assert not res.structures[0].mask.any()
    caplog.set_level(logging.WARNING)
    out = seg.refine(res, "liver", points=[(*p, False)])
    assert not out.structures[0].mask.any() and "nothing to correct" in caplog.text


def test_cli_point_and_box(capsys, tiny_checkpoint, phantom_ct, tmp_path):
    from sat.cli import main
    from sat.io.volume import load_volume

    vol = load_volume(str(phantom_ct))
    c = np.array(vol.shape) // 2
    x, y, z = _world(vol, c)
    common = ["-i", str(phantom_ct), "--checkpoint", str(tiny_checkpoint), "--modality", "CT", "--no-preview"]

    def run(*args):
        rc = main(["segment", *common, *args])
        cap = capsys.readouterr()
        return rc, cap.out, cap.err

    rc, out, err = run("-o", str(tmp_path / "a"), "-p", "liver", f"--point={x},{y},{z},+", f"--point={x},{y},{z + 30},-")
    assert rc == 0 and "liver" in out and (tmp_path / "a").is_dir()
    lo, hi = _world(vol, c - 3), _world(vol, c + 3)
    rc, out, err = run("-o", str(tmp_path / "b"), f"--box={lo[0]},{lo[1]},{lo[2]},{hi[0]},{hi[1]},{lo[2]}",
                       "--generic-box")
    assert rc == 0 and "clicked structure" in out
    rc, out, err = run("-o", str(tmp_path / "v"), "--voxel", f"--point={c[0]},{c[1]},{c[2]}")
    assert rc == 0
    for args, msg in [((f"--point=1e5,{y},{z}",), "outside the image"), (("--point=1,2",), "bad point"),
                      (("--box=1,2,3",), "bad box"), (("-p", "liver", "-p", "spleen", f"--point={x},{y},{z}"), "at most one prompt")]:
        rc, out, err = run("-o", str(tmp_path / "bad"), *args)
        assert rc == 2 and msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_clicks_are_taken_one_at_a_time_and_a_later_click_does_not_undo_an_earlier_one(monkeypatch):
    import sat.infer.refine as mod
    from sat.model.prompts import NEGATIVE, POSITIVE, Prompts

    before = torch.zeros((16, 16, 16), dtype=torch.float16)
    before[2:6, 2:6, 2:6] = 0.9
    answers = []  # what the network says to the first 1, 2 clicks: the second answer forgets the first fix

    def first(k: int) -> torch.Tensor:
        a = before.clone()
        a[6:8, 2:6, 2:6] = 0.9                  # click 1 (positive, at x = 6) grows the mask
        if k == 2:
            a[6:8, 2:6, 2:6] = 0.1              # ... which the answer to both clicks drops again
            a[12:15, 12:15, 12:15] = 0.8        # click 2 (positive, far away) adds a missed part
        return a

    def decode(net, cache, concepts, point, *, device, prompts):
        answers.append(prompts.n_clicks)
        return first(prompts.n_clicks)[None], torch.ones(before.shape, dtype=torch.bool)

    monkeypatch.setattr("sat.model.sliding_window.decode_near", decode)
    p = Prompts.empty(1, 1, k=2)
    p.points[0, 0, 0], p.labels[0, 0, 0] = torch.tensor([6.0, 3.0, 3.0]), POSITIVE
    p.points[0, 0, 1], p.labels[0, 0, 1] = torch.tensor([13.0, 13.0, 13.0]), POSITIVE

    class Seg:
        net, device, _cache = None, "cpu", {}

    out = mod._click_by_click(Seg, None, ["liver"], before, p, None, "world", True)
    assert bool((out[6:8, 2:6, 2:6] > 0.5).all())       # the first correction stays
    assert bool((out[12:15, 12:15, 12:15] > 0.5).all())  # the second is taken
    assert answers == [1, 2]
    again = mod._click_by_click(Seg, None, ["liver"], before, p, None, "world", True)
    assert answers == [1, 2] and torch.equal(again, out)  # the history's answers are cached
    p.labels[0, 0, 1] = NEGATIVE
    mod._click_by_click(Seg, None, ["liver"], before, p, None, "world", True)
    assert answers == [1, 2, 2]  # another second click: only the new prefix is decoded


def test_first_click_after_segment_reuses_its_answer(tiny_checkpoint, fast_resolver, phantom_ct, monkeypatch):
    """segment leaves its answer for refine: the first click decodes only near itself, and the mask
    is the one a Segmenter that never ran segment gives for the same click."""
    from sat.infer.segmenter import Segmenter

    fresh = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", resolver=fast_resolver)
    used = Segmenter.from_checkpoint(tiny_checkpoint, device="cpu", resolver=fast_resolver)
    res = used.segment(str(phantom_ct), ["liver"], modality="CT")
    vol = res.volume
    click = [(*_world(vol, tuple(n // 2 + 3 for n in vol.shape)), True)]
    decodes = []
    real = used._decode
    monkeypatch.setattr(used, "_decode", lambda *a, **k: decodes.append(1) or real(*a, **k))
    import sat.model.sliding_window as sw

    full = []
    real_prompts = sw.decode_prompts
    monkeypatch.setattr(sw, "decode_prompts", lambda *a, **k: full.append(1) or real_prompts(*a, **k))
    after = used.refine(res, "liver", points=click).structures[0].mask
    assert decodes == [] and full == []  # no whole-volume decode: the text answer came from segment
    expected = fresh.refine(vol, "liver", points=click, modality="CT").structures[0].mask
    np.testing.assert_array_equal(after, expected)
    # refine without clicks gives segment's mask
    np.testing.assert_array_equal(used.refine(res, "liver").structures[0].mask, res.structures[0].mask)


def test_answer_stays_in_the_grown_box_unless_a_positive_click_lies_outside():
    from sat.infer.refine import confine_to_box
    from sat.model.prompts import BOX_2D, BOX_3D, POSITIVE, Prompts

    probs = torch.ones(40, 40, 40)
    p = Prompts.empty(1, 1, k=1)
    assert torch.equal(confine_to_box(probs, p), probs)  # no box: nothing to confine to
    p.boxes[0, 0] = torch.tensor([[10.0, 10.0, 10.0], [20.0, 30.0, 20.0]])
    p.box_kind[0, 0] = BOX_3D
    kept = confine_to_box(probs, p)  # grown by a tenth of the extent plus one voxel: 8..22, 7..33, 8..22
    assert kept[8:23, 7:34, 8:23].all() and int(kept.sum()) == 15 * 27 * 15
    p.points[0, 0, 0] = torch.tensor([30.0, 20.0, 15.0])
    p.labels[0, 0, 0] = POSITIVE
    assert torch.equal(confine_to_box(probs, p), probs)  # the click outside the box outranks the box
    flat = Prompts.empty(1, 1)
    flat.boxes[0, 0] = torch.tensor([[10.0, 10.0, 15.0], [20.0, 30.0, 15.0]])
    flat.box_kind[0, 0] = BOX_2D
    kept = confine_to_box(probs, flat)  # a box on one slice bounds its plane, not the slice axis
    assert kept[8:23, 7:34, :].all() and int(kept.sum()) == 15 * 27 * 40


def test_positive_clicks_lower_the_cut_of_the_whole_mask(seg, phantom_ct, monkeypatch):
    import functools

    import sat.infer.refine as refine_mod
    from sat.infer import click_cut

    res = seg.segment(str(phantom_ct), ["liver"], modality="CT")
    vol = res.volume
    centre = np.array(vol.shape) // 2
    clicks = [(*_world(vol, centre + d), True) for d in ((0, 0, 0), (2, 0, 0), (0, 2, 0))]
    masks, cuts = {}, []
    for step in (0.0, 0.05):
        def spy(*a, step=step, **k):
            cuts.append(functools.partial(click_cut.click_cut, step=step)(*a, **k))
            return cuts[-1]

        monkeypatch.setattr(refine_mod, "click_cut", spy)
        seg.clear_cache()
        masks[step] = seg.refine(res, "liver", points=clicks).structures[0].mask
    assert cuts[0] == 0.5 and cuts[1] < 0.5  # three positive votes lowered it (within the bounds)
    assert np.all(masks[0.05] >= masks[0.0]) and masks[0.05].sum() >= masks[0.0].sum()
