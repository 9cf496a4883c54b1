"""``sat segment-bench`` part (d): the first free-text prompt, which loads the text encoder.

Exact terms never touch the encoder; the first prompt that is not one (a paraphrase such as
"liver as seen on the scan") builds it, reads the cached term table and encodes. Measured in fresh
processes, so nothing is warm that a real first call would not find warm:

* ``first_resolve_s``: resolving one free-text prompt on a loaded ``Segmenter`` (target <= 0.5 s);
  ``warm_first_resolve_s``: the same once the background warm-up of ``Segmenter(warm_text=True)``
  has finished (``warmup_s``: how long that took after loading);
* ``one_s`` / ``many_s`` / ``ratio``: the first ``segment`` call with 1 vs ``n`` free-text prompts
  on a loaded ``Segmenter`` and a loaded image, resolution and image encoding included
  (target <= 1.3x);
* ``shell_s``: cold ``sat segment`` from the shell with one free-text prompt (target <= 5 s).

The term-embedding table is cached on disk after its first computation (minutes on 2 cores);
the figures assume that cache exists, as it does after any earlier free-text prompt.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

TEMPLATE = "{} as seen on the scan"  # reaches the embedding stage for every phantom concept


def free_text_prompts(seg, n: int) -> list[str]:
    """``n`` paraphrases of trained concept names that no lexical stage matches."""
    names = [seg.tree.get(c).name for c in sorted(seg.trained)]
    return [TEMPLATE.format(name) for name in names][:n]


def first_prompt_child(ckpt: str, sample: str, n: int, threads: str, resolve_only: bool = False,
                       warm: bool = False) -> dict:
    """Run in a fresh process: load model and image, then time the first free-text call: the
    resolution of one prompt (``resolve_only``; with ``warm``, after the text warm-up finished)
    or a whole ``segment`` call with ``n`` prompts."""
    from pathlib import Path

    from sat.bench.segment_speed import synthetic_ct
    from sat.io.volume import load_volume
    from sat.infer.segmenter import Segmenter

    t = time.perf_counter()
    seg = Segmenter.from_checkpoint(ckpt, device="cpu", threads=threads, warm_text=warm)
    out = {"load_s": round(time.perf_counter() - t, 3)}
    if warm:
        t = time.perf_counter()
        seg.start_text_warmup().join()
        out["warmup_s"] = round(time.perf_counter() - t, 3)
    prompts = free_text_prompts(seg, 1 if resolve_only else n)
    if resolve_only:
        t = time.perf_counter()
        plans = seg.plan(prompts)
        out.update(first_resolve_s=round(time.perf_counter() - t, 3), method=plans[0].resolution.method)
        return out
    vol = load_volume(sample) if sample and Path(sample).exists() else synthetic_ct((122, 101, 30), (3.0, 3.0, 3.0))
    t = time.perf_counter()
    result = seg.segment(vol, prompts, "CT")
    out.update(prompts=len(prompts), first_segment_s=round(time.perf_counter() - t, 3),
               answered=len(result.structures),
               embedding_prompts=[p.resolution.method for p in seg.plan(prompts)].count("embedding"))
    return out


def _child(ckpt: str, sample: str, n: int, threads: str, resolve_only: bool = False, warm: bool = False) -> dict:
    cmd = [sys.executable, "-m", "sat.bench.segment_speed", "--first-prompt-child", "--checkpoint", str(ckpt),
           "--sample", str(sample), "--prompts", str(n), "--threads", str(threads)]
    cmd += (["--resolve-only"] if resolve_only else []) + (["--warm-text"] if warm else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_first_prompt(ckpt: str, sample: str, n: int, threads: str, shell: bool = True) -> dict:
    """Figures (d); ``shell`` adds the cold ``sat segment`` wall time with one free-text prompt."""
    first = _child(ckpt, sample, 1, threads, resolve_only=True)
    warm = _child(ckpt, sample, 1, threads, resolve_only=True, warm=True)
    one, many = _child(ckpt, sample, 1, threads), _child(ckpt, sample, n, threads)
    out = {"first_resolve_s": first.get("first_resolve_s"), "first_method": first.get("method"),
           "warm_first_resolve_s": warm.get("first_resolve_s"), "warmup_s": warm.get("warmup_s"),
           "one": one, "many": many}
    if "first_segment_s" in one and "first_segment_s" in many:
        out["ratio"] = round(many["first_segment_s"] / one["first_segment_s"], 2)
    if shell:
        with tempfile.TemporaryDirectory(prefix="sat_bench_") as tmp:
            prompt = TEMPLATE.format("liver")
            cmd = [sys.executable, "-m", "sat.cli", "segment", "-i", str(sample), "-o", tmp, "-p", prompt,
                   "--checkpoint", str(ckpt), "--modality", "CT", "--quiet", "--no-preview",
                   "--threads", str(threads)]
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
            out["shell_s"] = round(time.perf_counter() - t, 2)
            out["shell_prompt"] = prompt
            if proc.returncode != 0:
                out["shell_error"] = proc.stderr.strip().splitlines()[-1:]
    return out
