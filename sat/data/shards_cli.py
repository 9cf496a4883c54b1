"""``sat shards build|verify|inspect|bench``: build WebDataset shards from a recipe, check them,
look inside them, and (``bench``, from the harness) time them against a NIfTI + MONAI pipeline.

``pipe:`` URLs run shell commands, as in WebDataset, and so do its other schemes (``gs://`` runs
``gsutil``, ``scp:``/``sftp:`` run ``curl``, ...); ``inspect`` refuses every URL other than a local
path or ``http(s)://`` unless ``--allow-pipe`` is given.
``verify`` and ``inspect`` refuse tar members larger than ``--max-member-mb`` (default 4096).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from sat.cli_hints import add_extensions
from sat.errors import InputError


def _build(args) -> int:
    from sat.data.recipes import load_recipe
    from sat.data.shard_build import BuildOptions, build_shards
    from sat.knowledge.tree import load_tree

    try:
        recipe = load_recipe(args.recipe)
        recipe.validate(load_tree())
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if not Path(args.input).is_dir():
        raise InputError(f"input folder not found: {args.input}")
    if args.spacing is not None and (len(args.spacing) != 3 or min(args.spacing) <= 0):
        raise InputError(f"--spacing needs three positive numbers in mm, got {args.spacing}")
    opts = BuildOptions(split=None if args.split == "all" else args.split, workers=args.workers,
                        num_parts=args.num_parts, part=args.part, shard_size_mb=args.shard_size_mb,
                        max_failures=args.max_failures,
                        spacing=tuple(args.spacing) if args.spacing else None)
    try:
        part = build_shards(recipe, args.input, args.output, opts, progress=not args.quiet)
    except (FileNotFoundError, ValueError) as exc:  # bad part numbers, unreadable index files
        raise InputError(str(exc).splitlines()[0]) from None
    n_fail = len(part["failures"])
    for case, why in part["failures"].items():
        print(f"failed {recipe.name}/{case}: {why}", file=sys.stderr)
    print(json.dumps({"dataset": recipe.name, "part": opts.part, "skipped": part["skipped"],
                      "cases": len(part["cases"]), "failures": n_fail, "shards": len(part["shards"]),
                      "manifest": str(Path(args.output) / "manifest.json")}))
    if n_fail > args.max_failures:
        print(f"sat shards build: {n_fail} failed case(s) > --max-failures {args.max_failures}",
              file=sys.stderr)
        return 1
    return 0


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_SHELL_CHARS = set("'\"`$;|&<>\\\n")


def _urls(spec: str, allow_pipe: bool = False) -> list[str]:
    """A shard folder, local glob / brace pattern, or http(s):// / pipe: URL pattern -> shard list.

    Raises:
        InputError: a command-running URL without ``allow_pipe``, shell characters in a URL, or
            nothing matches.
    """
    import glob

    import webdataset as wds

    if _SCHEME.match(spec) and not spec.startswith(("http://", "https://")) and not allow_pipe:
        raise InputError(f"{spec[:80]!r} runs a shell command to read shards (as in WebDataset); pass "
                         "--allow-pipe if you trust it")
    if spec.startswith(("http://", "https://")) and _SHELL_CHARS & set(spec):
        raise InputError(f"{spec[:80]!r}: quotes or shell characters in a URL are refused (WebDataset hands "
                         "http URLs to curl through a shell)")
    if Path(spec).is_dir():
        spec = str(Path(spec) / "*.tar")
    urls = list(wds.shardlists.expand_urls(spec))
    if not spec.startswith(("http://", "https://", "pipe:", "gs://", "s3://")):
        urls = sorted(f for u in urls for f in glob.glob(u))
    if not urls:
        raise InputError(f"no shards match {spec!r}")
    return urls


def _samples(urls: list[str], max_member_bytes: int):
    """Raw samples of every shard, member sizes bounded (local files checked as regular files)."""
    from webdataset.gopen import gopen

    from sat.data.shard_verify import MemberTooLarge, iter_tar_samples
    from sat.safe_open import Limits, check_file

    for url in urls:
        local = "://" not in url and not url.startswith("pipe:")
        try:
            if local:
                yield from iter_tar_samples(check_file(url, Limits()), max_member_bytes)
            else:
                with gopen(url, "rb") as stream:
                    yield from iter_tar_samples(stream, max_member_bytes)
        except MemberTooLarge as exc:
            raise InputError(f"{url}: {exc} (--max-member-mb)") from None
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(f"{url}: unreadable tar ({type(exc).__name__}: {str(exc)[:200]})") from None


def _inspect(args) -> int:
    import numpy as np

    from sat.data.shard_format import decode_case
    from sat.knowledge.tree import load_tree

    tree = load_tree()
    names = {cid: c.name for cid, c in tree.concepts.items()}
    for raw in _samples(_urls(args.dir, args.allow_pipe), int(args.max_member_mb * 2**20)):
        try:
            case = decode_case(raw)  # metadata only: no mask is expanded
            m = case.meta
            vox_ml = float(np.prod(m["spacing"])) / 1000.0
            line = {"key": case.key, "dataset": m["dataset"], "modality": m["modality"],
                    "spacing": m["spacing"], "shape": m["shape"],
                    "concepts": {names.get(c, c): round(n * vox_ml, 3) for c, n in zip(m["concepts"], m["voxels"])}}
            if "original_ml" in m:  # the same structures measured on the source files' own grid
                line["source_ml"] = {names.get(c, c): ml for c, ml in zip(m["concepts"], m["original_ml"])}
        except Exception as exc:  # noqa: BLE001 - a malformed sample is one line, not a traceback
            raise InputError(f"sample {raw.get('__key__')!r}: malformed ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None
        print(json.dumps(line), flush=True)
    return 0


def _verify(args) -> int:
    from sat.data.shard_verify import verify_main

    if not Path(args.dir).is_dir():
        raise InputError(f"shard folder not found: {args.dir}")
    return verify_main(args.dir, args.preview, args.n_preview, args.seed, int(args.max_member_mb * 2**20))


def main(argv: list[str] | None = None, extensions: Sequence[ModuleType] = ()) -> int:
    """Run ``sat shards``; ``extensions`` add subcommands (:func:`sat.cli_hints.add_extensions`):
    the ``sat`` dispatcher hands in ``bench`` (:mod:`sat.bench.data_pipeline`), so this core
    module never imports the harness."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="sat shards")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="preprocess a dataset into shards")
    b.add_argument("--recipe", required=True, help="recipe name (data_shards/recipes) or YAML path")
    b.add_argument("--input", required=True, help="the dataset's folder")
    b.add_argument("--output", required=True, help="shard folder (manifest.json is written here)")
    b.add_argument("--split", default="train", help="train, val, test, ... or all (every labelled case)")
    b.add_argument("--workers", type=int, default=0, help="worker processes (0: in-process)")
    b.add_argument("--num-parts", type=int, default=1, help="split the cases into this many parts")
    b.add_argument("--part", type=int, default=0, help="which part to build (e.g. $SLURM_ARRAY_TASK_ID)")
    b.add_argument("--shard-size-mb", type=float, default=256.0)
    b.add_argument("--max-failures", type=int, default=0, help="exit 1 when more cases fail")
    b.add_argument("--spacing", type=float, nargs=3, default=None, help="override the recipe spacing (mm)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser("verify", help="checksums, decodability, consistency, preview PNG")
    v.add_argument("dir")
    v.add_argument("--preview", default=None, help="preview PNG path (default DIR/preview.png)")
    v.add_argument("--n-preview", type=int, default=8)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--max-member-mb", type=float, default=4096.0, help="largest tar member read (MiB)")
    i = sub.add_parser("inspect", help="one JSON line per sample (concept name -> ml)")
    i.add_argument("dir", help="shard folder, glob, brace pattern or URL")
    i.add_argument("--json", action="store_true", help="(default) JSON lines")
    i.add_argument("--max-member-mb", type=float, default=4096.0, help="largest tar member read (MiB)")
    i.add_argument("--allow-pipe", action="store_true",
                   help="allow pipe:, gs:// and s3:// URLs, which run shell commands (as in WebDataset)")
    handlers = {"build": _build, "inspect": _inspect, "verify": _verify, **add_extensions(sub, extensions)}
    args = p.parse_args(argv)
    return handlers[args.cmd](args)
