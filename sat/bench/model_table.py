"""Parameter and memory table of the model variants in ``configs/model`` (for the README).

``sat models`` (or ``python -m sat.bench.model_table``) measures every variant in a fresh subprocess (so
one variant's allocations never hide another's peak) and prints a Markdown table: trainable
parameters, fp32 weight size, and the peak extra memory and time of one forward + backward pass at
a small patch.
On a GPU (``--device cuda --bf16 --patch 128``) the same command reports bf16 training-step time
(forward, backward, AdamW step) and ``torch.cuda.max_memory_allocated``.

CPU memory is the growth of the process's peak resident set (``VmHWM``, reset before the pass)
over its size after building the model; it is approximate and depends on the allocator.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from sat.model.config import load_model_config, model_variants


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def measure(variant: str, *, patch: int, queries: int = 8, device: str = "cpu", bf16: bool = False,
            steps: int = 1) -> dict:
    """Build ``variant`` and run ``steps`` training passes of batch 1 at ``patch``^3 with ``queries`` prompts.

    Returns:
        dict with ``params`` (trainable), ``patch``, ``peak_mb`` and ``step_s`` (median of the
        timed passes; the first pass is a warm-up when ``steps > 1``).
    """
    from sat.model.builder import build_model, count_parameters

    cfg = load_model_config(variant)
    torch.manual_seed(0)
    net = build_model(cfg, [f"c{i}" for i in range(queries)], torch.randn(queries, cfg.text_dim)).to(device)
    params = count_parameters(net)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4) if device != "cpu" else None
    x = torch.randn(1, cfg.in_channels, patch, patch, patch, device=device)
    q = torch.arange(queries, device=device)[None]
    target = (torch.rand(1, queries, patch, patch, patch, device=device) > 0.5).float()
    times = []
    if device == "cpu":
        base_kb, have_proc = _status_kb("VmRSS"), _reset_peak()
    else:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(steps):
        t0 = time.perf_counter()
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x, q, torch.tensor([1], device=device))
            logits = out[0] if isinstance(out, tuple) else out
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
        loss.backward()
        if opt is not None:
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if device == "cpu":
        peak_kb = _status_kb("VmHWM") if have_proc else None
        peak_mb = (peak_kb - base_kb) / 1024 if peak_kb is not None and base_kb is not None else float("nan")
    else:
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    timed = sorted(times[1:] if len(times) > 1 else times)
    return {"variant": variant, "backbone": cfg.backbone.name, "head": cfg.head.name, "params": params,
            "patch": patch, "peak_mb": peak_mb, "step_s": timed[len(timed) // 2]}


def patch_for(variant: str, patch: int) -> int:
    """Smallest patch >= ``patch`` that the variant can train on (divisible, >= 2x2x2 bottleneck)."""
    from sat.model.builder import build_backbone

    cfg = load_model_config(variant)
    with torch.device("meta"):
        factor = 32 if cfg.backbone.name == "swinunetr" else build_backbone(cfg).downsample
    step = 2 * factor
    return max(step, -(-patch // factor) * factor)


def markdown(rows: list[dict], *, device: str) -> str:
    what = "fwd+bwd" if device == "cpu" else "train step"
    lines = [f"| variant | backbone | head | trainable params | fp32 weights | patch | peak memory ({what}) "
             f"| time ({what}) |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['variant']}` | {r['backbone']} | {r['head']} | {r['params'] / 1e6:.1f}M "
                     f"| {r['params'] * 4 / 2**20:.0f} MB | {r['patch']}³ | {r['peak_mb']:.0f} MB "
                     f"| {r['step_s']:.2f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sat models", description=__doc__.splitlines()[0])
    p.add_argument("variants", nargs="*", help="variant names (default: every YAML in configs/model)")
    p.add_argument("--patch", type=int, default=32, help="cube side in voxels (raised where a variant needs more)")
    p.add_argument("--queries", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (GPU)")
    p.add_argument("--steps", type=int, default=1, help="passes per variant (timings use the median after the first)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child mode: JSON for one variant
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure(args.variants[0], patch=args.patch, queries=args.queries, device=args.device,
                                 bf16=args.bf16, steps=args.steps)))
        return 0
    unknown = [v for v in args.variants if v not in model_variants()]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; expected some of {model_variants()}")
    rows = []
    for v in args.variants or model_variants():
        cmd = [sys.executable, "-m", "sat.bench.model_table", v, "--one", "--patch", str(patch_for(v, args.patch)),
               "--queries", str(args.queries), "--device", args.device, "--steps", str(args.steps),
               "--threads", str(args.threads)] + (["--bf16"] if args.bf16 else [])
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"{v}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"measured {v}", file=sys.stderr)
    print(markdown(rows, device=args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
