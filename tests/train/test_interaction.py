"""Training with simulated interaction: where clicks and boxes land, and fits on tiny phantom shards."""
from __future__ import annotations

import pytest
import torch

from sat.model.prompts import BOX_2D, BOX_3D, NEGATIVE, PAD, POSITIVE
from sat.train.clicks import error_clicks, reference_box
from sat.train.interaction import InteractionConfig
from sat.train.cli import cli


def _cube(lo: int, hi: int, n: int = 20) -> torch.Tensor:
    m = torch.zeros(n, n, n, dtype=torch.bool)
    m[lo:hi, lo:hi, lo:hi] = True
    return m


def test_clicks_go_to_the_middle_of_the_error_with_the_errors_sign():
    target = torch.stack([_cube(4, 13), _cube(4, 13), _cube(4, 13)])[None]  # (1, 3, 20, 20, 20)
    pred = torch.zeros_like(target)
    pred[0, 1] = target[0, 1] | _cube(14, 20)  # query 1: a false positive block beside a right mask
    pred[0, 2] = target[0, 2]  # query 2: perfect
    points, labels = error_clicks(pred, target, torch.ones(1, 3, dtype=torch.bool), central=True)
    assert labels.tolist() == [[POSITIVE, NEGATIVE, PAD]]
    assert torch.equal(points[0, 0], torch.tensor([8.0, 8.0, 8.0]))  # centre of the missed cube
    assert bool(((points[0, 1] >= 14) & (points[0, 1] <= 19)).all())
    # an unlabelled (invalid) query never gets a click
    _, labels = error_clicks(pred, target, torch.tensor([[False, True, True]]))
    assert labels[0, 0] == PAD


def test_reference_boxes_3d_and_2d():
    mask = torch.zeros(20, 20, 20, dtype=torch.bool)
    mask[3:9, 5:15, 2:18] = True
    box, kind = reference_box(mask, jitter=0.0)
    assert kind == BOX_3D and box.tolist() == [[3.0, 5.0, 2.0], [8.0, 14.0, 17.0]]
    g = torch.Generator().manual_seed(0)
    box, kind = reference_box(mask, jitter=0.0, two_d=True, generator=g)
    flat = (box[1] - box[0] == 0).nonzero()[:, 0].tolist()
    assert kind == BOX_2D and len(flat) == 1
    axis = flat[0]
    assert mask.select(axis, int(box[0, axis])).any()  # the slice cuts the structure
    with pytest.raises(ValueError, match="non-empty"):
        reference_box(torch.zeros(4, 4, 4, dtype=torch.bool))


def test_config_names_bad_values():
    with pytest.raises(ValueError, match="interaction.prob"):
        InteractionConfig(prob=1.5)
    with pytest.raises(ValueError, match="max_clicks"):
        InteractionConfig(max_clicks=-1)
    with pytest.raises(ValueError, match="central_prob"):
        InteractionConfig(central_prob=-0.1)


def test_interactive_fit_then_frozen_base_fine_tune(tmp_path, tiny_fit_args):
    from sat.model.checkpoint import load_checkpoint

    common = ["--data.steps_per_epoch=3", "--trainer.limit_val_batches=0", "--model.optim.warmup_steps=1",
              "--model.interaction.enabled=true", "--model.interaction.prob=1.0",
              "--model.interaction.box_prob=0.5", "--model.interaction.no_text_prob=0.5"]
    first = tmp_path / "joint.ckpt"
    cli(tiny_fit_args(tmp_path / "a", max_steps=3) + common + [f"--export={first}"])
    net, meta = load_checkpoint(first)
    assert meta.model.head.interactive is True and net.head.prompt is not None

    # start again from that checkpoint, training only the prompt encoder; its chosen inference
    # settings (e.g. by sat benchmark real) are the text path's, so the fine-tune keeps them
    from sat.model.checkpoint import update_extra

    advice = {"tta": True, "thresholds": {"liver": 0.3}, "major_components": ["liver"], "overlap": 0.5}
    update_extra(first, inference=advice, lr_flip_prob=0.5)
    second = tmp_path / "frozen.ckpt"
    run = cli(tiny_fit_args(tmp_path / "b", max_steps=3) + common + [
        f"--model.interaction.init_checkpoint={first}", "--model.interaction.freeze_base=true", f"--export={second}"])
    assert run.trainer.global_step == 3
    tuned, tuned_meta = load_checkpoint(second)
    assert tuned_meta.extra["inference"] == advice and tuned_meta.extra["lr_flip_prob"] == 0.5
    before, after = net.state_dict(), tuned.state_dict()
    changed = {k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("head.prompt.") for k in changed)

    # train_decoder: the query decoder learns to read the clicks too; backbone and text path stay
    from sat.train.module import DECODER_PARTS

    third = tmp_path / "decoder.ckpt"
    cli(tiny_fit_args(tmp_path / "c", max_steps=3) + common + [
        f"--model.interaction.init_checkpoint={second}", "--model.interaction.freeze_base=true",
        "--model.interaction.train_decoder=true", "--model.interaction.prob=0.5", f"--export={third}"])
    decoded, decoded_meta = load_checkpoint(third)
    assert decoded_meta.extra["inference"] == advice
    after, final = tuned.state_dict(), decoded.state_dict()
    changed = {k for k in after if after[k].is_floating_point() and not torch.equal(after[k], final[k])}
    assert any(k.startswith("head.layers.") for k in changed)
    assert all(k.startswith(DECODER_PARTS) for k in changed)


