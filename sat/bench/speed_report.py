"""Write ``speed.md`` (and ``speed.json`` beside it) from :func:`sat.bench.speed.run_speed`."""
from __future__ import annotations

import json
from pathlib import Path

from sat.bench.phantom_report import clean
from sat.eval.report import bullet_list, markdown_table, section


def _size(row: dict) -> str:
    return " x ".join(map(str, row["shape"])) + " @ " + " x ".join(f"{s:g}" for s in row["spacing_mm"]) + " mm"


def _training_rows(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        if "error" in r:
            out.append({"variant": r["variant"], "error": r["error"], "seed": r["seed"], "wall_s": r["wall_s"]})
            continue
        out.append({"variant": r["variant"], "backbone": r["backbone"], "head": r["head"],
                    "params_M": r["params"] / 1e6, "patch": r["patch"], "step_s": r["step_s"],
                    "peak_mb": r["peak_mb"], "steps": r["steps"], "seed": r["seed"], "wall_s": r["wall_s"]})
    return out


def _one_row(d: dict, keys: tuple[str, ...]) -> list[dict]:
    return [{k: d[k] for k in keys if k in d}] if "error" not in d else [{"error": d["error"], "wall_s": d["wall_s"]}]


def render_speed(r: dict, command: str) -> str:
    m, p = r["machine"], r["profile"]
    facts = [f"command: `{command}` (profile `{p['name']}`)", f"total wall time: {r['total_s']:.0f} s",
             f"machine: {m['cpus']} CPUs, {m['torch_threads']} torch threads, torch {m['torch']}, load average "
             f"{m['load_average_1min']} at start and {m['load_average_1min_end']} at the end (timings on a shared "
             f"machine are noisy)",
             (f"model: the trained checkpoint `{r['model']}` (prompts beyond its concepts are their synonyms)"
              if r.get("model") else
              f"model: random weights of the `{p['checkpoint_preset']}` preset "
              f"(`sat.bench.segment_speed.build_random_checkpoint`); "
              f"its masks are noise, which makes restoring them slower than real ones")]
    vol = [{"volume": _size(x), **{k: x[k] for k in ("megavoxels", "prompts", "seconds", "repeats", "seed", "wall_s")}}
           for x in r["volume_scaling"]]
    o = r["text_query_overhead"]
    overhead = [{"model": name, "params_M": o["params"][name] / 1e6, "step_s": o["step_s"][name],
                 "patch": o["patch"], "batch": o["batch"], "classes": o["classes"], "seed": o["seed"],
                 "wall_s": o["wall_s"]} for name in o["step_s"]]
    parts = [f"# Speed benchmark (`{p['name']}` profile)\n",
             section("Run", bullet_list(facts)),
             section("Inference time vs prompt count",
                     "One `Segmenter.segment` call on a synthetic CT, image features recomputed every call "
                     "(median of `repeats`); `concepts`: distinct concepts decoded.",
                     markdown_table(r["prompt_scaling"])),
             section("Inference time vs volume size", markdown_table(vol)),
             section("Training step per model variant (CPU)",
                     "`sat.bench.model_table.measure`: forward + backward, batch 1, 8 queries; `peak_mb`: growth of the "
                     "process's peak RSS during the pass.", markdown_table(_training_rows(r["training_steps"]))),
             section("Text queries vs a multi-class U-Net",
                     f"`sat.bench.train_overhead.benchmark`: full training steps (AdamW), medians; ratio text / BasicUNet "
                     f"{o['ratio']:.2f}, text / same backbone {o['ratio_same_backbone']:.2f}.",
                     markdown_table(overhead)),
             section("Data pipeline: shards vs NIfTI + MONAI",
                     "`python -m sat.bench.data_pipeline throughput`: crops per second of the shard pipeline and of "
                     "`LoadImaged` ... `RandCropByPosNegLabeld` on the same generated cases.",
                     markdown_table(_one_row(r["data_throughput"], ("cases", "samples", "patch", "spacing",
                                                                     "shard_samples_per_s", "monai_samples_per_s",
                                                                     "ratio", "seed", "wall_s")))),
             section("Peak memory",
                     "`sat.bench.segment_speed.memory_child` in a fresh process: peak RSS after loading, after "
                     "segmenting and after saving the masks.",
                     markdown_table(_one_row(r["peak_memory"], ("shape", "prompts", "peak_gb_before", "peak_gb_segment",
                                                                "peak_gb_save", "segment_s", "save_s", "seed",
                                                                "wall_s"))))]
    if "gpu" in r:
        g = r["gpu"]
        parts.append(section(f"GPU ({g['device']})", f"Inference peak memory {g['inference_peak_gb']:.2f} GB.",
                             markdown_table(g["prompt_scaling"]), markdown_table(_training_rows(g["training_steps"]))))
    else:
        parts.append(section("GPU", "No CUDA device was present in this run; `sat benchmark speed` on a GPU machine "
                                    "adds inference and bf16 training-step tables here."))
    parts.append(section("Reproduce", f"`{command}` rewrites this file and `speed.json`."))
    return "\n".join(parts)


def write_speed_report(result: dict, results_dir: Path, command: str) -> Path:
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "speed.json").write_text(json.dumps(clean(result), indent=1, default=str))
    md = results_dir / "speed.md"
    md.write_text(render_speed(result, command) + "\n")
    return md
