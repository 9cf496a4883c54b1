"""``sat mcp``: the agent tools as a Model Context Protocol server over stdio.

    sat mcp --checkpoint model.ckpt --allow-root /data/studies [--allow-root /data/out]

Stdout carries nothing but protocol: logs go to stderr, stray output while the model loads is
diverted to stderr at the file-descriptor level, and while serving the ``mcp`` stdio transport
points fd 1 at stderr itself. A failing tool call returns an MCP tool error (``is_error``) whose
text says what was wrong; the server keeps serving. Tools run in a child process that is killed
when a call passes ``--timeout`` (:mod:`sat.agent.worker`); the threat model is in ``docs/agent.md``.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from sat.agent.safety import SafetyPolicy
from sat.agent.schemas import input_schema
from sat.agent.tools import TOOLS, ToolFailure, ToolSpec

log = logging.getLogger("sat.agent.mcp")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point fd 1 (and ``sys.stdout``) at stderr for the duration, so nothing can reach the wire."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _mcp_tool(spec: ToolSpec, dispatcher):
    """An ``mcp`` Tool whose input schema is exactly the spec's pydantic input model."""
    import anyio
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.server.mcpserver.tools import Tool
    from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
    from mcp_types import CallToolResult, ImageContent, TextContent, ToolAnnotations
    from pydantic import create_model

    async def run(**kwargs) -> CallToolResult:
        try:
            reply = await anyio.to_thread.run_sync(dispatcher.call, spec.name, kwargs)
        except ToolFailure as exc:
            raise ToolError(str(exc)) from None
        content = [TextContent(type="text", text=reply.text())]
        for png in reply.images:
            import base64

            data = base64.b64encode(png.read_bytes()).decode("ascii")
            content.append(ImageContent(type="image", data=data, mime_type="image/png"))
        return CallToolResult(content=content, structured_content=reply.data)

    arg_model = create_model(f"{spec.name}_arguments", __base__=(spec.input_model, ArgModelBase))
    return Tool(fn=run, name=spec.name, title=spec.name.replace("_", " "), description=spec.description,
                parameters=input_schema(spec.input_model),
                fn_metadata=FuncMetadata(arg_model=arg_model, output_model=spec.output_model),
                is_async=True, annotations=ToolAnnotations(read_only_hint=spec.read_only, destructive_hint=False,
                                                           open_world_hint=False))


def build_server(dispatcher):
    """An ``MCPServer`` serving every tool in :data:`sat.agent.tools.TOOLS` through ``dispatcher``."""
    from mcp.server.mcpserver import MCPServer

    roots = ", ".join(str(r) for r in dispatcher.policy.roots)
    return MCPServer("sat", instructions=(
        "Text-prompted 3D medical image segmentation. Paths must lie inside the allowed roots "
        f"({roots}); outputs are written to per-call folders under {dispatcher.policy.out_root}. "
        "Research use only, not for diagnosis."), tools=[_mcp_tool(s, dispatcher) for s in TOOLS.values()],
        log_level="WARNING")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sat mcp", description="Serve the sat agent tools over MCP (stdio).")
    p.add_argument("--checkpoint", required=True, help="model checkpoint (model.ckpt)")
    p.add_argument("--allow-root", action="append", default=[], required=True, metavar="DIR",
                   help="folder the tools may read and write (repeatable)")
    p.add_argument("--output-root", help="folder for per-call outputs (inside an allowed root; "
                                         "default <first root>/sat_agent_runs)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per tool call")
    p.add_argument("--max-input-mb", type=int, default=2048, help="largest input file or folder")
    p.add_argument("--max-voxels", type=int, default=400_000_000,
                   help="most voxels an image may declare (checked on its header, before decoding)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    try:
        with contextlib.redirect_stdout(sys.stderr):  # argparse help/errors must not reach the wire
            args = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) and 2
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    from sat.agent.worker import IsolatedDispatcher

    policy = SafetyPolicy(allowed_roots=args.allow_root, output_root=args.output_root, timeout_s=args.timeout,
                          max_input_bytes=args.max_input_mb * 2**20, max_voxels=args.max_voxels)
    with stdout_to_stderr():
        dispatcher = IsolatedDispatcher(args.checkpoint, policy, device=args.device)
        server = build_server(dispatcher)
    log.info("serving %d tools over stdio; allowed roots: %s", len(TOOLS), [str(r) for r in policy.roots])
    try:
        server.run("stdio")  # returns when the client closes stdin
    finally:
        dispatcher.close()
    log.info("stdin closed; model worker stopped")
    return 0
