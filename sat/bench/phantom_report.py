"""Write the phantom benchmark: ``phantom_benchmark.md``, its PNG plots and a JSON of every row.

Layout under the results folder::

    phantom_benchmark.md            tables, run facts, plots linked
    phantom_benchmark/rows.json     profile, timings, the summary tables and every per-case row
    phantom_benchmark/*.png         one bar chart per study
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from sat.bench.phantom_tables import all_tables, universal_table
from sat.eval.plots import finish_dice_figure
from sat.eval.report import bullet_list, markdown_table, section

FOLDER = "phantom_benchmark"
TARGET_MARGIN = 0.01  # issue target: universal mean Dice >= specialists' mean Dice - 0.01
PROMPT_LOSS_TARGET = 0.03  # issue target: synonym / paraphrase prompts lose <= 0.03 Dice (knowledge table)

HEADERS = {"universal_dice": "universal Dice", "specialist_dice": "specialists Dice", "difference": "difference",
           "universal_nsd": "universal NSD", "specialist_nsd": "specialists NSD",
           "intensity_baseline_dice": "intensity baseline Dice", "wall_s": "wall s", "mean_dice": "mean Dice",
           "loss_vs_canonical": "loss vs canonical", "resolved_correctly": "resolved correctly",
           "text_source": "text source", "canonical_dice": "canonical Dice",
           "synonym_prompt_dice": "synonym prompts Dice", "synonym_only_dice": "synonym-only Dice",
           "synonym_only_loss": "synonym-only loss"}


def _bars(path: Path, groups: list[str], series: dict[str, list[float]], title: str) -> Path:
    """Grouped bar chart (Dice on y, one group per x label) written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(min(14.0, 2.0 + 0.3 * len(groups) * max(len(series), 1)), 4.0))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [0.0 if math.isnan(v) else v for v in values], width, label=name)
    ax.set_xticks(range(len(groups)), groups, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    return finish_dice_figure(fig, ax, path, title)


def write_plots(tables: dict[str, list[dict]], folder: Path) -> dict[str, Path]:
    out = {}
    s1 = [r for r in tables["study1_universal_vs_specialists"] if not r["structure"].startswith("mean")]
    if s1:
        out["study1"] = _bars(folder / "study1_universal_vs_specialists.png", [r["structure"] for r in s1],
                              {k: [r[f"{k}_dice"] for r in s1]
                               for k in ("universal", "specialist", "intensity_baseline")},
                              "Universal vs per-dataset specialists (held-out phantoms)")
    s2 = tables["study2_prompt_robustness"]
    if s2:
        styles = list(dict.fromkeys(r["style"] for r in s2))
        series = {t: [next((r["mean_dice"] for r in s2 if r["table"] == t and r["style"] == s), math.nan)
                      for s in styles] for t in dict.fromkeys(r["table"] for r in s2)}
        out["study2"] = _bars(folder / "study2_prompt_robustness.png", styles, series, "Mean Dice per prompt style")
    s3 = [r for r in tables["study3_text_ablation"] if "canonical_dice" in r]
    if s3:
        out["study3"] = _bars(folder / "study3_text_ablation.png", [r["table"] for r in s3],
                              {k: [r[f"{k}_dice"] for r in s3]
                               for k in ("canonical", "synonym_prompt", "synonym_only")},
                              "Concept-table source")
    return out


def _facts(result: dict, command: str) -> list[str]:
    p, m = result["profile"], result["machine"]
    return [f"command: `{command}` (profile `{p['name']}`, seed {p['seed']})",
            f"total wall time: {result['total_s'] / 60:.1f} min ({result['total_s']:.0f} s; "
            f"data {result['data_s']:.0f} s)",
            f"data: {p['cases']} phantom cases (20 % of each source held out), spacing scale {p['spacing_scale']}, "
            f"shards on a {' x '.join(f'{s:g}' for s in result['spacing'])} mm grid",
            f"budget: {p['steps']} steps per universal model; {p['steps'] // 3} steps for each of the 3 specialists; "
            f"batch {p['batch_size']}, patch {' x '.join(map(str, p['patch_size']))}, lr {p['lr']:g} "
            f"(warm-up {p['warmup_steps']}, cosine over the steps), {p['precision']}",
            f"machine: {m['cpus']} CPUs, {p['threads']} torch threads, {p['loader_workers']} loader workers, "
            f"torch {m['torch']}, load average {m['load_average_1min']} at start and "
            f"{m.get('load_average_1min_end', '-')} at the end (timings are noisy on a shared machine)"]


def _target(rows: list[dict]) -> str:
    mean = next((r for r in rows if r["structure"] == "mean (all structures)"), None)
    if mean is None:
        return "No universal model was trained."
    ok = mean["difference"] >= -TARGET_MARGIN
    return (f"Universal mean Dice {mean['universal_dice']:.3f} vs specialists {mean['specialist_dice']:.3f} "
            f"(difference {mean['difference']:+.3f}; target >= -{TARGET_MARGIN}): **{'met' if ok else 'not met'}**.")


def _prompt_target(rows: list[dict]) -> str:
    """The issue's robustness target, read on the knowledge-pretrained table when it ran."""
    loss = {r["style"]: r["loss_vs_canonical"] for r in rows if r["table"] == "knowledge"}
    if not loss:
        return "The knowledge-pretrained table did not run, so its robustness target is not assessed."
    worst = max(loss.get("synonym", math.nan), loss.get("paraphrase", math.nan))
    ok = worst <= PROMPT_LOSS_TARGET
    return (f"Knowledge-pretrained table: synonym loss {loss.get('synonym', math.nan):.3f}, paraphrase loss "
            f"{loss.get('paraphrase', math.nan):.3f} (target <= {PROMPT_LOSS_TARGET}): "
            f"**{'met' if ok else 'not met'}**.")


def render_markdown(result: dict, tables: dict[str, list[dict]], plots: dict[str, Path], command: str) -> str:
    def img(key: str) -> str:
        return f"![{key}]({FOLDER}/{plots[key].name})" if key in plots else ""

    quick = ("\n> The `quick` profile only proves that every code path runs; its numbers mean nothing.\n"
             if result["profile"]["name"] == "quick" else "")
    table = universal_table(result)
    parts = [f"# Phantom benchmark (`{result['profile']['name']}` profile)\n{quick}",
             section("Run", bullet_list(_facts(result, command))),
             section("1. Universal model vs per-dataset specialists",
                     f"Universal: the `{table}` concept table, canonical-name prompts. Specialists: one MONAI "
                     "BasicUNet per source (softmax, Dice + cross-entropy) on the same shards and crops. "
                     "Equal total training steps. `wall s`: training and evaluation of all four models.",
                     _target(tables["study1_universal_vs_specialists"]),
                     markdown_table(tables["study1_universal_vs_specialists"], headers=HEADERS), img("study1")),
             section("2. Prompt robustness",
                     "Every prompt goes through the resolver (`Segmenter`); a refused prompt scores Dice 0. "
                     "`modality` prompts are segmented without a modality argument (the qualifier sets it). "
                     "`wall s`: evaluation of that model.", _prompt_target(tables["study2_prompt_robustness"]),
                     markdown_table(tables["study2_prompt_robustness"], headers=HEADERS), img("study2")),
             section("3. Text-side ablation",
                     "`synonym prompts`: tree synonyms through the resolver (lexicon, then embeddings). "
                     "`synonym-only`: the model is queried with the text encoder's embedding of a synonym "
                     "in place of the canonical name's, so the concept is reached only through the synonym's "
                     "text; a one-hot table has no row for unseen text (scored 0). `wall s`: text-fit, training "
                     "and evaluation.",
                     markdown_table(tables["study3_text_ablation"], headers=HEADERS), img("study3")),
             section("4. Intensity-only baseline",
                     "One intensity window per structure and source, fitted on the training cases "
                     "(`sat.bench.intensity_baseline`); scored on held-out cases where the structure is present.",
                     markdown_table(tables["study4_intensity_baseline"], headers=HEADERS)),
             section("Reproduce", f"`{command}` rewrites this file, `{FOLDER}/rows.json` (every per-case row) "
                     f"and the plots.")]
    return "\n".join(parts)


def clean(obj):
    """JSON-safe copy: NaN and infinities become ``None`` (standard JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def write_phantom_report(result: dict, results_dir: Path, command: str) -> Path:
    """Write the Markdown, plots and JSON; returns the Markdown path."""
    folder = Path(results_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    tables = all_tables(result)
    plots = write_plots(tables, folder)
    rows = [r for m in result["universal"].values() for r in m.get("rows", [])]
    rows += [{**r, "source_model": s} for s, m in result["specialists"].items() for r in m["rows"]]
    strip = {k: v for k, v in result.items() if k not in ("universal", "specialists")}
    strip["universal"] = {t: {k: v for k, v in m.items() if k != "rows"} for t, m in result["universal"].items()}
    strip["specialists"] = {s: {k: v for k, v in m.items() if k != "rows"} for s, m in result["specialists"].items()}
    payload = clean({**strip, "tables": tables, "rows": rows})
    (folder / "rows.json").write_text(json.dumps(payload, indent=1, default=str))
    md = Path(results_dir) / f"{FOLDER}.md"
    md.write_text(render_markdown(result, tables, plots, command) + "\n")
    return md
