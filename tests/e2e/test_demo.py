"""End to end: `sat demo` on tiny phantoms for a few steps writes every artefact it promises."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np


def test_demo_pipeline_tiny(tmp_path):
    from sat.bench.demo import main

    out = tmp_path / "demo"
    rc = main(["--out", str(out), "--cases", "6", "--spacing-scale", "3", "--workers", "0", "--text-encoder", "raw",
               "--trainer.max_steps=3", "--data.steps_per_epoch=3", "--data.num_workers=0"])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("mean_dice", "mean_dice_synonyms", "intensity_baseline_mean_dice", "per_structure", "timing_s"):
        assert key in metrics
    assert 0.0 <= metrics["mean_dice"] <= 1.0
    assert metrics["intensity_baseline_mean_dice"] <= 0.5
    assert (out / "model.ckpt").is_file() and (out / "preview.png").stat().st_size > 10_000
    preds = sorted((out / "predictions").glob("*.nii.gz"))
    assert preds
    # every prediction sits exactly on its source image's grid
    rows = json.loads((out / "metrics_rows.json").read_text())
    assert {r["style"] for r in rows} == {"canonical", "synonym"}
    first = nib.load(preds[0])
    case = preds[0].name.split("_")[0] + "_" + preds[0].name.split("_")[1]
    src = next((out / "data" / "phantoms").rglob(f"{case}*.nii.gz"))
    assert first.shape == nib.load(src).shape[:3]
    assert np.allclose(first.affine, nib.load(src).affine, atol=1e-5)


def test_demo_rejects_a_missing_text_encoder_file(tmp_path):
    import pytest

    from sat.errors import InputError
    from sat.text.ensure import text_encoder

    with pytest.raises(InputError, match="text encoder file not found"):
        text_encoder(str(tmp_path / "nope.safetensors"))
    assert text_encoder("raw") is None
