"""The ``sat`` command: a thin dispatcher to each stage's own entry point.

Every subcommand module exposes ``main(argv) -> int``. User errors (:class:`sat.errors.InputError`)
and command-line mistakes become one line on stderr and exit code 2, never a traceback or a page of
usage; a mistyped command or option gets a "did you mean" (:mod:`sat.cli_hints`). ``sat`` alone
prints the command list and exits 2. Other libraries' progress bars and warnings stay hidden
unless ``--verbose`` is given (anywhere on the command line).
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

COMMANDS = {
    "phantoms": ("sat.data.phantoms.generate", "generate the built-in phantom datasets"),
    "shards": ("sat.data.shards_cli", "build / verify / inspect WebDataset shards"),
    "fit": ("sat.train.cli", "train with LightningCLI (sat fit --config ...)"),
    "validate": ("sat.train.cli", "validate a model with LightningCLI"),
    "models": ("sat.bench.model_table", "parameter and memory table of the model variants (configs/model)"),
    "train-bench": ("sat.bench.train_overhead", "time text-query training against a plain multi-class U-Net"),
    "learning-check": ("sat.bench.learning_check", "overfit the real CT sample by text prompts in a fixed time; Dice"),
    "segment": ("sat.infer.cli", "segment structures named in free text"),
    "segment-bench": ("sat.bench.segment_speed", "measure inference speed and memory against the targets"),
    "tta-check": ("sat.bench.tta_check", "held-out phantom Dice with and without left-right TTA"),
    "concepts": ("sat.infer.concepts_cli", "list, show, resolve, validate and evaluate concepts"),
    "text-fit": ("sat.text.pretrain", "knowledge-pretrain the text encoder (sat text-fit --config ...)"),
    "evaluate": ("sat.eval.evaluate", "score predictions against ground truth by concept"),
    "reference": ("sat.eval.reference_layout", "write sat evaluate's ground-truth layout from a label map + class map"),
    "benchmark": ("sat.bench.cli", "phantom benchmark (universal vs specialists) and speed benchmark"),
    "demo": ("sat.bench.demo", "run the end-to-end phantom demo"),
    "mcp": ("sat.agent.mcp_server", "serve the agent tools over MCP (stdio)"),
    "agent": ("sat.agent.cli", "export tool schemas or chat with an OpenAI-compatible endpoint"),
}
# Harness subcommands of core commands (``sat concepts eval|bench``, ``sat shards bench``): the
# dispatcher imports these sat.bench modules and hands them to the command's ``main(argv,
# extensions)`` (see :func:`sat.cli_hints.add_extensions`); core modules never import sat.bench.
EXTENSIONS = {
    "concepts": ("sat.bench.concepts_commands",),
    "shards": ("sat.bench.data_pipeline",),
}


def _usage() -> str:
    lines = ["usage: sat COMMAND [options]   (sat COMMAND --help for a command's options)", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "  --verbose     show other libraries' progress bars and warnings"]
    return "\n".join(lines)


def _check_config_files(rest: list[str]) -> list[str]:
    """``sat fit --config FILE``: a missing FILE is one line, not LightningCLI's page of usage.

    Returns ``rest`` with ``configs/...`` paths that the working directory lacks pointing at the
    copies shipped with the package (:func:`sat.resources.shipped_path`).
    """
    from sat.errors import InputError
    from sat.resources import shipped_path

    out = list(rest)
    for i, arg in enumerate(rest):
        flag, eq, value = arg.partition("=")
        if flag not in ("--config", "--trainer", "-c") or (not value and i + 1 >= len(rest)):
            continue
        value = value or rest[i + 1]
        if value.startswith("{") or value.startswith("-") or "\n" in value or ":" in value.split("/")[0]:
            continue  # inline YAML/JSON, or a missing value that LightningCLI reports itself
        found = shipped_path(value)
        if not Path(found).expanduser().is_file():
            raise InputError(f"{flag} file not found: {value}")
        if eq:
            out[i] = f"{flag}={found}"
        else:
            out[i + 1] = found
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    if argv and argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if not argv:
        print(_usage(), file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        from sat.cli_hints import closest

        near = closest(cmd, COMMANDS)
        hint = f"; did you mean 'sat {near}'?" if near else ""
        print(f"sat: error: unknown command {cmd!r}{hint} (run 'sat --help' for the list)", file=sys.stderr)
        return 2
    from sat.cli_hints import one_line_parser_errors, quiet_third_party
    from sat.errors import InputError

    quiet_third_party(verbose)
    try:
        if cmd in ("fit", "validate"):
            rest = _check_config_files(rest)
            if argv == sys.argv[1:]:  # LightningCLI reads sys.argv (and warns when given other args)
                sys.argv[1:] = [cmd, *rest]
        module = importlib.import_module(COMMANDS[cmd][0])
        with one_line_parser_errors():
            if cmd in EXTENSIONS:
                extensions = [importlib.import_module(name) for name in EXTENSIONS[cmd]]
                return int(module.main(rest, extensions=extensions) or 0)
            return int(module.main([cmd, *rest] if cmd in ("fit", "validate") else rest) or 0)
    except InputError as exc:
        print(f"sat {cmd}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sat {cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
