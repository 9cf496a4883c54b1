"""The text-prompted universal model in the benchmark: trained by ``sat fit``, scored by prompt.

Training goes through the project's own training call (:func:`sat.train.fit` on the demo's
experiment, :func:`sat.bench.demo.experiment`, with the profile's ``base_config`` and overrides),
so the benchmark measures exactly what users train.
The concept table is chosen per run: ``text`` embeddings of the raw MiniLM encoder, of the
knowledge-pretrained encoder (``model.text.finetuned``), or one-hot rows (``model.concept_table``).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sat.bench.config import PhantomProfile, resolve_path


@dataclass
class TrainedModel:
    """A universal model trained for the benchmark."""

    table: str  # onehot | minilm | knowledge
    checkpoint: Path
    steps: int  # optimiser steps actually taken
    train_s: float  # wall time of sat fit


def knowledge_weights(profile: PhantomProfile, work: Path) -> tuple[Path | None, str, float]:
    """The knowledge-pretrained encoder: the profile's file, else a fresh ``sat text-fit``, else none.

    Returns:
        ``(weights or None, how they were obtained or why they are missing, wall seconds spent)``.
    """
    path = resolve_path(profile.knowledge_weights)
    if path.is_file():
        return path, f"`{profile.knowledge_weights}`", 0.0
    if profile.text_fit_steps <= 0:
        return None, (f"`{profile.knowledge_weights}` is absent and the profile's text_fit_steps is 0 "
                      f"(run `sat text-fit --config {profile.text_fit_config}` first)"), 0.0
    from sat.text.text_fit import TextFitConfig, text_fit

    out = work / "text"
    export = out / "knowledge_minilm.safetensors"
    t0 = time.perf_counter()
    if not export.is_file():
        text_fit(TextFitConfig(export=export, config=resolve_path(profile.text_fit_config), root=out,
                               max_steps=profile.text_fit_steps, progress_bar=False, seed=profile.seed,
                               threads=profile.threads, calibrate=profile.text_fit_calibrate))
    return export, f"`sat text-fit` run by the benchmark ({profile.text_fit_steps} steps)", time.perf_counter() - t0


def fit_overrides(profile: PhantomProfile, table: str, spacing: tuple[float, ...],
                  finetuned: Path | None = None) -> dict:
    """Dotted overrides of one universal run (the profile's budget, seed and table)."""
    from sat.knowledge.tree import load_tree

    o = {"trainer.max_steps": profile.steps, "trainer.max_time": None, "trainer.enable_progress_bar": False,
         "seed_everything": profile.seed, "data.seed": profile.seed, "data.batch_size": profile.batch_size,
         "data.num_workers": profile.loader_workers, "data.steps_per_epoch": profile.steps,
         "data.sampling.patch_size": list(profile.patch_size), "model.optim.lr": profile.lr,
         "model.optim.warmup_steps": profile.warmup_steps, "model.optim.schedule": "steps",
         "trainer.precision": profile.precision, "model.spacing": list(spacing),
         **profile.fit_overrides}
    if table == "onehot":
        o["model.concept_table"] = "onehot"
        o["model.model.text_dim"] = len(load_tree().concepts)  # one column per concept
    elif table == "knowledge":
        if finetuned is None:
            raise ValueError("the knowledge table needs the knowledge-pretrained weights")
        o["model.text.finetuned"] = str(finetuned)
    elif table != "minilm":
        raise ValueError(f"unknown concept table {table!r}; expected onehot, minilm or knowledge")
    return o


def train_universal(profile: PhantomProfile, table: str, shards: Path, out: Path, spacing: tuple[float, ...],
                    finetuned: Path | None = None) -> TrainedModel:
    """Train one universal model with :func:`sat.train.fit` on the demo's experiment into ``out``."""
    from sat.bench.demo import experiment
    from sat.train.experiment import fit, trained_steps

    torch.set_num_threads(profile.threads)
    t0 = time.perf_counter()
    ckpt = fit(experiment(out, shards, resolve_path(profile.base_config),
                          fit_overrides(profile, table, spacing, finetuned)))
    wall = time.perf_counter() - t0
    done = trained_steps(ckpt)  # recorded in the checkpoint, not read back from a file name
    return TrainedModel(table, ckpt, profile.steps if done is None else done, wall)


def swap_rows(net, texts: dict[str, str], spec) -> torch.nn.Module:
    """A copy of ``net`` whose table rows for ``texts`` keys hold the encoder's embedding of the values."""
    from sat.text.encoder import build_text_encoder, encode_texts

    ids = [c for c in texts if c in net.index]
    emb = encode_texts(build_text_encoder(spec), [texts[c] for c in ids])  # (n, text_dim)
    out = copy.deepcopy(net)
    with torch.no_grad():
        out.concept_embeddings[out.query_indices(ids)] = emb.to(out.concept_embeddings)
    return out


def evaluate_universal(model: TrainedModel, phantoms: Path, profile: PhantomProfile, out: Path) -> list[dict]:
    """Every prompt style on every held-out case, plus the synonym-only rows of the text ablation.

    ``canonical`` and ``synonym`` rows come from :func:`sat.bench.demo.evaluate` (which also writes
    ``out/predictions`` and ``out/preview.png``); the other styles from
    :func:`~sat.bench.phantom_cases.evaluate_prompts`. ``synonym_embedding`` rows query the
    network with the encoder's embedding of a synonym in place of the name's; a one-hot table has
    no embedding for unseen text, so there every such row is a failure (Dice 0).
    """
    from sat.bench.demo import evaluate, synonym_for
    from sat.bench.phantom_cases import evaluate_prompts, held_out_cases
    from sat.bench.prompt_styles import QUALIFIER_STYLES, extra_styles, synonym_embedding_style
    from sat.infer.segmenter import Segmenter
    from sat.text.encoder import TextEncoderSpec

    torch.set_num_threads(profile.threads)
    rows = [dict(r) for r in evaluate(out, phantoms, model.checkpoint)["rows"]]
    seg = Segmenter.from_checkpoint(model.checkpoint, device="cpu", threads=profile.threads)
    rows += evaluate_prompts(seg, held_out_cases(phantoms),
                             extra_styles(profile.paraphrase_templates, profile.modality_template),
                             qualifier_sets_modality=QUALIFIER_STYLES)
    synonyms = {cid: synonym_for(seg.tree.get(cid)) for cid in sorted(seg.trained)}
    if model.table == "onehot":
        rows += [{"dataset": case.dataset, "case": case.case_id, "concept": cid, "style": "synonym_embedding",
                  "prompt": synonyms.get(cid, cid), "resolved": None, "dice": 0.0, "nsd": 0.0,
                  "note": "one-hot table: unseen text has no row"}
                 for case in held_out_cases(phantoms) for cid in case.concepts]
    else:
        net = swap_rows(seg.net, synonyms, TextEncoderSpec(**seg.meta.text))
        swapped = Segmenter(net, seg.meta, "cpu", threads=profile.threads, resolver=seg.resolver)
        rows += evaluate_prompts(swapped, held_out_cases(phantoms), synonym_embedding_style(synonyms))
    for r in rows:
        r.update(model="universal", table=model.table)
    return rows
