"""``sat benchmark``: profiles, tables, the specialists' label maps, and both benchmarks end to end."""
from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sat.errors import InputError
from sat.bench.config import PhantomProfile, SpeedProfile, config_dir, load_profile
from sat.bench.real_profile import RealProfile

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- profiles and options
@pytest.mark.parametrize("path", sorted(config_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_profile_instantiates(path):
    kind = path.stem.split("_", 1)[0]
    profile = load_profile(kind, path)
    assert isinstance(profile, {"phantom": PhantomProfile, "speed": SpeedProfile, "real": RealProfile}[kind])
    assert load_profile(kind, path.stem.split("_", 1)[1]) == profile  # by name as well
    if kind == "phantom":
        assert 3 * profile.specialist_steps <= profile.steps < 3 * profile.specialist_steps + 3
    if kind in ("phantom", "real"):
        assert (config_dir().parents[1] / profile.base_config).is_file()


def test_bad_profiles_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown phantom profile 'nope'"):
        load_profile("phantom", "nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps: 9\nbogus: 1\n")
    with pytest.raises(InputError, match="bogus"):
        load_profile("phantom", bad)
    with pytest.raises(InputError, match="universal_table"):
        PhantomProfile(table_sources=("minilm",), universal_table="knowledge")


def test_onehot_table_and_module_option():
    from sat.knowledge.tree import load_tree
    from sat.text.onehot import onehot_table
    from sat.model.config import BackboneConfig, HeadConfig, ModelConfig
    from sat.train.module import SATModule

    def tiny_model_config(text_dim: int = 384) -> ModelConfig:
        return ModelConfig(text_dim=text_dim, backbone=BackboneConfig(channels=(4, 8, 16), out_channels=8),
                           head=HeadConfig(d_model=16, layers=1, heads=2))

    t = onehot_table(3, 5)
    assert torch.equal(t, torch.eye(3, 5))
    with pytest.raises(ValueError, match="text_dim >= 4"):
        onehot_table(4, 3)
    n = len(load_tree().concepts)
    module = SATModule(model=tiny_model_config(n + 2), concept_table="onehot")
    emb = module.net.concept_embeddings  # (Nc, text_dim)
    assert emb.shape == (n, n + 2) and torch.equal(emb, torch.eye(n, n + 2))
    assert module.hparams["concept_table"] == "onehot"
    with pytest.raises(ValueError, match="text_dim"):
        SATModule(model=tiny_model_config(), concept_table="onehot")
    with pytest.raises(ValueError, match="concept_table"):
        SATModule(model=tiny_model_config(), concept_table="bogus")


def test_fit_overrides_select_the_table():
    from sat.bench.universal import fit_overrides
    from sat.knowledge.tree import load_tree

    from sat.lightning_args import override_args

    p = PhantomProfile(steps=30, fit_overrides={"trainer.log_every_n_steps": 5})
    o = fit_overrides(p, "onehot", (6.0, 6.0, 6.0))
    assert o["model.concept_table"] == "onehot" and o["model.model.text_dim"] == len(load_tree().concepts)
    assert o["trainer.max_steps"] == 30 and o["trainer.max_time"] is None
    assert o["trainer.log_every_n_steps"] == 5
    args = override_args(o)  # what sat.train.fit passes on
    assert "--model.concept_table=onehot" in args  # plain strings, not JSON-quoted
    assert "--trainer.max_steps=30" in args and "--trainer.max_time=null" in args
    assert "model.concept_table" not in fit_overrides(p, "minilm", (6.0, 6.0, 6.0))
    assert fit_overrides(p, "knowledge", (6.0,) * 3, Path("/w.safetensors"))["model.text.finetuned"] == "/w.safetensors"
    with pytest.raises(ValueError):
        fit_overrides(p, "knowledge", (6.0,) * 3)


def test_missing_knowledge_weights_skip_with_reason(tmp_path):
    from sat.bench.universal import knowledge_weights

    p = PhantomProfile(knowledge_weights=str(tmp_path / "absent.safetensors"), text_fit_steps=0)
    path, reason, seconds = knowledge_weights(p, tmp_path)
    assert path is None and "absent" in reason and "text-fit" in reason and seconds == 0.0


# ----------------------------------------------------------------------------- specialists
def test_specialist_label_maps_paint_nested_combinations():
    from sat.bench.specialist import ClassPlan, label_maps

    plan = ClassPlan("src", ["body", "liver", "liver_tumor"],
                     [("body",), ("body", "liver"), ("body", "liver", "liver_tumor")],
                     {"body": [1, 2, 3], "liver": [2, 3], "liver_tumor": [3]})
    body = torch.zeros(4, 4, 4, dtype=torch.bool)
    body[1:] = True
    liver, tumor = body.clone(), torch.zeros_like(body)
    liver[1] = False
    tumor[3, 0] = True
    tumor[3, 0, 0] = False
    # queries in another order than the plan, plus a group query the specialist ignores
    target = torch.stack([tumor, torch.zeros_like(body), liver, body])[None]
    batch = {"target": target, "concepts": [["liver_tumor", "kidneys", "liver", "body"]]}
    lab = label_maps(batch, plan, plan.lookup())[0, 0]
    assert lab.shape == (4, 4, 4)
    assert bool((lab[0] == 0).all()) and bool((lab[1] == 1).all()) and bool((lab[2] == 2).all())
    assert int((lab == 3).sum()) == int(tumor.sum())
    for concept, mask in (("body", body), ("liver", liver), ("liver_tumor", tumor)):  # unions give masks back
        assert torch.equal(torch.isin(lab, torch.tensor(plan.members[concept])), mask)
    with pytest.raises(AssertionError, match="lacks queries"):
        label_maps({"target": target[:, :2], "concepts": [["liver_tumor", "kidneys"]]}, plan, plan.lookup())


# ----------------------------------------------------------------------------- tables
def _fake_result() -> dict:
    def rows(style, values, model="universal"):
        return [{"dataset": "d", "case": f"c{i}", "concept": c, "style": style, "prompt": c,
                 "resolved": c if d > 0 else None, "dice": d, "nsd": d, "model": model}
                for c, vs in values.items() for i, d in enumerate(vs)]

    uni = rows("canonical", {"liver": [0.8, 0.6], "spleen": [0.5]})
    uni += rows("synonym", {"liver": [0.7, 0.5], "spleen": [0.0]})
    uni += rows("synonym_embedding", {"liver": [0.4, 0.4], "spleen": [0.1]})
    spec = rows("label", {"liver": [0.9, 0.7], "spleen": [0.2]}, "specialist")
    return {"profile": {"seed": 3, "universal_table": "knowledge"},
            "universal": {"minilm": {"source": "raw", "steps": 9, "train_s": 10.0, "eval_s": 2.0, "text_fit_s": 0.0,
                                     "rows": uni},
                          "knowledge": {"skipped": "weights absent"}},
            "specialists": {"d": {"train_s": 4.0, "eval_s": 1.0, "rows": spec}},
            "baseline": {"per_structure": {"liver": 0.3, "spleen": 0.1}, "mean_dice": 0.2, "wall_s": 0.5}}


def test_tables_from_rows():
    from sat.bench.phantom_tables import all_tables

    t = all_tables(_fake_result())
    s1 = {r["structure"]: r for r in t["study1_universal_vs_specialists"]}
    assert s1["liver"]["universal_dice"] == pytest.approx(0.7) and s1["liver"]["specialist_dice"] == pytest.approx(0.8)
    mean = s1["mean (all structures)"]  # falls back to minilm: the knowledge row was skipped
    assert mean["universal_dice"] == pytest.approx(0.6) and mean["specialist_dice"] == pytest.approx(0.5)
    assert mean["difference"] == pytest.approx(0.1) and mean["seed"] == 3 and mean["wall_s"] == pytest.approx(17.0)
    s2 = {r["style"]: r for r in t["study2_prompt_robustness"]}
    assert s2["synonym"]["loss_vs_canonical"] == pytest.approx(0.6 - 0.3)
    assert s2["synonym"]["refused"] == pytest.approx(1 / 3)
    s3 = {r["table"]: r for r in t["study3_text_ablation"]}
    assert s3["minilm"]["synonym_only_dice"] == pytest.approx(0.25)
    assert "weights absent" in s3["knowledge"]["text_source"]
    assert t["study4_intensity_baseline"][-1]["intensity_baseline_dice"] == pytest.approx(0.2)


# ----------------------------------------------------------------------------- end to end
def _tables(md: str) -> list[list[str]]:
    """Markdown tables as lists of lines; each must have a header, a rule and rows of equal width."""
    tables, cur = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            tables.append(cur)
            cur = []
    for t in tables:
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in t}
        assert len(widths) == 1 and len(t) >= 3 and set(t[1]) <= set("|-: "), t[:2]
    return tables


@pytest.fixture(scope="module")
def quick_phantom(tmp_path_factory):
    from sat.bench.cli import run_phantom_command

    root = tmp_path_factory.mktemp("bench")
    profile = replace(load_profile("phantom", "quick"), knowledge_weights=str(root / "absent.safetensors"))
    threads = torch.get_num_threads()
    md = run_phantom_command(profile, root / "results", root / "work", "sat benchmark phantom --profile quick")
    assert torch.get_num_threads() == threads  # the profile's threads do not leak
    return profile, md


def test_phantom_quick_profile_writes_tables_plots_and_rows(quick_phantom):
    profile, md = quick_phantom
    text = md.read_text()
    for heading in ("## 1. Universal model vs per-dataset specialists", "## 2. Prompt robustness",
                    "## 3. Text-side ablation", "## 4. Intensity-only baseline", "total wall time"):
        assert heading in text
    assert len(_tables(text)) == 4
    assert "skipped: `" in text and "absent" in text  # the knowledge row says why it is missing
    folder = md.parent / "phantom_benchmark"
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 3 and all(p.read_bytes()[:8] == PNG_MAGIC for p in pngs)
    assert all(f"phantom_benchmark/{p.name}" in text for p in pngs)
    data = json.loads((folder / "rows.json").read_text())
    for name, rows in data["tables"].items():
        assert rows, name
        for r in rows:
            assert r["seed"] == profile.seed, (name, r)
            if "skipped" not in str(r.get("text_source", "")):
                assert r["wall_s"] > 0, (name, r)
            for k, v in r.items():
                if k.endswith("_dice") and v is not None:
                    assert 0.0 <= v <= 1.0, (name, k, v)


def test_phantom_quick_compares_like_with_like(quick_phantom):
    profile, md = quick_phantom
    data = json.loads((md.parent / "phantom_benchmark" / "rows.json").read_text())
    # equal compute: three specialists share the universal model's step budget
    assert sum(s["steps"] for s in data["specialists"].values()) == 3 * profile.specialist_steps
    assert all(m["steps"] == profile.steps for m in data["universal"].values() if "steps" in m)
    assert set(data["universal"]) == {"onehot", "minilm", "knowledge"} and "skipped" in data["universal"]["knowledge"]
    rows = data["rows"]
    pairs = {style: sorted((r["case"], r["concept"]) for r in rows if r["style"] == style and r["table"] == "minilm")
             for style in ("canonical", "synonym", "definition", "modality", "synonym_embedding")}
    spec = sorted((r["case"], r["concept"]) for r in rows if r["model"] == "specialist")
    assert spec and all(p == spec for p in pairs.values())  # every model scored on the same (case, structure) pairs
    assert {r["style"] for r in rows if r["table"] == "minilm"} == \
        {"canonical", "synonym", "definition", "paraphrase", "modality", "synonym_embedding"}
    onehot_syn = [r for r in rows if r["table"] == "onehot" and r["style"] == "synonym_embedding"]
    assert onehot_syn and all(r["dice"] == 0.0 and r["resolved"] is None for r in onehot_syn)
    s1 = data["tables"]["study1_universal_vs_specialists"]
    assert s1[-2]["structure"] == "mean (all structures)"
    assert s1[-2]["n"] == len(spec) and math.isclose(s1[-2]["difference"],
                                                     s1[-2]["universal_dice"] - s1[-2]["specialist_dice"])


def test_speed_quick_profile(tmp_path):
    from sat.bench.cli import run_speed_command

    md = run_speed_command(load_profile("speed", "quick"), tmp_path, "sat benchmark speed --profile quick")
    text = md.read_text()
    for heading in ("Inference time vs prompt count", "Inference time vs volume size", "Training step per model",
                    "Text queries vs a multi-class U-Net", "Data pipeline", "Peak memory", "## GPU"):
        assert heading in text
    assert len(_tables(text)) >= 6
    r = json.loads((tmp_path / "speed.json").read_text())
    assert [x["prompts"] for x in r["prompt_scaling"]] == [1, 5]
    assert [x["concepts"] for x in r["prompt_scaling"]] == [1, 5]  # distinct concepts decoded
    assert all(x["seconds"] > 0 for x in r["prompt_scaling"] + r["volume_scaling"])
    assert r["training_steps"][0]["variant"] == "nano" and r["training_steps"][0]["step_s"] > 0
    assert r["data_throughput"]["shard_samples_per_s"] > 0 and r["data_throughput"]["monai_samples_per_s"] > 0
    assert r["peak_memory"]["peak_gb_save"] >= r["peak_memory"]["peak_gb_before"] > 0


@pytest.mark.slow
def test_text_fit_runs_when_weights_are_missing(tmp_path):
    from sat.bench.universal import knowledge_weights

    p = replace(load_profile("phantom", "quick"), knowledge_weights=str(tmp_path / "absent.safetensors"),
                text_fit_steps=1, text_fit_calibrate=False)
    path, how, seconds = knowledge_weights(p, tmp_path)
    assert path is not None and path.is_file() and "text-fit" in how and seconds > 0
