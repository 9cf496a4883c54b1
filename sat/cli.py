"""The ``sat`` command: a thin dispatcher to each stage's own entry point.

Every subcommand module exposes ``main(argv) -> int``. User errors (:class:`sat.errors.InputError`)
become one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "phantoms": ("sat.data.phantoms.generate", "generate the built-in phantom datasets"),
    "shards": ("sat.data.shards_cli", "build / verify / inspect WebDataset shards"),
    "fit": ("sat.train.cli", "train with LightningCLI (sat fit --config ...)"),
    "validate": ("sat.train.cli", "validate a model with LightningCLI"),
    "models": ("sat.model.table", "parameter and memory table of the model variants (configs/model)"),
    "train-bench": ("sat.train.overhead", "time text-query training against a plain multi-class U-Net"),
    "learning-check": ("sat.train.learning_check", "overfit the real CT sample by text prompts in a fixed time; Dice"),
    "segment": ("sat.infer.cli", "segment structures named in free text"),
    "segment-bench": ("sat.infer.bench", "measure inference speed and memory against the targets"),
    "concepts": ("sat.knowledge.cli", "list, show, resolve, validate and evaluate concepts"),
    "text-fit": ("sat.text.pretrain", "knowledge-pretrain the text encoder (sat text-fit --config ...)"),
    "evaluate": ("sat.eval.evaluate", "score predictions against ground truth by concept"),
    "benchmark": ("sat.eval.benchmark.cli", "phantom benchmark (universal vs specialists) and speed benchmark"),
    "demo": ("sat.demo", "run the end-to-end phantom demo"),
    "mcp": ("sat.agent.mcp_server", "serve the agent tools over MCP (stdio)"),
    "agent": ("sat.agent.cli", "export tool schemas or chat with an OpenAI-compatible endpoint"),
}


def _usage() -> str:
    lines = ["usage: sat COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"sat: unknown command {cmd!r}\n{_usage()}", file=sys.stderr)
        return 2
    from sat.errors import InputError

    try:
        module = importlib.import_module(COMMANDS[cmd][0])
        return int(module.main([cmd, *rest] if cmd in ("fit", "validate") else rest) or 0)
    except InputError as exc:
        print(f"sat {cmd}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sat {cmd}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
