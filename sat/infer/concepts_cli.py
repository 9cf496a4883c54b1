"""``sat concepts``: validate, resolve, show, list, calibrate and consistency (eval and bench from the harness).

``sat concepts resolve TEXT... [--file FILE] --json`` writes one JSON object per input:
``{"text", "concept", "name", "score", "modality", "suggestions", ...}``. Bad items (empty,
longer than 512 characters, punctuation only, a ``--file`` line that is not UTF-8) are refused
one by one with a ``reason``; they never stop the batch. Empty lines of ``--file`` are skipped.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType

from sat.cli_hints import add_extensions
from sat.errors import InputError
from sat.knowledge.tree import KINDS, REGIONS, KnowledgeTree, load_tree


def tree_from_args(args) -> KnowledgeTree:
    """The tree of ``--tree`` (default: the shipped one); a bad tree is an :class:`InputError`."""
    try:
        return load_tree(args.tree)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None


def spec_from_args(args):
    """The text encoder of ``--finetuned`` (default: raw MiniLM)."""
    from sat.text.encoder import TextEncoderSpec

    if args.finetuned and not Path(args.finetuned).is_file():
        raise InputError(f"--finetuned file not found: {args.finetuned}")
    return TextEncoderSpec(finetuned=args.finetuned) if args.finetuned else TextEncoderSpec()


def read_prompt_file(path: str | Path) -> list[tuple[str, str | None]]:
    """Lines of ``path`` (``-``: stdin) as ``(text, error)``; undecodable lines get an error, empty
    ones are skipped, a UTF-8 byte-order mark is dropped."""
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read prompt file {path}: {exc.strerror or exc}") from None
    out: list[tuple[str, str | None]] = []
    for n, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.append((raw.decode("utf-8", errors="replace"), f"line {n} of {path} is not valid UTF-8"))
            continue
        if text:
            out.append((text, None))
    return out


def _resolve(args) -> int:
    from sat.knowledge.resolver import Resolution
    from sat.text.resolver_factory import build_resolver

    items: list[tuple[str, str | None]] = [(t, None) for t in args.text]
    if args.file:
        items += read_prompt_file(args.file)
    if not items:
        raise InputError("give prompts as arguments or with --file FILE")
    if args.checkpoint:  # exactly what that checkpoint's `sat segment` would do
        from sat.infer.concepts import resolve

        return resolve(args, items)
    resolver = build_resolver(tree_from_args(args), spec_from_args(args), threshold=args.threshold)
    good = [t for t, err in items if err is None]
    answers = iter(resolver.resolve_many(good))
    for text, err in items:
        r = next(answers) if err is None else Resolution(text=text, concept=None, name=None, score=0.0,
                                                         reason=err)
        if args.json:
            print(json.dumps(r.to_dict(), ensure_ascii=False))
        elif r.concept:
            mod = f" [{r.modality}]" if r.modality else ""
            print(f"{text!r} -> {r.concept} ({r.name}) score {r.score:.3f} via {r.method}{mod}")
        else:
            sug = ", ".join(s["concept"] for s in r.suggestions)
            print(f"{text[:80]!r} -> refused: {r.reason}" + (f"; did you mean: {sug}" if sug else ""))
    return 0


def _show(args) -> int:
    tree = tree_from_args(args)
    if args.id not in tree:
        near = [c.id for c in tree.search(args.id, limit=5)]
        hint = f"; did you mean: {', '.join(near)}" if near else ""
        raise InputError(f"unknown concept id {args.id!r}{hint}")
    if args.checkpoint:
        from sat.infer.concepts import show

        return show(args, tree)
    c = tree.get(args.id)
    info = {**asdict(c), "parents": tree.parents(c.id), "children": tree.children(c.id),
            "ancestors": tree.ancestors(c.id)}
    print_info(info, args.json)
    return 0


def print_info(info: dict, as_json: bool) -> None:
    """A concept's fields as one JSON line, or one ``field  value`` line each."""
    if as_json:
        print(json.dumps(info, ensure_ascii=False))
    else:
        for k, v in info.items():
            print(f"{k:<12} {', '.join(v) if isinstance(v, (list, tuple)) else v}")


def _list(args) -> int:
    tree = tree_from_args(args)
    for key, value, allowed in (("region", args.region, REGIONS), ("kind", args.kind, KINDS)):
        if value and value not in allowed:
            raise InputError(f"--{key} {value!r} is not one of {', '.join(allowed)}")
    if args.checkpoint:  # what that checkpoint can segment, and through which trained concepts
        from sat.infer.concepts import list_concepts

        return list_concepts(args)
    rows = [c for c in tree.concepts.values()
            if (not args.region or c.region == args.region) and (not args.kind or c.kind == args.kind)]
    for c in rows:
        print(json.dumps({"id": c.id, "name": c.name, "region": c.region, "kind": c.kind})
              if args.json else f"{c.id:<40} {c.name}")
    return 0


