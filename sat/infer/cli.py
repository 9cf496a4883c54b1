"""``sat segment``: free-text prompts -> masks in the input's own geometry."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sat.errors import InputError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sat segment", description=__doc__)
    p.add_argument("-i", "--input", required=True, help="image file, DICOM folder or zip")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("-p", "--prompt", action="append", default=[], help="structure in free text (repeatable)")
    p.add_argument("--all", action="store_true", help="segment every trained concept")
    p.add_argument("--modality", choices=["CT", "MR", "PET", "US"], help="override modality")
    p.add_argument("--checkpoint", required=True, help="model checkpoint (model.ckpt)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--formats", default="nifti", help="comma list of nifti,multilabel,dicom_seg")
    p.add_argument("--probabilities", action="store_true", help="also write float16 probability maps")
    p.add_argument("--no-preview", action="store_true", help="skip preview.png")
    return p




def main(argv: list[str] | None = None) -> int:
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) and 2
    if not args.prompt and not args.all:
        raise InputError("no prompts given: pass -p PROMPT (repeatable) or --all")
    if not Path(args.input).exists():
        raise InputError(f"input not found: {args.input}")
    from sat.infer.io import check_writable_dir, load_volume

    out = check_writable_dir(args.output)
    volume = load_volume(args.input)
    from sat.infer.segmenter import Segmenter

    seg = Segmenter.from_checkpoint(args.checkpoint, device=args.device)
    result = seg.segment(volume, args.prompt, modality=args.modality, all_concepts=args.all,
                         probabilities=args.probabilities)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    summary = result.save(out, formats=formats, probabilities=args.probabilities, preview=not args.no_preview)
    for s in result.structures:
        st = s.stats
        print(f"{s.prompt!r:32} -> {s.name:28} {st.get('volume_ml', 0):9.1f} ml")
    for r in result.refused:
        sugg = ", ".join(x["name"] for x in r["suggestions"]) or "none"
        print(f"refused {r['prompt']!r}: {r['reason']}; suggestions: {sugg}", file=sys.stderr)
    print(json.dumps({"output": str(out), "structures": len(summary["structures"]),
                      "refused": len(result.refused)}))
    return 2 if result.refused else 0
