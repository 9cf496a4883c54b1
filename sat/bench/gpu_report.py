"""Markdown tables of a ``sat benchmark gpu`` result (see :mod:`sat.bench.gpu`)."""
from __future__ import annotations


def _f(v, fmt: str = "{:.3f}", blank: str = "") -> str:
    return blank if v is None else fmt.format(v)


def _table(head: str, align: str, rows: list[dict], cells, error_cells=None) -> list[str]:
    """A Markdown table: ``head`` and ``align`` are its first two lines, one row per dict made by
    ``cells(row)`` (or ``error_cells(row)`` for a row that failed), each a list of cell texts."""
    out = [head, align]
    for r in rows:
        if "error" in r and error_cells:  # the cells a failure leaves empty are one space wide
            out.append("|" + "|".join(f" {c} " if c else " " for c in error_cells(r)) + "|")
        else:
            out.append("| " + " | ".join(cells(r)) + " |")
    return out


def _variants(rows: list[dict]) -> list[str]:
    def cells(r):
        batch = f"{r['batch']} (largest)" if r.get("largest") else str(r["batch"])
        return [f"`{r['variant']}`", batch, _f(r["step_s"]), _f(r["peak_gb"], "{:.1f}"),
                f"{r['flops_per_sample'] / 1e9:.1f}", _f(r["tflops"], "{:.2f}"), _f(r.get("mfu"), "{:.1%}")]

    return _table("| variant | batch | step (s) | peak memory (GB) | GFLOP / sample | achieved TFLOP/s | MFU |",
                  "|---|---:|---:|---:|---:|---:|---:|", rows, cells,
                  lambda r: [f"`{r['variant']}`", "", r["error"], "", "", "", ""])


def _overhead(rows: list[dict]) -> list[str]:
    return _table("| variant | prompts | text-query step (s) | plain 1x1x1 head step (s) | ratio | vs fewest prompts |",
                  "|---|---:|---:|---:|---:|---:|", rows,
                  lambda r: [f"`{r['variant']}`", str(r["prompts"]), _f(r["text_step_s"]), _f(r["plain_step_s"]),
                             f"{r['ratio']:.2f}x", f"{r['vs_fewest_prompts']:.2f}x"])


def _sliding(rows: list[dict]) -> list[str]:
    return _table("| prompts | model grid | windows | encode (s) | decode (s) | total (s) | peak memory (GB) |",
                  "|---:|---|---:|---:|---:|---:|---:|", rows,
                  lambda r: [str(r["prompts"]), " x ".join(map(str, r["grid"])), str(r["windows"]),
                             _f(r["encode_s"]), _f(r["decode_s"]), _f(r["total_s"]), _f(r["peak_gb"], "{:.1f}")])


def _data(rows: list[dict]) -> list[str]:
    def pinned(r):
        return "yes" if r["pin_memory"] else "no"

    return _table("| workers | batch | patch | pinned memory | samples/s | waiting for data | step (s) |",
                  "|---:|---:|---:|---|---:|---:|---:|", rows,
                  lambda r: [str(r["workers"]), str(r["batch"]), f"{r['patch']}³", pinned(r),
                             _f(r["samples_per_s"], "{:.2f}"), _f(r["wait_share"], "{:.0%}"), _f(r["step_s"])],
                  lambda r: ["", "", "", pinned(r), r["error"], "", ""])


def _options(rows: list[dict]) -> list[str]:
    return _table("| option | variant | patch | step (s) | peak memory (GB) |", "|---|---|---:|---:|---:|", rows,
                  lambda r: [str(r["option"]), f"`{r['variant']}`", f"{r['patch']}³", _f(r["step_s"]),
                             _f(r["peak_gb"], "{:.1f}")],
                  lambda r: [str(r["option"]), f"`{r['variant']}`", "", r["error"], ""])


def _click(rows: list[dict]) -> list[str]:
    return _table("| checkpoint | volume | prompt | segment (s) | calls | first click median (s) | later clicks median (s) "
                  "| 90th percentile (s) | max (s) |", "|---|---|---|---:|---:|---:|---:|---:|---:|", rows,
                  lambda r: [f"`{r['checkpoint']}`", " x ".join(map(str, r["shape"])), r["prompt"],
                             _f(r["segment_s"]), str(r["calls"]), _f(r["first_click_median_s"]),
                             _f(r["later_click_median_s"]), _f(r["p90_s"]), _f(r["max_s"])],
                  lambda r: [f"`{r['checkpoint']}`", "", r["prompt"], r["error"], "", "", "", "", ""])


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
             "### Refinement click on cached features (`Segmenter.refine`, synthetic CT on the OpenKBP grid)", "",
             *_click(result.get("click", [])), "",
             "### GPU-path switches (batch 1)", "", *_options(result["options"]), ""]
    return "\n".join(lines)