def _validate(args) -> int:
    from sat.knowledge.validate import validate_tree

    tree = tree_from_args(args)
    errors = validate_tree(tree)
    for e in errors:
        print(e)
    print(f"{len(tree)} concepts, hash {tree.hash}: "
          + (f"{len(errors)} problem(s)" if errors else "OK"), file=sys.stderr)
    return 1 if errors else 0


def _calibrate(args) -> int:
    from sat.text.calibrate import calibrate
    from sat.text.sidecar import write_sidecar
    from sat.text.splits import SplitConfig

    tree, spec = tree_from_args(args), spec_from_args(args)
    result = calibrate(tree, spec, SplitConfig(seed=args.seed))
    print(json.dumps(result))
    if args.finetuned:
        path = write_sidecar(args.finetuned, {**result, "tree_hash": tree.hash})
        print(f"threshold stored in {path}", file=sys.stderr)
    return 0


def _consistency(args) -> int:
    from sat.knowledge.consistency import DEFAULT_PHRASINGS, measure
    from sat.text.resolver_factory import build_resolver

    path = Path(args.file) if args.file else DEFAULT_PHRASINGS
    if not path.is_file():
        raise InputError(f"phrasing file not found: {path}")
    resolver = build_resolver(tree_from_args(args), spec_from_args(args), threshold=args.threshold)
    try:
        result = measure(resolver, path)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        acc = f", accuracy {result['accuracy']:.4f}" if result["accuracy"] is not None else ""
        print(f"{result['phrasings']} phrasings, {result['classes']} classes: consistency "
              f"{result['consistency']:.4f}, classes all consistent {result['classes_consistent']:.4f}, "
              f"refused {result['refused']:.4f}{acc}")
        for bad in result["inconsistent"][:args.show]:
            others = "; ".join(f"{o['text']!r} -> {o['got']}" for o in bad["others"])
            print(f"  {bad['class']}: mostly {bad['modal']}; {others}")
    return 0


def build_parser(extensions: Sequence[ModuleType] = ()) -> tuple[argparse.ArgumentParser, dict]:
    """The parser and the handlers of the subcommands that ``extensions`` add (see :func:`main`)."""
    ap = argparse.ArgumentParser(prog="sat concepts", description=__doc__.splitlines()[0].replace("``", ""))
    ap.add_argument("--tree", default=None, help="knowledge tree folder (default knowledge_tree/)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads; 1 is often fastest for short prompts on a busy machine")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("validate", help="check the tree; exit 1 on problems")
    p = sub.add_parser("resolve", help="map prompts to concepts")
    p.add_argument("text", nargs="*", help="prompts")
    p.add_argument("--file", help="one prompt per line ('-': stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per prompt")
    p.add_argument("--finetuned", help="knowledge-pretrained encoder (.safetensors)")
    p.add_argument("--threshold", type=float, help="override the calibrated threshold")
    p.add_argument("--checkpoint", help="answer as this model checkpoint's `sat segment` would")
    p = sub.add_parser("show", help="one concept with its relations")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.add_argument("--checkpoint", help="answer as this model checkpoint's `sat segment` would")
    p = sub.add_parser("list", help="concept ids and names")
    p.add_argument("--region", help=", ".join(REGIONS))
    p.add_argument("--kind", help=", ".join(KINDS))
    p.add_argument("--json", action="store_true")
    p.add_argument("--checkpoint", help="answer as this model checkpoint's `sat segment` would")
    p = sub.add_parser("calibrate", help="recompute an encoder's threshold on the calib split")
    p.add_argument("--finetuned", help="pretrained encoder whose sidecar JSON is updated")
    p.add_argument("--seed", type=int, default=0, help="split seed (must match pretraining)")
    p = sub.add_parser("consistency", help="do all phrasings of a class resolve to one concept?")
    p.add_argument("--file", help="JSON lines {class, text} (default tests/knowledge/data/phrasings.jsonl)")
    p.add_argument("--finetuned", help="knowledge-pretrained encoder (.safetensors)")
    p.add_argument("--threshold", type=float, help="override the calibrated threshold")
    p.add_argument("--show", type=int, default=10, help="inconsistent classes to list")
    p.add_argument("--json", action="store_true")
    return ap, add_extensions(sub, extensions)


_HANDLERS = {"validate": _validate, "resolve": _resolve, "show": _show, "list": _list,
             "calibrate": _calibrate, "consistency": _consistency}


def main(argv: list[str] | None = None, extensions: Sequence[ModuleType] = ()) -> int:
    """Run ``sat concepts``.

    ``extensions``: modules that add subcommands (:func:`sat.cli_hints.add_extensions`); the
    ``sat`` dispatcher hands in the harness's ``eval`` and ``bench``
    (:mod:`sat.bench.concepts_commands`), so this core module never imports the harness.
    """
    parser, extra = build_parser(extensions)
    handlers = {**_HANDLERS, **extra}
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    try:
        return handlers[args.cmd](args)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
