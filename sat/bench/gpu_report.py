"""Markdown tables of a ``sat benchmark gpu`` result (see :mod:`sat.bench.gpu`)."""
from __future__ import annotations


def _f(v, fmt: str = "{:.3f}", blank: str = "") -> str:
    return blank if v is None else fmt.format(v)


def _variants(rows: list[dict]) -> list[str]:
    out = ["| variant | batch | step (s) | peak memory (GB) | GFLOP / sample | achieved TFLOP/s | MFU |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| `{r['variant']}` | | {r['error']} | | | | |")
            continue
        batch = f"{r['batch']} (largest)" if r.get("largest") else str(r["batch"])
        out.append(f"| `{r['variant']}` | {batch} | {_f(r['step_s'])} | {_f(r['peak_gb'], '{:.1f}')} "
                   f"| {r['flops_per_sample'] / 1e9:.1f} | {_f(r['tflops'], '{:.2f}')} "
                   f"| {_f(r.get('mfu'), '{:.1%}')} |")
    return out


def _overhead(rows: list[dict]) -> list[str]:
    out = ["| variant | prompts | text-query step (s) | plain 1x1x1 head step (s) | ratio | vs fewest prompts |",
           "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| `{r['variant']}` | {r['prompts']} | {_f(r['text_step_s'])} | {_f(r['plain_step_s'])} "
                   f"| {r['ratio']:.2f}x | {r['vs_fewest_prompts']:.2f}x |")
    return out


def _sliding(rows: list[dict]) -> list[str]:
    out = ["| prompts | model grid | windows | encode (s) | decode (s) | total (s) | peak memory (GB) |",
           "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['prompts']} | {' x '.join(map(str, r['grid']))} | {r['windows']} | {_f(r['encode_s'])} "
                   f"| {_f(r['decode_s'])} | {_f(r['total_s'])} | {_f(r['peak_gb'], '{:.1f}')} |")
    return out


def _data(rows: list[dict]) -> list[str]:
    out = ["| workers | batch | patch | pinned memory | samples/s | waiting for data | step (s) |",
           "|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| | | | {'yes' if r['pin_memory'] else 'no'} | {r['error']} | | |")
            continue
        out.append(f"| {r['workers']} | {r['batch']} | {r['patch']}³ | {'yes' if r['pin_memory'] else 'no'} "
                   f"| {_f(r['samples_per_s'], '{:.2f}')} | {_f(r['wait_share'], '{:.0%}')} | {_f(r['step_s'])} |")
    return out


def _options(rows: list[dict]) -> list[str]:
    out = ["| option | variant | patch | step (s) | peak memory (GB) |", "|---|---|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['option']} | `{r['variant']}` | | {r['error']} | |")
        else:
            out.append(f"| {r['option']} | `{r['variant']}` | {r['patch']}³ | {_f(r['step_s'])} "
                       f"| {_f(r['peak_gb'], '{:.1f}')} |")
    return out


def markdown(result: dict, command: str) -> str:
    p = result["profile"]
    lines = [f"Command: `{command}`", "",
             f"Device: {result['device']}, torch {result['torch']}, bf16 autocast: {result['bf16']}, "
             f"bf16 peak for MFU: {_f(result['peak_tflops'], '{:.0f} TFLOP/s', 'unknown (MFU blank)')}; "
             f"profile `{p['name']}`, {result['total_s']} s in all (sections: "
             + ", ".join(f"{k} {v} s" for k, v in result["sections_s"].items()) + ").", "",
             f"### Training step per variant ({p['patch']}³, {p['queries']} prompts, AdamW)", "",
             *_variants(result["variants"]), "",
             f"### Text-query head vs a plain 1x1x1 conv head (same backbone, batch 1, {p['patch']}³)", "",
             *_overhead(result["text_overhead"]), "",
             f"### Sliding-window inference: {' x '.join(map(str, p['sw_shape']))} CT at "
             f"{' x '.join(map(str, p['sw_spacing']))} mm resampled to {p['sw_target_mm']} mm, `{p['sw_variant']}`, "
             f"{p['patch']}³ windows", "", *_sliding(result["sliding_window"]), "",
             f"### Shard streaming into training steps (`{p['data_variant']}`, phantom shards)", "",
             *_data(result["data"]), "",
             "### GPU-path switches (batch 1)", "", *_options(result["options"]), ""]
    return "\n".join(lines)
