"""``sat agent``: export tool schemas, or chat with an OpenAI-compatible endpoint that uses the tools.

    sat agent schemas --format openai|anthropic|mcp [-o tools.json]
    sat agent chat --endpoint http://127.0.0.1:8000 --model NAME --checkpoint model.ckpt --allow-root DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sat.errors import InputError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sat agent", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("schemas", help="write the tool definitions as JSON")
    s.add_argument("--format", required=True, choices=["openai", "anthropic", "mcp"])
    s.add_argument("-o", "--output", help="file to write (default: stdout)")
    c = sub.add_parser("chat", help="chat with an OpenAI-compatible endpoint that calls the tools")
    c.add_argument("--endpoint", required=True, help="server URL, e.g. http://127.0.0.1:8000")
    c.add_argument("--model", required=True, help="model name the server expects")
    c.add_argument("--checkpoint", required=True, help="segmentation model checkpoint")
    c.add_argument("--allow-root", action="append", default=[], required=True, metavar="DIR",
                   help="folder the tools may read and write (repeatable)")
    c.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    c.add_argument("--api-key-env", help="environment variable holding the endpoint's API key")
    c.add_argument("--max-turns", type=int, default=8, help="model calls per message")
    c.add_argument("--timeout", type=float, default=300.0, help="seconds per tool call")
    c.add_argument("-m", "--message", action="append", default=[],
                   help="message to send (repeatable); without it, read messages from stdin")
    return p


def _schemas(args) -> int:
    from sat.agent.schemas import tool_definitions

    text = json.dumps(tool_definitions(args.format), indent=1)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as exc:
            raise InputError(f"{args.output}: cannot write ({type(exc).__name__})") from None
    else:
        print(text)
    return 0


def _chat(args) -> int:
    from sat.agent.chat import ChatConfig, ChatSession
    from sat.agent.safety import SafetyPolicy
    from sat.agent.tools import Dispatcher

    if args.max_turns < 1:
        raise InputError(f"--max-turns {args.max_turns}: expected at least 1")
    config = ChatConfig(endpoint=args.endpoint, model=args.model, api_key_env=args.api_key_env,
                        max_turns=args.max_turns)
    policy = SafetyPolicy(allowed_roots=args.allow_root, timeout_s=args.timeout)
    dispatcher = Dispatcher.from_checkpoint(args.checkpoint, policy, device=args.device)
    session = ChatSession(dispatcher, config)
    messages = args.message or (line.strip() for line in sys.stdin)
    try:
        for text in messages:
            if not text:
                continue
            before = len(session.calls)
            answer = session.ask(text)
            for call in session.calls[before:]:
                status = "error" if call.is_error else "ok"
                print(f"[tool] {call.name}({call.arguments}) -> {status}", file=sys.stderr)
            print(answer, flush=True)
    finally:
        dispatcher.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) and 2
    return _schemas(args) if args.action == "schemas" else _chat(args)
