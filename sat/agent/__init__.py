"""Agent interface: tools for LLM agents (MCP server, OpenAI/Anthropic schemas, chat loop) and
report grounding hooks for VLM pipelines. See ``docs/agent.md``.

Modules: ``models`` (pydantic tool inputs/outputs), ``tools`` (dispatcher), ``handlers`` (tool
bodies), ``safety`` (paths, limits, timeouts), ``mcp_server`` (``sat mcp``), ``schemas`` and
``chat`` (``sat agent``), ``mentions`` / ``grounding`` / ``crops`` / ``measure`` (grounding),
``hooks`` and ``vlm_example`` (VLM callback registry and a stub-VLM loop).
"""