def test_train_decoder_needs_freeze_base():
    with pytest.raises(ValueError, match="train_decoder=true needs freeze_base=true"):
        InteractionConfig(enabled=True, train_decoder=True)


def test_frozen_base_step_always_reaches_the_prompt_encoder():
    """With ``freeze_base`` only the prompt encoder trains: a step drawn with no click and no box
    would give a loss without a gradient (the fine-tune crashed on it); it gets one click instead."""
    from sat.model.builder import build_model
    from sat.model.config import BackboneConfig, HeadConfig, ModelConfig
    from sat.train.interaction import interactive_logits

    torch.manual_seed(0)
    cfg = ModelConfig(text_dim=16, backbone=BackboneConfig(channels=(4, 8, 16), out_channels=8),
                      head=HeadConfig(d_model=16, layers=1, heads=2, interactive=True))
    net = build_model(cfg, ["liver", "spleen"], torch.randn(2, 16))
    for name, p in net.named_parameters():
        p.requires_grad_(name.startswith("head.prompt."))
    target = torch.zeros(1, 2, 16, 16, 16)
    target[0, 0, 4:10, 4:10, 4:10] = 1
    it = InteractionConfig(enabled=True, freeze_base=True, max_clicks=0, box_prob=0.0, no_text_prob=0.0)
    out, prompts = interactive_logits(net, torch.randn(1, 1, 16, 16, 16), torch.tensor([[0, 1]]), None,
                                      torch.ones(1, 2, dtype=torch.bool), target, it)
    assert out.requires_grad and out.shape == (1, 2, 16, 16, 16)


@pytest.mark.parametrize("central_prob, expected", [(0.0, {False}), (1.0, {True})])
def test_central_prob_places_simulated_clicks_in_the_error_core(monkeypatch, central_prob, expected):
    """``central_prob`` decides whether a simulated click goes to the error's deepest erosion
    level (the benchmark's robot user) or to a random depth."""
    import sat.train.interaction as interaction
    from sat.model.builder import build_model
    from sat.model.config import BackboneConfig, HeadConfig, ModelConfig

    seen = []
    real = interaction.error_clicks

    def spy(*args, central=False, **kwargs):
        seen.append(central)
        return real(*args, central=central, **kwargs)

    monkeypatch.setattr(interaction, "error_clicks", spy)
    torch.manual_seed(0)
    cfg = ModelConfig(text_dim=16, backbone=BackboneConfig(channels=(4, 8, 16), out_channels=8),
                      head=HeadConfig(d_model=16, layers=1, heads=2, interactive=True))
    net = build_model(cfg, ["liver", "spleen"], torch.randn(2, 16))
    target = torch.zeros(1, 2, 16, 16, 16)
    target[0, 0, 4:10, 4:10, 4:10] = 1
    it = InteractionConfig(enabled=True, max_clicks=3, box_prob=0.0, no_text_prob=0.0, central_prob=central_prob)
    for seed in range(4):
        interaction.interactive_logits(net, torch.randn(1, 1, 16, 16, 16), torch.tensor([[0, 1]]), None,
                                       torch.ones(1, 2, dtype=torch.bool), target, it,
                                       generator=torch.Generator().manual_seed(seed))
    assert seen and set(seen) == expected
