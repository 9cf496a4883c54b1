"""``sat segment``: free-text prompts -> masks in the input's own geometry.

    sat segment -i ct.nii.gz -o out -p liver "left kidney" kidneys
    sat segment -i scans/ -o out --all --num-parts 4 --part 0       # batch: a folder or a CSV

Exit codes: 0 success; 1 some batch case failed (the others are written); 2 bad input or a refused
prompt (answered prompts are still written); 3 with ``--strict``, a mask failed a plausibility
check (see :mod:`sat.infer.plausibility`; the masks are still written and flagged).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path

from sat.errors import InputError
from sat.io.formats import FORMATS, check_formats
DEFAULT_CHECKPOINT = Path("outputs") / "demo" / "model.ckpt"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line through the dispatcher, not usage + message
        from sat.cli_hints import parser_error

        parser_error(self, message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sat segment", description="Segment structures named in free text. "
                "Other libraries' progress bars and warnings show only with --verbose.")
    p.add_argument("-i", "--input", required=True, help="image file, DICOM folder or zip; or a folder/CSV of cases")
    p.add_argument("-o", "--output", required=True, help="output folder (one sub-folder per case in batch mode)")
    p.add_argument("-p", "--prompt", action="extend", nargs="+", default=[], help="structures in free text")
    p.add_argument("--all", action="store_true", help="segment every trained concept")
    p.add_argument("--modality", help="CT, MR, PET or US (default: DICOM tag, prompt qualifier, intensities)")
    p.add_argument("--checkpoint", help=f"model checkpoint (default: $SAT_CHECKPOINT, else {DEFAULT_CHECKPOINT})")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--formats", default="nifti", help=f"comma list of {','.join(FORMATS)}")
    p.add_argument("--probabilities", action="store_true", help="also write probability maps")
    p.add_argument("--channel", type=int, help="channel of a 4D (multi-channel) image")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="left-right mirrored test-time augmentation (default: what the checkpoint recommends)")
    p.add_argument("--threads", default="auto", help="CPU threads: a number or auto")
    p.add_argument("--no-preview", action="store_true", help="skip preview.png")
    p.add_argument("--num-parts", type=int, default=1, help="split a batch into this many parts")
    p.add_argument("--part", type=int, default=0, help="which part (0-based) this run processes")
    p.add_argument("--strict", action="store_true",
                   help="exit 3 when a mask fails a plausibility check (default: a warning)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--point", action="append", default=[], metavar="X,Y,Z[,+|-]",
                   help="refine with a click (world RAS mm; + inside the structure, - outside; repeat for "
                        "more; write --point=-10,5,3 when the first number is negative); at most one prompt, "
                        "or none for clicks / a box alone")
    p.add_argument("--box", metavar="X0,Y0,Z0,X1,Y1,Z1",
                   help="refine with a box: two opposite corners in mm (flat along one axis: a 2D box on that slice)")
    p.add_argument("--voxel", action="store_true", help="--point and --box are voxel indices of the input image")
    p.add_argument("--generic-box", action="store_true",
                   help="a --box without a prompt gets the text-less box answer (default: the known structure "
                        "whose answer fits the box, when one does)")
    return p


def _checkpoint(arg: str | None) -> Path:
    path = Path(arg or os.environ.get("SAT_CHECKPOINT") or DEFAULT_CHECKPOINT).expanduser()
    if not path.is_file():
        hint = "" if arg else " (pass --checkpoint PATH or set SAT_CHECKPOINT)"
        raise InputError(f"checkpoint not found: {path}{hint}")
    return path


def _formats(text: str) -> tuple[str, ...]:
    try:
        return check_formats(text.split(","))
    except InputError:
        raise InputError(f"unknown --formats {text!r}; choose from {','.join(FORMATS)}") from None


def _report_refused(refused: list[dict]) -> None:
    for r in refused:
        sugg = ", ".join(x["name"] for x in r["suggestions"]) or "none"
        print(f"sat segment: refused {r['prompt']!r}: {r['reason']}; suggestions: {sugg}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the text encoder's load bar
    _log_warnings_to_stderr()
    prompts = [p.strip() for p in args.prompt if p.strip()]
    interactive = bool(args.point or args.box)
    if not prompts and not args.all and not interactive:
        raise InputError("no prompts given: pass -p PROMPT [PROMPT ...] or --all")
    if interactive and (args.all or len(prompts) > 1 or args.tta):
        raise InputError("--point / --box refine one structure: give at most one prompt, without --all or --tta")
    formats = _formats(args.formats)
    threads = args.threads if args.threads == "auto" else _int(args.threads, "--threads")
    if args.modality is not None:
        from sat.infer.segmenter import normalize_modality

        if normalize_modality(args.modality) is None:
            raise InputError(f"unknown --modality {args.modality!r}; expected CT, MR, PET or US")
    source = Path(args.input).expanduser()
    if not source.exists():
        raise InputError(f"input not found: {source}")
    ckpt = _checkpoint(args.checkpoint)
    from sat.infer.batch import discover_cases

    cases = discover_cases(source)
    from sat.io.writers import check_writable_dir

    out = check_writable_dir(args.output)
    options = dict(prompts=prompts, all_concepts=args.all, probabilities=args.probabilities, tta=args.tta)
    save = dict(formats=formats, probabilities=args.probabilities, preview=not args.no_preview)
    if cases is None:
        if args.num_parts != 1:
            raise InputError(f"--num-parts needs a batch input (a folder of images or a CSV), got {source}")
        return _single(args, ckpt, threads, source, out, options, save)
    if interactive:
        raise InputError(f"--point / --box need one image, not a batch ({source})")
    from sat.infer.batch import select_part

    mine = select_part(cases, args.num_parts, args.part)
    return _batch(args, ckpt, threads, mine, len(cases), out, options, save)


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (not the one seen at creation); while ``held`` is a
    list (a batch with its progress bar) lines are kept there instead, to print after the bar."""

    held: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        line = f"sat segment: {record.levelname.lower()}: {record.getMessage()}"
        if self.held is not None:
            self.held.append(line)
        else:
            print(line, file=sys.stderr)


def _handler() -> _StderrHandler:
    return next(h for h in logging.getLogger("sat").handlers if isinstance(h, _StderrHandler))


def _log_warnings_to_stderr() -> None:
    """Library warnings (e.g. an inferred modality) as ``sat segment: warning: ...`` lines."""
    logger = logging.getLogger("sat")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setLevel(logging.WARNING)
        logger.addHandler(handler)


def _int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{flag} must be a positive integer or auto, got {text!r}")
    return value


def _load(ckpt: Path, args, threads):
    from sat.infer.segmenter import Segmenter

    return Segmenter.from_checkpoint(ckpt, device=args.device, threads=threads)


def _single(args, ckpt, threads, source, out, options, save) -> int:
    from sat.io.volume import load_volume

    volume = load_volume(source, channel=args.channel)  # bad images fail before the model loads
    if "dicom_seg" in save["formats"] and volume.header_meta.get("format") != "dicom":
        raise InputError(f"{source}: --formats dicom_seg needs a DICOM series input (folder or zip)")
    seg = _load(ckpt, args, threads)
    try:
        if args.point or args.box:
            from sat.infer.refine import parse_box, parse_point

            points = [parse_point(p) for p in args.point]  # ((x, y, z), positive)
            box = parse_box(args.box) if args.box else None
            result = seg.refine(volume, (options["prompts"] or [None])[0], points, box, modality=args.modality,
                                space="voxel" if args.voxel else "world", probabilities=options["probabilities"],
                                name_boxes=not args.generic_box)
        else:
            result = seg.segment(volume, options["prompts"], modality=args.modality,
                                 all_concepts=options["all_concepts"], probabilities=options["probabilities"],
                                 tta=options["tta"])
        summary = result.save(out, **save)
    except MemoryError:
        raise InputError(f"{source}: not enough memory to segment this volume") from None
    for s in result.structures:
        mark = f"  IMPLAUSIBLE ({', '.join(f['check'] for f in s.flags)})" if s.flags else ""
        print(f"{s.prompt!r:32} -> {s.name:28} {s.stats.get('volume_ml', 0):9.1f} ml{mark}")
    _report_refused(result.refused)
    print(json.dumps({"output": str(out), "structures": len(summary["structures"]), "refused": len(result.refused),
                      "implausible": len(result.flagged)}))
    if result.refused:
        return 2
    return 3 if args.strict and result.flagged else 0


def _batch(args, ckpt, threads, cases, total, out, options, save) -> int:
    from sat.infer.batch import run_batch

    seg = _load(ckpt, args, threads)
    every = [seg.tree.get(c).name for c in sorted(seg.trained)] if options["all_concepts"] else []
    prompts = list(dict.fromkeys(options["prompts"] + every))
    plans = seg.plan(prompts)
    refused = [{"prompt": p.prompt, "reason": p.refused, "suggestions": p.suggestions} for p in plans if not p.concepts]
    _report_refused(refused)
    if len(refused) == len(plans):
        raise InputError("no prompt can be answered by this model; nothing to segment")
    st = ckpt.stat()
    fingerprint = {"prompts": prompts, "checkpoint": [str(ckpt.resolve()), st.st_size, int(st.st_mtime)],
                   "modality": args.modality, "channel": args.channel, "tta": options["tta"],
                   "probabilities": options["probabilities"], "formats": list(save["formats"]),
                   "preview": save["preview"]}

    flagged: list[str] = []

    def segment_case(case, folder):
        result = seg.segment(case.path if args.channel is None else _volume(case.path, args.channel), prompts,
                             modality=case.modality or args.modality, probabilities=options["probabilities"],
                             tta=options["tta"])
        if result.flagged:
            flagged.append(case.case_id)
        return result.save(folder, **save)

    handler = _handler()
    handler.held = [] if not args.quiet else None  # warnings wait until the progress bar is done
    try:
        report = run_batch(cases, out, segment_case, fingerprint, progress=not args.quiet)
    finally:
        held, handler.held = handler.held or [], None
    for line, n in Counter(held).items():
        print(line + (f" ({n} times)" if n > 1 else ""), file=sys.stderr)
    name = "batch_summary.json" if args.num_parts == 1 else f"batch_summary.part{args.part}of{args.num_parts}.json"
    (out / name).write_text(json.dumps({**report, "part": args.part, "num_parts": args.num_parts,
                                        "refused": refused}, indent=1))
    part = f" (part {args.part} of {args.num_parts}: {len(cases)} of {total} cases)" if args.num_parts > 1 else ""
    print(f"sat segment: {len(report['done'])} segmented, {len(report['skipped'])} already done, "
          f"{len(report['failed'])} failed{part}")
    for case_id, message in report["failed"].items():
        print(f"  FAILED {case_id}: {message}")
    if flagged:
        print(f"sat segment: implausible masks in {len(flagged)} case(s): {', '.join(flagged[:10])}"
              f"{' ...' if len(flagged) > 10 else ''} (see their statistics.json)", file=sys.stderr)
    if report["failed"]:
        return 1
    return 2 if refused else (3 if args.strict and flagged else 0)


def _volume(path, channel):
    from sat.io.volume import load_volume

    return load_volume(path, channel=channel)

